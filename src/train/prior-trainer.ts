/**
 * `trainPrior`: trains the PixelSNAIL prior with cross-entropy on the codes of a frozen VQ-VAE.
 * All slices are encoded once into a code cache (./code-cache.ts); batches are random code maps of
 * the training volumes; the held-out NLL (nats per code) is computed on every code map of the
 * held-out volumes after each epoch. Best weights: `pixelsnail.json/.bin`.
 *
 * The split uses the same function and seed as the VQ-VAE trainer, so with the same data, seed and
 * --holdout the prior holds out the very volumes the VQ-VAE never trained on.
 */
import { DEFAULT_PRIOR_BATCH, DEFAULT_PRIOR_EPOCHS } from './defaults.js';
export { DEFAULT_PRIOR_BATCH, DEFAULT_PRIOR_EPOCHS };
import { mkdirSync } from 'node:fs';
import { initEngine } from '../engine/backend.js';
import { loadModel, binaryPath, manifestPath } from '../models/weights.js';
import { disposeParams } from '../models/params.js';
import { initPixelSnail } from '../methods/lsr/pixelsnail.js';
import { pixelsnailPreset, vqvaeLatentSize, type PixelSnailConfig, type PresetName, type VqvaeConfig } from '../models/config.js';
import { buildCodeCache, codeCacheKey, loadCodeCache, saveCodeCache, type CodeCache, type VolumeCodes } from './code-cache.js';
import { prepareData, type CommonTrainOptions, type PreparedData } from './common.js';
import { createTrainingEngine } from './engine.js';
import { flattenParams, paramLayout, type CodeBatch, type ImageBatch } from './loop-worker.js';
import { runTrainer, type TrainerSpec, type TrainOutcome } from './trainer-run.js';
import { createRng, type Rng } from '../engine/random.js';
import { foregroundCodes } from '../score/sample-aggregates.js';
import { normalisedBackground } from '../volume/preprocess.js';
import { normalisationFor, type Region } from '../volume/normalise.js';
import { augmentOptionsFor } from './augment.js';
import { createChosenTrainingEngine } from './engine-choice.js';
import type { TrainingEngine } from './engine.js';
import { sampleBatch } from './sampler.js';


export interface PriorTrainOptions extends CommonTrainOptions {
  preset: PresetName;
  /** Folder holding the trained vqvae.json/.bin. */
  vqvaeDir: string;
  /** Overrides the preset (grid and codebook size are always taken from the VQ-VAE). */
  config?: PixelSnailConfig;
  /** Overrides the config's dropout rate. */
  dropout?: number;
  /**
   * Fraction (0–1) of every batch's code maps taken from codes of augmented training slices, re-drawn
   * and re-encoded with the frozen VQ-VAE before every epoch (default 0: only the unaugmented cache).
   */
  augmentedCodes?: number;
}

/** The prior's config for a VQ-VAE: the preset's widths on the VQ-VAE's grid and codebook. */
export function priorConfigFor(base: PixelSnailConfig, vq: VqvaeConfig): PixelSnailConfig {
  const grid = vqvaeLatentSize(vq);
  const attention = base.attention === null ? null : { ...base.attention, downsample: grid % base.attention.downsample === 0 ? base.attention.downsample : 1 };
  return { ...base, codebookSize: vq.codebookSize, height: grid, width: grid, attention };
}

export function codeBatch(maps: readonly { v: VolumeCodes; s: number }[], height: number, width: number): CodeBatch {
  const plane = height * width;
  const codes = new Int32Array(maps.length * plane);
  const positions = new Float32Array(maps.length);
  maps.forEach(({ v, s }, i) => {
    codes.set(v.codes.subarray(s * plane, (s + 1) * plane), i * plane);
    positions[i] = v.positions[s]!;
  });
  return { kind: 'codes', codes, positions, count: maps.length, height, width };
}

/** `batch` code maps drawn uniformly (with replacement) from all maps of `volumes`. */
export function randomCodeBatch(volumes: readonly VolumeCodes[], cache: CodeCache, batch: number, rng: Rng): CodeBatch {
  const total = volumes.reduce((a, v) => a + v.count, 0);
  const maps = Array.from({ length: batch }, () => {
    let k = rng.int(total);
    let i = 0;
    while (k >= volumes[i]!.count) k -= volumes[i++]!.count;
    return { v: volumes[i]!, s: k };
  });
  return codeBatch(maps, cache.height, cache.width);
}

/**
 * The code cache of `data` (training volumes first, then held-out) under a frozen VQ-VAE: reused from
 * `opts.outDir` when its key (VQ-VAE bytes + volume list) matches, else encoded on the workers and saved.
 */
export async function frozenVqvaeCodes(
  opts: Pick<CommonTrainOptions, 'outDir' | 'engine'> & { vqvaeDir: string },
  data: PreparedData,
  vqModel: { kind: 'vqvae'; config: VqvaeConfig },
  vqWeights: Float32Array,
): Promise<CodeCache> {
  const backend = data.info.backend === 'cpu' ? 'cpu' : 'wasm';
  const volumes = [...data.train, ...data.holdout];
  const key = codeCacheKey([manifestPath(opts.vqvaeDir, 'vqvae'), binaryPath(opts.vqvaeDir, 'vqvae')], volumes.map((v) => v.file));
  let cache = loadCodeCache(opts.outDir, key);
  if (cache !== null) {
    data.log(`code cache: reusing ${opts.outDir}/codes.bin`);
  } else {
    const t0 = performance.now();
    // The training engine encodes (ONNX Runtime with --engine onnx: several times faster than TF.js wasm).
    const encoder =
      opts.engine === undefined || opts.engine === 'tfjs'
        ? await createTrainingEngine(vqModel, { workers: data.workers, backend })
        : (await createChosenTrainingEngine(opts.engine, vqModel, { workers: data.workers, backend }, data.log)).engine;
    try {
      cache = await buildCodeCache(volumes, (batches) => encoder.encode(vqWeights, 1, batches), {
        key,
        latent: vqvaeLatentSize(vqModel.config),
        batch: 8,
      });
    } finally {
      await encoder.close();
    }
    await saveCodeCache(opts.outDir, cache);
    const slices = cache.volumes.reduce((a, v) => a + v.count, 0);
    data.log(`code cache: encoded ${slices} slices in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return cache;
}

/** A frozen VQ-VAE as flat weights, and the data read and split for its input size. */
export interface FrozenVqvae {
  readonly vqModel: { kind: 'vqvae'; config: VqvaeConfig };
  readonly vqWeights: Float32Array;
  readonly data: PreparedData;
}

/** Starts the engine (the weights are loaded onto its backend, so it comes first), loads the VQ-VAE, reads the data. */
export async function loadFrozenVqvae(opts: CommonTrainOptions & { vqvaeDir: string }): Promise<FrozenVqvae> {
  const log0 = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  await initEngine({ prefer: opts.backend ?? 'auto', log: log0 });
  const vq = loadModel<VqvaeConfig>(opts.vqvaeDir, 'vqvae', 'vqvae');
  const vqModel = { kind: 'vqvae' as const, config: vq.config };
  const vqWeights = flattenParams(vq.params, paramLayout(vqModel));
  disposeParams(vq.params);
  const data = await prepareData({ ...opts, log: log0 }, vq.config.inputSize);
  return { vqModel, vqWeights, data };
}

/** What the code-map trainers (prior, transformer) train on. */
export interface CodeTraining {
  readonly cache: CodeCache;
  /** Codes of the training volumes. */
  readonly trainCodes: VolumeCodes[];
  readonly stepsPerEpoch: number;
  /** Every code map of the held-out volumes, in batches of `batch`. */
  readonly holdout: CodeBatch[];
}

/** Creates `opts.outDir`, gets the code cache (`frozenVqvaeCodes`) and splits it; an epoch covers the training maps once unless `opts.stepsPerEpoch` is given. */
export async function frozenCodeTraining(
  opts: Pick<CommonTrainOptions, 'outDir' | 'stepsPerEpoch' | 'engine'> & { vqvaeDir: string; region?: Region },
  frozen: FrozenVqvae,
  batch: number,
): Promise<CodeTraining> {
  const { data } = frozen;
  mkdirSync(opts.outDir, { recursive: true });
  const cache = await frozenVqvaeCodes(opts, data, frozen.vqModel, frozen.vqWeights);
  const trainCodes = cache.volumes.slice(0, data.train.length);
  const holdoutCodes = cache.volumes.slice(data.train.length);
  const trainMaps = trainCodes.reduce((a, v) => a + v.count, 0);
  const stepsPerEpoch = opts.stepsPerEpoch ?? Math.max(1, Math.ceil(trainMaps / batch));
  const holdout: CodeBatch[] = [];
  const holdoutMaps = holdoutCodes.flatMap((v) => Array.from({ length: v.count }, (_, s) => ({ v, s })));
  // With the region known, each held-out map carries which codes' patches hold foreground (brain-only NLL).
  const masks =
    opts.region === undefined
      ? null
      : data.holdout.map(({ stack }) => foregroundCodes(stack.data, stack.count, stack.width, cache.height, normalisedBackground(normalisationFor(opts.region!))));
  const cells = cache.height * cache.width;
  for (let i = 0; i < holdoutMaps.length; i += batch) {
    const part = holdoutMaps.slice(i, i + batch);
    const b = codeBatch(part, cache.height, cache.width);
    if (masks !== null) {
      const foreground = new Uint8Array(part.length * cells);
      part.forEach(({ v, s }, j) => foreground.set(masks[holdoutCodes.indexOf(v)]!.subarray(s * cells, (s + 1) * cells), j * cells));
      b.foreground = foreground;
    }
    holdout.push(b);
  }
  return { cache, trainCodes, stepsPerEpoch, holdout };
}

/** What a code-map trainer decides; epochs, steps, batches and the record follow from the codes. */
export interface CodeTrainerSpec extends Pick<TrainerSpec, 'model' | 'batch' | 'seed' | 'start' | 'afterEpoch' | 'beforeEpoch'> {
  /** Fingerprint fields before the shared code-cache key and training-volume count. */
  readonly fingerprint: Record<string, unknown>;
  /** Turns each random code batch into the training batch (with the batch's random stream). */
  readonly prepare?: (batch: CodeBatch, rng: Rng) => CodeBatch;
  /** Held-out batches (default: the codes' own). */
  readonly holdout?: CodeBatch[];
  /** training.json fields before the frozen VQ-VAE folder. */
  readonly details?: Record<string, unknown>;
}

/** Trains a code-map model (prior, transformer) on random code maps of the training volumes. */
export async function runCodeTrainer(
  opts: CommonTrainOptions & { preset: PresetName; vqvaeDir: string },
  data: PreparedData,
  codes: CodeTraining,
  spec: CodeTrainerSpec,
): Promise<TrainOutcome> {
  const { cache, trainCodes } = codes;
  const prepare = spec.prepare ?? ((batch: CodeBatch) => batch);
  return runTrainer(opts, data, {
    model: spec.model,
    batch: spec.batch,
    seed: spec.seed,
    epochs: opts.epochs ?? DEFAULT_PRIOR_EPOCHS,
    stepsPerEpoch: codes.stepsPerEpoch,
    start: spec.start,
    fingerprint: { ...spec.fingerprint, codes: cache.key, train: data.train.length },
    nextBatch: (rng) => prepare(randomCodeBatch(trainCodes, cache, spec.batch, rng), rng),
    holdout: spec.holdout ?? codes.holdout,
    afterEpoch: spec.afterEpoch,
    ...(spec.beforeEpoch !== undefined ? { beforeEpoch: spec.beforeEpoch } : {}),
    record: { details: { ...spec.details, vqvae: opts.vqvaeDir } },
  });
}

export async function trainPrior(opts: PriorTrainOptions): Promise<TrainOutcome> {
  const frozen = await loadFrozenVqvae(opts);
  const base = priorConfigFor(opts.config ?? pixelsnailPreset(opts.preset, opts.region), frozen.vqModel.config);
  const cfg = opts.dropout !== undefined ? { ...base, dropout: opts.dropout } : base;
  const seed = opts.seed ?? 0;
  const batch = opts.batch ?? DEFAULT_PRIOR_BATCH;
  const codes = await frozenCodeTraining(opts, frozen, batch);
  const fraction = opts.augmentedCodes ?? 0;
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`augmentedCodes must be in [0, 1], got ${fraction}`);
  const perBatch = Math.round(fraction * batch);
  if (perBatch === 0) {
    return runCodeTrainer(opts, frozen.data, codes, { model: { kind: 'pixelsnail', config: cfg }, batch, seed, start: initPixelSnail(cfg, seed), fingerprint: {} });
  }
  const { engine: encoder } = await createChosenTrainingEngine(opts.engine ?? 'tfjs', frozen.vqModel, { workers: frozen.data.workers, backend: frozen.data.info.backend === 'cpu' ? 'cpu' : 'wasm' }, frozen.data.log);
  const pool = augmentedCodePool(frozen, encoder, {
    region: opts.region,
    seed,
    size: perBatch * codes.stepsPerEpoch,
    latent: codes.cache.height,
  });
  try {
    return await runCodeTrainer(opts, frozen.data, codes, {
      model: { kind: 'pixelsnail', config: cfg },
      batch,
      seed,
      start: initPixelSnail(cfg, seed),
      fingerprint: { augmentedCodes: perBatch },
      details: { augmentedCodes: { perBatch, poolPerEpoch: perBatch * codes.stepsPerEpoch, augment: 'paper' } },
      beforeEpoch: (epoch) => pool.refresh(epoch),
      prepare: (b, rng) => pool.mixInto(b, perBatch, rng),
    });
  } finally {
    await encoder.close();
  }
}

/** Codes of augmented training slices, re-drawn and re-encoded before every epoch. */
export interface AugmentedCodePool {
  refresh(epoch: number): Promise<void>;
  /** `batch` with its first `count` maps replaced by maps of the pool drawn with `rng`. */
  mixInto(batch: CodeBatch, count: number, rng: Rng): CodeBatch;
}

/**
 * The pool of epoch e is a pure function of (seed, e, the frozen VQ-VAE, the training stacks): `size`
 * augmented slices (the paper's augmentation, as the VQ-VAE trains with) drawn by `sampleBatch` from
 * createRng(`${seed}:augmented-codes:${e}`), encoded in batches of 16, so a resumed run rebuilds it.
 */
export function augmentedCodePool(
  frozen: FrozenVqvae,
  encoder: TrainingEngine,
  opts: { region: Region; seed: number; size: number; latent: number },
): AugmentedCodePool {
  const stacks = frozen.data.train.map((e) => e.stack);
  const augment = augmentOptionsFor('paper', opts.region);
  const cells = opts.latent * opts.latent;
  let codes = new Int32Array(0);
  let positions = new Float32Array(0);
  let count = 0;
  return {
    async refresh(epoch) {
      const rng = createRng(`${opts.seed}:augmented-codes:${epoch}`);
      const batches: ImageBatch[] = [];
      for (let left = opts.size; left > 0; left -= 16) {
        const n = Math.min(16, left);
        const b = sampleBatch(stacks, { volumesPerBatch: n, slicesPerVolume: 1, rng, augment });
        batches.push({ kind: 'images', images: b.images, positions: b.positions, count: b.count, size: b.height });
      }
      const encoded = await encoder.encode(frozen.vqWeights, 1, batches);
      codes = new Int32Array(opts.size * cells);
      positions = new Float32Array(opts.size);
      let at = 0;
      encoded.forEach((c, i) => {
        codes.set(c, at * cells);
        positions.set(batches[i]!.positions, at);
        at += batches[i]!.count;
      });
      count = at;
    },
    mixInto(batch, n, rng) {
      if (count === 0) throw new Error('the augmented code pool is empty: refresh it before the epoch');
      const out = { ...batch, codes: batch.codes.slice(), positions: batch.positions.slice() };
      for (let i = 0; i < Math.min(n, batch.count); i++) {
        const k = rng.int(count);
        out.codes.set(codes.subarray(k * cells, (k + 1) * cells), i * cells);
        out.positions[i] = positions[k]!;
      }
      return out;
    },
  };
}
