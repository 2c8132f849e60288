/**
 * `trainVae`: trains the VAE baseline exactly as the VQ-VAE is trained (same data path, held-out
 * split, augmentation, batch geometry, Adam, grad-value clip 1, data-parallel workers, checkpoints
 * with exact resume, training.json), on the negative ELBO per pixel. Best weights: `vae.json/.bin`
 * (lowest held-out loss, z = μ and dropout off when evaluating).
 */
import { DEFAULT_VQVAE_BATCH, DEFAULT_VQVAE_EPOCHS } from '../../train/defaults.js';
import { initVae } from './vae.js';
import { vaePreset, type VaeConfig } from './config.js';
import type { PresetName } from '../../models/config.js';
import { augmentOptionsFor, type AugmentPreset } from '../../train/augment.js';
import { prepareData, type CommonTrainOptions } from '../../train/common.js';
import { runTrainer, type TrainOutcome } from '../../train/trainer-run.js';
import { imageTraining } from '../../train/vqvae-trainer.js';

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
  const augmentPreset = opts.augment ?? 'paper';
  const images = imageTraining(data, batch, augmentOptionsFor(augmentPreset, opts.region), opts.stepsPerEpoch);
  return runTrainer(opts, data, {
    model: { kind: 'vae', config: cfg },
    batch,
    seed,
    epochs: opts.epochs ?? DEFAULT_VAE_EPOCHS,
    stepsPerEpoch: images.stepsPerEpoch,
    start: initVae(cfg, seed),
    fingerprint: { augment: augmentPreset, train: data.train.map((e) => e.file), holdout: data.holdout.map((e) => e.file) },
    nextBatch: images.nextBatch,
    holdout: images.holdout,
    record: { batching: { ...images.geometry, augment: augmentPreset } },
  });
}
