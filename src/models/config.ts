/**
 * Model configurations (plain JSON-serialisable objects) and presets.
 *
 * Geometry: one image channel, one conditioning value (the slice position in [-0.5, 0.5]). Reference
 * (Naval Marimont & Tarroni 2021): 160×160 slices, brain latent 20×20 (three stride-2 levels), abdomen
 * 10×10 (four levels). Compact: brain 128×128 → 16×16, abdomen 160×160 → 10×10. Prediction must
 * preprocess slices to the weights' `inputSize`.
 *
 * FLOPs per slice (one forward, 2 FLOPs per multiply-add, convolutions and matMuls only), from
 * `vqvaeFlops` / `pixelsnailFlops` in ./flops.ts:
 *
 *   preset / region      encoder   decoder   quantize   prior (one pass over the whole grid)
 *   reference / brain    4.33 G    6.02 G    0.026 G    7.09 G   (20×20, attention on 2×2 blocks)
 *   reference / abdomen  3.93 G    4.25 G    0.007 G    1.78 G   (10×10)
 *   compact / brain      0.33 G    0.36 G    0.004 G    0.115 G  (128² → 16×16)
 *   compact / abdomen    0.56 G    0.59 G    0.002 G    0.042 G  (10×10)
 *
 * Compact sizes come from the CPU budget (wasm, one thread per worker). FLOPs alone flatter the
 * narrow full-resolution layers: wasm runs a 3×3 8→16 conv at 160×160 about 3× less efficiently
 * than a 64→128 conv at 40×40, and norm/activation passes at 160×160 are memory-bound. Per brain
 * volume, 480 decoder passes are 480 × 0.56 G ≈ 270 GFLOP; one VQ-VAE training step at batch 8 is
 * ≈ 3 × 1.08 G × 8 ≈ 26 GFLOP. The full-resolution level (a gated block costs 1.4 M·C² FLOPs at
 * 160×160) dominates, hence C0 = 8 and one block per level.
 */

export type Region = 'brain' | 'abdomen';
export type PresetName = 'reference' | 'compact';
export type UpsampleMode = 'nearest-conv' | 'transposed';

export interface VqvaeConfig {
  /** Height = width of the input slice. Must be divisible by 2^(channels.length - 1). */
  inputSize: number;
  /** Image channels (1). */
  inChannels: number;
  /** 1: condition on the slice position (a scalar per slice); 0: unconditioned. */
  condChannels: 0 | 1;
  /** Channels per resolution level, from the input level down to the latent level. */
  channels: number[];
  /** Gated residual blocks at each level (encoder and decoder). */
  blocksPerLevel: number;
  /** K: number of codebook vectors. */
  codebookSize: number;
  /** D: dimension of a codebook vector. */
  codeDim: number;
  /** Channel (Dropout2d-style) dropout rate inside the gated blocks while training. */
  dropout: number;
  /** Decoder upsampling: 2× nearest + 3×3 conv (fast on wasm) or a 6×6 stride-2 transposed conv (the paper). */
  upsample: UpsampleMode;
  /** Upper bound on GroupNorm groups; each norm uses the largest divisor of its channels ≤ this. */
  normGroups: number;
  /** β: weight of the commitment loss ‖z − sg[e]‖². */
  commitmentWeight: number;
}

export interface AttentionConfig {
  keyChannels: number;
  valueChannels: number;
  /** Keys/values are computed on blocks of downsample×downsample codes (1 = every code). */
  downsample: number;
}

export interface PixelSnailConfig {
  /** K: number of distinct codes (the VQ-VAE codebook size). */
  codebookSize: number;
  height: number;
  width: number;
  channels: number;
  blocks: number;
  resBlocksPerBlock: number;
  /** Causal self-attention at the end of every block; null disables it. */
  attention: AttentionConfig | null;
  dropout: number;
  /** 1: condition every residual block on the slice position; 0: unconditioned. */
  condChannels: 0 | 1;
}

export function vqvaeLevels(cfg: VqvaeConfig): number {
  return cfg.channels.length - 1;
}

export function vqvaeLatentSize(cfg: VqvaeConfig): number {
  return cfg.inputSize / 2 ** vqvaeLevels(cfg);
}

function fail(what: string, reason: string): never {
  throw new Error(`invalid ${what} config: ${reason}`);
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

function isRate(v: unknown): v is number {
  return typeof v === 'number' && v >= 0 && v < 1;
}

/** Throws an Error naming the first bad field; returns the config typed when it is valid. */
export function validateVqvaeConfig(raw: unknown): VqvaeConfig {
  if (typeof raw !== 'object' || raw === null) fail('VQ-VAE', 'not an object');
  const c = raw as Partial<VqvaeConfig>;
  for (const key of ['inputSize', 'inChannels', 'blocksPerLevel', 'codebookSize', 'codeDim', 'normGroups'] as const) {
    if (!isPositiveInt(c[key])) fail('VQ-VAE', `${key} must be a positive integer (got ${JSON.stringify(c[key])})`);
  }
  if (c.condChannels !== 0 && c.condChannels !== 1) fail('VQ-VAE', 'condChannels must be 0 or 1');
  if (!Array.isArray(c.channels) || c.channels.length < 2 || !c.channels.every(isPositiveInt)) {
    fail('VQ-VAE', 'channels must be an array of at least two positive integers');
  }
  if (!isRate(c.dropout)) fail('VQ-VAE', 'dropout must be in [0, 1)');
  if (c.upsample !== 'nearest-conv' && c.upsample !== 'transposed') fail('VQ-VAE', "upsample must be 'nearest-conv' or 'transposed'");
  if (typeof c.commitmentWeight !== 'number' || !(c.commitmentWeight >= 0)) fail('VQ-VAE', 'commitmentWeight must be ≥ 0');
  const factor = 2 ** (c.channels.length - 1);
  if (c.inputSize! % factor !== 0) fail('VQ-VAE', `inputSize ${c.inputSize} is not divisible by 2^levels = ${factor}`);
  return c as VqvaeConfig;
}

export function validatePixelSnailConfig(raw: unknown): PixelSnailConfig {
  if (typeof raw !== 'object' || raw === null) fail('PixelSNAIL', 'not an object');
  const c = raw as Partial<PixelSnailConfig>;
  for (const key of ['codebookSize', 'height', 'width', 'channels', 'blocks', 'resBlocksPerBlock'] as const) {
    if (!isPositiveInt(c[key])) fail('PixelSNAIL', `${key} must be a positive integer (got ${JSON.stringify(c[key])})`);
  }
  if (c.condChannels !== 0 && c.condChannels !== 1) fail('PixelSNAIL', 'condChannels must be 0 or 1');
  if (!isRate(c.dropout)) fail('PixelSNAIL', 'dropout must be in [0, 1)');
  if (c.attention !== null) {
    const a = c.attention;
    if (typeof a !== 'object' || a === undefined) fail('PixelSNAIL', 'attention must be an object or null');
    for (const key of ['keyChannels', 'valueChannels', 'downsample'] as const) {
      if (!isPositiveInt(a[key])) fail('PixelSNAIL', `attention.${key} must be a positive integer`);
    }
    if (c.height! % a.downsample !== 0 || c.width! % a.downsample !== 0) {
      fail('PixelSNAIL', `grid ${c.height}×${c.width} is not divisible by attention.downsample ${a.downsample}`);
    }
  }
  return c as PixelSnailConfig;
}

/** The paper's sizes (brain: 16/32/64/256 → 20×20; abdomen: 16/32/64/128/256 → 10×10). For a GPU. */
function referenceVqvae(region: Region): VqvaeConfig {
  return {
    inputSize: 160,
    inChannels: 1,
    condChannels: 1,
    channels: region === 'brain' ? [16, 32, 64, 256] : [16, 32, 64, 128, 256],
    blocksPerLevel: 2,
    codebookSize: 128,
    codeDim: 256,
    dropout: 0.1,
    upsample: 'transposed',
    normGroups: 8,
    commitmentWeight: 1,
  };
}

/**
 * Compact: same codebook size, half the channels at full resolution (the full-resolution level
 * dominates the cost: its gated block costs 1.4 M·C² FLOPs at 160²), D = 64, one gated block per
 * level and nearest-upsample + conv in the decoder. Brain: 128×128 input → 16×16 latent (see
 * docs/benchmarks.md "Training throughput": 1.7–1.9× faster training and decoding than 160×160 on
 * wasm, where memory-bound per-pixel work at full resolution dominates, and 256 instead of 400
 * sequential restoration positions). Abdomen keeps 160×160 → 10×10.
 */
function compactVqvae(region: Region): VqvaeConfig {
  return {
    inputSize: region === 'brain' ? 128 : 160,
    inChannels: 1,
    condChannels: 1,
    channels: region === 'brain' ? [8, 16, 32, 64] : [8, 16, 32, 64, 64],
    blocksPerLevel: 1,
    codebookSize: 128,
    codeDim: 64,
    dropout: 0.1,
    upsample: 'nearest-conv',
    normGroups: 4,
    commitmentWeight: 1,
  };
}

function referencePixelSnail(region: Region): PixelSnailConfig {
  const grid = region === 'brain' ? 20 : 10;
  return {
    codebookSize: 128,
    height: grid,
    width: grid,
    channels: 128,
    blocks: 4,
    resBlocksPerBlock: 4,
    attention: { keyChannels: 16, valueChannels: 128, downsample: region === 'brain' ? 2 : 1 },
    dropout: 0.1,
    condChannels: 1,
  };
}

function compactPixelSnail(region: Region): PixelSnailConfig {
  const grid = region === 'brain' ? 16 : 10;
  return {
    codebookSize: 128,
    height: grid,
    width: grid,
    channels: 32,
    blocks: 2,
    resBlocksPerBlock: 2,
    // Brain attends on 2×2 blocks as the reference does: wasm's batched matMul runs at ~1.3 GFLOP/s, and
    // 256 keys instead of 64 made attention ~6× slower (150 vs 26 ms per 32 maps, docs/benchmarks.md).
    attention: { keyChannels: 16, valueChannels: 32, downsample: region === 'brain' ? 2 : 1 },
    dropout: 0.1,
    condChannels: 1,
  };
}

export function vqvaePreset(preset: PresetName, region: Region): VqvaeConfig {
  return preset === 'reference' ? referenceVqvae(region) : compactVqvae(region);
}

export function pixelsnailPreset(preset: PresetName, region: Region): PixelSnailConfig {
  return preset === 'reference' ? referencePixelSnail(region) : compactPixelSnail(region);
}
