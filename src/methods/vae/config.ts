/**
 * Configuration of the convolutional VAE baseline (LSR paper's baseline: the VQ-VAE's encoder and
 * decoder around a dense latent; Zimmerer et al. 2019 for the scores) and its presets.
 *
 * The convolutional part is the VQ-VAE's (same fields, same presets); the codebook is replaced by
 *   latent grid → 1×1 conv to `denseChannels` → flatten → dense → (μ, log σ²) of `latentDim`,
 *   z → dense → grid of `denseChannels` → the VQ-VAE decoder.
 * The 1×1 conv keeps the dense layers small: compact brain 16×16×16 = 4096 inputs × 256 outputs
 * (1 M weights) instead of 16×16×64 (4 M).
 */
import { validateVqvaeConfig, vqvaeLatentSize, vqvaePreset, type PresetName, type Region, type VqvaeConfig } from '../../models/config.js';

export interface VaeConfig {
  inputSize: number;
  inChannels: number;
  condChannels: 0 | 1;
  /** Channels per resolution level, input level first (as the VQ-VAE). */
  channels: number[];
  blocksPerLevel: number;
  dropout: number;
  upsample: VqvaeConfig['upsample'];
  normGroups: number;
  /** Channels of the latent grid that is flattened into the dense layers. */
  denseChannels: number;
  /** Dimension of the Gaussian latent z (the LSR baseline: 128). */
  latentDim: number;
  /**
   * σ of the Gaussian likelihood p(x | z) = N(x̂, σ²) per pixel, in normalised intensity units.
   * Zimmerer et al. use log σ = 0 (σ = 1); smaller σ weighs reconstruction more against the KL term.
   */
  recStd: number;
}

/** The VQ-VAE geometry the VAE shares: its encoder ends in `denseChannels` (the 1×1 pre-quantisation conv). */
export function vaeConvConfig(cfg: VaeConfig): VqvaeConfig {
  return {
    inputSize: cfg.inputSize,
    inChannels: cfg.inChannels,
    condChannels: cfg.condChannels,
    channels: cfg.channels,
    blocksPerLevel: cfg.blocksPerLevel,
    codebookSize: 1,
    codeDim: cfg.denseChannels,
    dropout: cfg.dropout,
    upsample: cfg.upsample,
    normGroups: cfg.normGroups,
    commitmentWeight: 0,
  };
}

/** Side of the latent grid (inputSize / 2^levels). */
export function vaeGridSize(cfg: VaeConfig): number {
  return vqvaeLatentSize(vaeConvConfig(cfg));
}

/** Values flattened into the encoder's dense layer (and produced by the decoder's). */
export function vaeFlatSize(cfg: VaeConfig): number {
  return vaeGridSize(cfg) ** 2 * cfg.denseChannels;
}

/** Throws an Error naming the first bad field; returns the config typed when it is valid. */
export function validateVaeConfig(raw: unknown): VaeConfig {
  if (typeof raw !== 'object' || raw === null) throw new Error('invalid VAE config: not an object');
  const c = raw as Partial<VaeConfig>;
  for (const key of ['denseChannels', 'latentDim'] as const) {
    const v = c[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error(`invalid VAE config: ${key} must be a positive integer (got ${JSON.stringify(v)})`);
  }
  if (typeof c.recStd !== 'number' || !(c.recStd > 0) || !Number.isFinite(c.recStd)) {
    throw new Error(`invalid VAE config: recStd must be a positive number (got ${JSON.stringify(c.recStd)})`);
  }
  try {
    validateVqvaeConfig(vaeConvConfig(c as VaeConfig));
  } catch (err) {
    throw new Error((err as Error).message.replace('VQ-VAE', 'VAE'));
  }
  return c as VaeConfig;
}

/** The VQ-VAE preset's encoder/decoder, a 128-d latent and σ = 1 (Zimmerer et al.'s log σ = 0). */
export function vaePreset(preset: PresetName, region: Region): VaeConfig {
  const vq = vqvaePreset(preset, region);
  return {
    inputSize: vq.inputSize,
    inChannels: vq.inChannels,
    condChannels: vq.condChannels,
    channels: vq.channels,
    blocksPerLevel: vq.blocksPerLevel,
    dropout: vq.dropout,
    upsample: vq.upsample,
    normGroups: vq.normGroups,
    denseChannels: preset === 'reference' ? 64 : 16,
    latentDim: 128,
    recStd: 1,
  };
}
