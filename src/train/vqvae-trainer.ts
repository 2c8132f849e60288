/**
 * `trainVqvae`: trains the VQ-VAE on random augmented axial slices of a folder of normal volumes
 * (several slices per volume per batch, as in the paper), with a held-out split of volumes, dead-code
 * re-seeding after every epoch, checkpoints and the best weights (`vqvae.json/.bin`).
 *
 * Codebook start: distinct encoder outputs of one batch (see `initCodebookFromData`).
 * Dead codes: a code no training position chose during the epoch is re-seeded with an encoder output
 * z drawn (seeded, without repeats) from the epoch's last batch, and its Adam moments are zeroed, so
 * the codebook does not collapse onto a few codes.
 */
import { DEFAULT_VQVAE_BATCH, DEFAULT_VQVAE_EPOCHS } from './defaults.js';
export { DEFAULT_VQVAE_BATCH, DEFAULT_VQVAE_EPOCHS };
import { CODEBOOK, initVqvae } from '../models/vqvae.js';
import { vqvaePreset, type PresetName, type VqvaeConfig } from '../models/config.js';
import { augmentOptionsFor, type AugmentOptions, type AugmentPreset } from './augment.js';
import { batchGeometry, prepareData, type CommonTrainOptions, type PreparedData } from './common.js';
import type { EpochContext } from './loop.js';
import { paramLayout, type ImageBatch, type ParamLayout } from './loop-worker.js';
import { pickIndices, sampleBatch } from './sampler.js';
import { runTrainer, type TrainOutcome } from './trainer-run.js';
import { createRng, type Rng } from '../engine/random.js';
import { loadWarmStart } from './warm-start.js';
import { normalisedBackground } from '../volume/preprocess.js';
import { normalisationFor } from '../volume/normalise.js';

import { HOLDOUT_SLICES_PER_VOLUME, holdoutImageBatches } from './holdout-slices.js';
export { HOLDOUT_SLICES_PER_VOLUME, holdoutImageBatches };

export interface VqvaeTrainOptions extends CommonTrainOptions {
  preset: PresetName;
  /** Overrides the preset (tests use tiny configs). */
  config?: VqvaeConfig;
  augment?: AugmentPreset;
  /**
   * Fine-tuning: start from these weights (flat, in `paramLayout` order of the config) instead of a
   * fresh initialisation, and skip the data-dependent codebook start. `label` identifies them in the
   * run fingerprint (e.g. a hash), so --resume refuses a different start.
   */
  startFrom?: { weights: Float32Array; label: string };
  /** Data already read and split by `prepareData` (with the same options), to avoid reading it twice. */
  prepared?: PreparedData;
  /** Overrides the config's dropout rate. */
  dropout?: number;
  /**
   * Warm start: a folder holding vqvae.json/.bin whose config equals this run's (dropout aside); its
   * weights become `startFrom` (fresh Adam moments, no codebook re-initialisation).
   */
  initFrom?: string;
}

/** The weights of the VQ-VAE in `dir` as a `startFrom`, after checking that its config matches `cfg` (dropout aside). */
export function loadStartWeights(dir: string, cfg: VqvaeConfig): { weights: Float32Array; label: string } {
  // dropout is a training choice, not part of the network: a warm start may change it
  return loadWarmStart(dir, 'vqvae', 'vqvae', cfg, paramLayout({ kind: 'vqvae', config: cfg }), (c) => JSON.stringify({ ...c, dropout: 0 }));
}

export type { TrainOutcome } from './trainer-run.js';

/** What the image trainers (VQ-VAE, VAE) train on. */
export interface ImageTraining {
  readonly geometry: { volumesPerBatch: number; slicesPerVolume: number };
  readonly stepsPerEpoch: number;
  /** `batch` random augmented slices of the training volumes. */
  readonly nextBatch: (rng: Rng) => ImageBatch;
  /** Fixed held-out batches (`holdoutImageBatches`). */
  readonly holdout: ImageBatch[];
}

/** Batches of `batch` slices; an epoch covers the training slices once unless `stepsPerEpoch` is given. */
export function imageTraining(data: PreparedData, batch: number, augment: AugmentOptions, stepsPerEpoch: number | undefined, accumulate = 1, background?: number): ImageTraining {
  const geometry = batchGeometry(batch);
  const trainStacks = data.train.map((e) => e.stack);
  const trainSlices = trainStacks.reduce((a, s) => a + s.count, 0);
  return {
    geometry,
    stepsPerEpoch: stepsPerEpoch ?? Math.max(1, Math.ceil(trainSlices / (batch * accumulate))),
    nextBatch: (rng) => {
      const b = sampleBatch(trainStacks, { ...geometry, rng, augment });
      return { kind: 'images', images: b.images, positions: b.positions, count: b.count, size: b.height };
    },
    holdout: holdoutImageBatches(
      data.holdout.map((e) => e.stack),
      HOLDOUT_SLICES_PER_VOLUME,
      batch,
      background,
    ),
  };
}

/** Re-seeds the codes no position chose this epoch; returns how many. */
export async function reseedDeadCodes(ctx: EpochContext, cfg: VqvaeConfig, layout: ParamLayout): Promise<number> {
  const counts = ctx.trainStats.codeCounts;
  if (counts === undefined) return 0;
  const dead: number[] = [];
  counts.forEach((c, k) => c === 0 && dead.push(k));
  if (dead.length === 0) return 0;
  const batch = ctx.lastBatch as ImageBatch;
  const z = await ctx.engine.latents(ctx.weights, ctx.version, batch);
  const d = cfg.codeDim;
  const vectors = z.length / d;
  const entry = layout.entries.find((e) => e.name === CODEBOOK);
  if (entry === undefined) throw new Error(`no ${CODEBOOK} in the VQ-VAE layout`);
  const picks = pickIndices(vectors, dead.length, ctx.rng);
  dead.forEach((k, i) => {
    const at = entry.offset + k * d;
    ctx.weights.set(z.subarray(picks[i]! * d, (picks[i]! + 1) * d), at);
    ctx.adamM.fill(0, at, at + d);
    ctx.adamV.fill(0, at, at + d);
  });
  ctx.changed();
  return dead.length;
}

/**
 * Data-dependent codebook start: every code becomes a distinct encoder output of one (seeded) batch.
 * The paper's uniform ±1/K start would leave the codebook far from the encoder outputs for
 * thousands of steps at Adam 1e-4 (a code moves ~lr per step), longer than a CPU run lasts.
 */
export async function initCodebookFromData(
  weights: Float32Array,
  cfg: VqvaeConfig,
  layout: ParamLayout,
  latents: (batch: ImageBatch) => Promise<Float32Array>,
  batch: ImageBatch,
  rng: Rng,
): Promise<void> {
  const z = await latents(batch);
  const d = cfg.codeDim;
  const entry = layout.entries.find((e) => e.name === CODEBOOK);
  if (entry === undefined) throw new Error(`no ${CODEBOOK} in the VQ-VAE layout`);
  const picks = pickIndices(z.length / d, cfg.codebookSize, rng);
  picks.forEach((j, k) => weights.set(z.subarray(j * d, (j + 1) * d), entry.offset + k * d));
}

export async function trainVqvae(opts: VqvaeTrainOptions): Promise<TrainOutcome> {
  const base = opts.config ?? vqvaePreset(opts.preset, opts.region);
  const cfg = opts.dropout !== undefined ? { ...base, dropout: opts.dropout } : base;
  const data = opts.prepared ?? (await prepareData(opts, cfg.inputSize));
  if (opts.initFrom !== undefined) {
    if (opts.startFrom !== undefined) throw new Error('give either startFrom or initFrom, not both');
    opts = { ...opts, startFrom: loadStartWeights(opts.initFrom, cfg) };
    data.log(`warm start from ${opts.initFrom} (${opts.startFrom!.label})`);
  }
  const batch = opts.batch ?? DEFAULT_VQVAE_BATCH;
  const seed = opts.seed ?? 0;
  const augmentPreset = opts.augment ?? 'paper';
  const images = imageTraining(data, batch, augmentOptionsFor(augmentPreset, opts.region), opts.stepsPerEpoch, opts.accumulate, normalisedBackground(normalisationFor(opts.region)));
  const model = { kind: 'vqvae' as const, config: cfg };
  const layout = paramLayout(model);
  if (opts.startFrom !== undefined && opts.startFrom.weights.length !== layout.total) {
    throw new Error(`startFrom holds ${opts.startFrom.weights.length} values, the VQ-VAE layout ${layout.total}`);
  }
  return runTrainer(opts, data, {
    model,
    batch,
    seed,
    epochs: opts.epochs ?? DEFAULT_VQVAE_EPOCHS,
    stepsPerEpoch: images.stepsPerEpoch,
    start: opts.startFrom !== undefined ? opts.startFrom.weights.slice() : initVqvae(cfg, seed),
    fingerprint: {
      augment: augmentPreset,
      train: data.train.map((e) => e.file),
      holdout: data.holdout.map((e) => e.file),
      ...(opts.startFrom !== undefined ? { startFrom: opts.startFrom.label } : {}),
    },
    nextBatch: images.nextBatch,
    holdout: images.holdout,
    afterEpoch: async (ctx) => ({ reseeded: await reseedDeadCodes(ctx, cfg, layout) }),
    initialise: opts.startFrom !== undefined ? undefined : async (weights, eng) => {
      const rng = createRng(`${seed}:codebook-init`);
      const first = images.nextBatch(rng);
      await initCodebookFromData(weights, cfg, layout, (b) => eng.latents(weights, 0, b), first, rng);
    },
    codebookSize: cfg.codebookSize,
    record: { batching: { ...images.geometry, augment: augmentPreset } },
  });
}
