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
import { disposeParams } from '../models/params.js';
import { vqvaePreset, type PresetName, type VqvaeConfig } from '../models/config.js';
import { augmentOptionsFor, type AugmentPreset } from './augment.js';
import { batchGeometry, evenIndices, fingerprint, prepareData, type CommonTrainOptions, type PreparedData } from './common.js';
import { createTrainingEngine } from './engine.js';
import { DEFAULT_ADAM, runTrainingLoop, type EpochContext, type LoopResult } from './loop.js';
import { flattenParams, paramLayout, type ImageBatch, type ParamLayout } from './loop-worker.js';
import { pickIndices, sampleBatch } from './sampler.js';
import type { SliceStack } from '../volume/slices.js';
import { createRng, type Rng } from '../engine/random.js';

/** Held-out slices per held-out volume, evenly spread, evaluated every epoch without augmentation. */
export const HOLDOUT_SLICES_PER_VOLUME = 8;

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
}

export interface TrainOutcome extends LoopResult {
  outDir: string;
  backend: string;
  workers: number;
}

/** Fixed held-out batches: evenly spread slices of each held-out volume, unaugmented. */
export function holdoutImageBatches(stacks: readonly SliceStack[], perVolume: number, batch: number): ImageBatch[] {
  const images: Float32Array[] = [];
  const positions: number[] = [];
  for (const stack of stacks) {
    const plane = stack.height * stack.width;
    for (const s of evenIndices(stack.count, perVolume)) {
      images.push(stack.data.subarray(s * plane, (s + 1) * plane));
      positions.push(stack.positions[s]!);
    }
  }
  const out: ImageBatch[] = [];
  const size = stacks[0]?.height ?? 0;
  for (let start = 0; start < images.length; start += batch) {
    const chunk = images.slice(start, start + batch);
    const data = new Float32Array(chunk.length * size * size);
    chunk.forEach((img, i) => data.set(img, i * size * size));
    out.push({ kind: 'images', images: data, positions: Float32Array.from(positions.slice(start, start + batch)), count: chunk.length, size });
  }
  return out;
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
  const cfg = opts.config ?? vqvaePreset(opts.preset, opts.region);
  const data = opts.prepared ?? (await prepareData(opts, cfg.inputSize));
  const batch = opts.batch ?? DEFAULT_VQVAE_BATCH;
  const seed = opts.seed ?? 0;
  const geometry = batchGeometry(batch);
  const augment = augmentOptionsFor(opts.augment ?? 'paper', opts.region);
  const trainStacks = data.train.map((e) => e.stack);
  const trainSlices = trainStacks.reduce((a, s) => a + s.count, 0);
  const stepsPerEpoch = opts.stepsPerEpoch ?? Math.max(1, Math.ceil(trainSlices / batch));
  const model = { kind: 'vqvae' as const, config: cfg };
  const layout = paramLayout(model);
  let initialWeights: Float32Array;
  if (opts.startFrom !== undefined) {
    if (opts.startFrom.weights.length !== layout.total) throw new Error(`startFrom holds ${opts.startFrom.weights.length} values, the VQ-VAE layout ${layout.total}`);
    initialWeights = opts.startFrom.weights.slice();
  } else {
    const initial = initVqvae(cfg, seed);
    initialWeights = flattenParams(initial, layout);
    disposeParams(initial);
  }

  const nextImageBatch = (rng: Rng): ImageBatch => {
    const b = sampleBatch(trainStacks, { ...geometry, rng, augment });
    return { kind: 'images', images: b.images, positions: b.positions, count: b.count, size: b.height };
  };
  const engine = await createTrainingEngine(model, { workers: data.workers, backend: data.info.backend === 'cpu' ? 'cpu' : 'wasm' });
  try {
    const adam = { ...DEFAULT_ADAM, lr: opts.lr ?? DEFAULT_ADAM.lr };
    const result = await runTrainingLoop({
      model,
      name: 'vqvae',
      outDir: opts.outDir,
      engine,
      layout,
      initialWeights,
      epochs: opts.epochs ?? DEFAULT_VQVAE_EPOCHS,
      stepsPerEpoch,
      seed,
      adam,
      clip: 1,
      resume: opts.resume ?? false,
      ...(opts.maxMinutes !== undefined ? { maxMinutes: opts.maxMinutes } : {}),
      fingerprint: fingerprint({
        kind: 'vqvae',
        cfg,
        seed,
        batch,
        stepsPerEpoch,
        lr: adam.lr,
        augment: opts.augment ?? 'paper',
        train: data.train.map((e) => e.file),
        holdout: data.holdout.map((e) => e.file),
        ...(opts.startFrom !== undefined ? { startFrom: opts.startFrom.label } : {}),
      }),
      nextBatch: nextImageBatch,
      holdout: holdoutImageBatches(
        data.holdout.map((e) => e.stack),
        HOLDOUT_SLICES_PER_VOLUME,
        batch,
      ),
      afterEpoch: async (ctx) => ({ reseeded: await reseedDeadCodes(ctx, cfg, layout) }),
      initialise: opts.startFrom !== undefined ? undefined : async (weights, eng) => {
        const rng = createRng(`${seed}:codebook-init`);
        const first = nextImageBatch(rng);
        await initCodebookFromData(weights, cfg, layout, (b) => eng.latents(weights, 0, b), first, rng);
      },
      codebookSize: cfg.codebookSize,
      record: {
        command: opts.command ?? null,
        model: 'vqvae',
        preset: opts.preset,
        region: opts.region,
        config: cfg,
        backend: data.info.backend,
        batch,
        volumesPerBatch: geometry.volumesPerBatch,
        slicesPerVolume: geometry.slicesPerVolume,
        augment: opts.augment ?? 'paper',
        trainVolumes: data.train.map((e) => e.file),
        holdoutVolumes: data.holdout.map((e) => e.file),
        skippedFiles: data.skipped,
      },
      log: data.log,
      sink: data.sink,
    });
    return { ...result, outDir: opts.outDir, backend: data.info.backend, workers: engine.workers };
  } finally {
    await engine.close();
  }
}
