/**
 * `trainVae`: trains the VAE baseline exactly as the VQ-VAE is trained (same data path, held-out
 * split, augmentation, batch geometry, Adam, grad-value clip 1, data-parallel workers, checkpoints
 * with exact resume, training.json), on the negative ELBO per pixel. Best weights: `vae.json/.bin`
 * (lowest held-out loss, z = μ and dropout off when evaluating).
 */
import { DEFAULT_VQVAE_BATCH, DEFAULT_VQVAE_EPOCHS } from './defaults.js';
import { initVae } from '../models/vae.js';
import { vaePreset, type VaeConfig } from '../models/vae-config.js';
import { disposeParams } from '../models/params.js';
import type { PresetName } from '../models/config.js';
import { augmentOptionsFor, type AugmentPreset } from './augment.js';
import { batchGeometry, fingerprint, prepareData, type CommonTrainOptions } from './common.js';
import { createTrainingEngine } from './engine.js';
import { DEFAULT_ADAM, runTrainingLoop } from './loop.js';
import { flattenParams, paramLayout, type ImageBatch } from './loop-worker.js';
import { sampleBatch } from './sampler.js';
import { HOLDOUT_SLICES_PER_VOLUME, holdoutImageBatches, type TrainOutcome } from './vqvae-trainer.js';
import type { Rng } from '../engine/random.js';

/** The VAE trains with the VQ-VAE's defaults (batch 8, 20 epochs). */
export const DEFAULT_VAE_BATCH = DEFAULT_VQVAE_BATCH;
export const DEFAULT_VAE_EPOCHS = DEFAULT_VQVAE_EPOCHS;

export interface VaeTrainOptions extends CommonTrainOptions {
  preset: PresetName;
  /** Overrides the preset entirely (tests use tiny configs). */
  config?: VaeConfig;
  /** Override the preset's σ of the Gaussian likelihood. */
  recStd?: number;
  /** Override the preset's latent dimension. */
  latentDim?: number;
  augment?: AugmentPreset;
}

export function vaeConfigFor(opts: Pick<VaeTrainOptions, 'preset' | 'region' | 'config' | 'recStd' | 'latentDim'>): VaeConfig {
  const base = opts.config ?? vaePreset(opts.preset, opts.region);
  return {
    ...base,
    ...(opts.recStd !== undefined ? { recStd: opts.recStd } : {}),
    ...(opts.latentDim !== undefined ? { latentDim: opts.latentDim } : {}),
  };
}

export async function trainVae(opts: VaeTrainOptions): Promise<TrainOutcome> {
  const cfg = vaeConfigFor(opts);
  const data = await prepareData(opts, cfg.inputSize);
  const batch = opts.batch ?? DEFAULT_VAE_BATCH;
  const seed = opts.seed ?? 0;
  const geometry = batchGeometry(batch);
  const augmentPreset = opts.augment ?? 'paper';
  const augment = augmentOptionsFor(augmentPreset, opts.region);
  const trainStacks = data.train.map((e) => e.stack);
  const trainSlices = trainStacks.reduce((a, s) => a + s.count, 0);
  const stepsPerEpoch = opts.stepsPerEpoch ?? Math.max(1, Math.ceil(trainSlices / batch));
  const model = { kind: 'vae' as const, config: cfg };
  const layout = paramLayout(model);
  const initial = initVae(cfg, seed);
  const initialWeights = flattenParams(initial, layout);
  disposeParams(initial);

  const nextImageBatch = (rng: Rng): ImageBatch => {
    const b = sampleBatch(trainStacks, { ...geometry, rng, augment });
    return { kind: 'images', images: b.images, positions: b.positions, count: b.count, size: b.height };
  };
  const engine = await createTrainingEngine(model, { workers: data.workers, backend: data.info.backend === 'cpu' ? 'cpu' : 'wasm' });
  try {
    const adam = { ...DEFAULT_ADAM, lr: opts.lr ?? DEFAULT_ADAM.lr };
    const result = await runTrainingLoop({
      model,
      name: 'vae',
      outDir: opts.outDir,
      engine,
      layout,
      initialWeights,
      epochs: opts.epochs ?? DEFAULT_VAE_EPOCHS,
      stepsPerEpoch,
      seed,
      adam,
      clip: 1,
      resume: opts.resume ?? false,
      ...(opts.maxMinutes !== undefined ? { maxMinutes: opts.maxMinutes } : {}),
      fingerprint: fingerprint({
        kind: 'vae',
        cfg,
        seed,
        batch,
        stepsPerEpoch,
        lr: adam.lr,
        augment: augmentPreset,
        train: data.train.map((e) => e.file),
        holdout: data.holdout.map((e) => e.file),
      }),
      nextBatch: nextImageBatch,
      holdout: holdoutImageBatches(
        data.holdout.map((e) => e.stack),
        HOLDOUT_SLICES_PER_VOLUME,
        batch,
      ),
      record: {
        command: opts.command ?? null,
        model: 'vae',
        preset: opts.preset,
        region: opts.region,
        config: cfg,
        backend: data.info.backend,
        batch,
        volumesPerBatch: geometry.volumesPerBatch,
        slicesPerVolume: geometry.slicesPerVolume,
        augment: augmentPreset,
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
