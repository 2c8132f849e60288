/**
 * Configuration of the DISYRE restoration network (a compact 2-D U-Net conditioned on the corruption
 * level t and on the slice position z) and of the data it sees. One object, stored next to the weights
 * (disyre.json's `config`), read back by the predictor and the trainer.
 */
import type { Normalisation } from '../../volume/normalise.js';

/** Model kind in the weights manifest, and the weights' file name (disyre.json/.bin). */
export const DISYRE_KIND = 'disyre';
export const DISYRE_NAME = 'disyre';

export interface DisyreConfig {
  /** Side of the square slices the network sees (volumes are resized to it). */
  readonly inputSize: number;
  /** Channels per resolution level, full resolution first; each further level halves the side. */
  readonly channels: readonly number[];
  /** Size of each sinusoidal embedding (t and z each get one; even). */
  readonly embedDim: number;
  /** Width of the conditioning MLP whose output feeds every block's channel bias. */
  readonly condDim: number;
  /** Largest number of GroupNorm groups per normalisation. */
  readonly normGroups: number;
  /** Intensities the network sees: DISYRE works on raw [0, 1] intensities (identity linear map). */
  readonly normalisation: Normalisation;
  /**
   * Weight of a second output head's loss (absent or 0: no head). The head (conv1×1 'seg' on the last
   * decoder block, a sigmoid) predicts where the input was corrupted, trained with binary
   * cross-entropy against the corruption's soft mask times its level (FPI-style targets) beside the
   * restoration's MSE: the synthetic-anomaly segmenter of the authors' MOOD 2022 entry, on the same trunk.
   */
  readonly segmentationWeight?: number;
}

/** True when the config has the segmentation head. */
export function hasSegmentationHead(cfg: Pick<DisyreConfig, 'segmentationWeight'>): boolean {
  return (cfg.segmentationWeight ?? 0) > 0;
}

/** The raw MOOD intensities in [0, 1], unchanged. */
export const RAW_INTENSITIES: Normalisation = Object.freeze({ kind: 'linear', scale: 1, offset: 0 });

export const DISYRE_PRESETS = {
  /** What ships: 128 px, 4 levels of 8/16/32/64 channels (0.2 M parameters, 0.38 GFLOP per slice). */
  compact: { inputSize: 128, channels: [8, 16, 32, 64], embedDim: 32, condDim: 64, normGroups: 8, normalisation: RAW_INTENSITIES },
  /** Tiny network for tests. */
  tiny: { inputSize: 16, channels: [4, 8], embedDim: 8, condDim: 8, normGroups: 2, normalisation: RAW_INTENSITIES },
} as const satisfies Record<string, DisyreConfig>;

export type DisyrePreset = keyof typeof DISYRE_PRESETS;

/** Throws an Error naming the first bad field; returns the config typed when it is valid. */
export function validateDisyreConfig(raw: unknown): DisyreConfig {
  if (typeof raw !== 'object' || raw === null) throw new Error('invalid DISYRE config: not an object');
  const c = raw as Partial<DisyreConfig>;
  const positiveInt = (key: keyof DisyreConfig, v: unknown): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error(`invalid DISYRE config: ${key} must be a positive integer (got ${JSON.stringify(v)})`);
    return v;
  };
  const size = positiveInt('inputSize', c.inputSize);
  positiveInt('condDim', c.condDim);
  positiveInt('normGroups', c.normGroups);
  const embed = positiveInt('embedDim', c.embedDim);
  if (embed % 2 !== 0) throw new Error(`invalid DISYRE config: embedDim must be even (got ${embed})`);
  if (!Array.isArray(c.channels) || c.channels.length < 1 || !c.channels.every((v) => Number.isInteger(v) && v >= 1)) {
    throw new Error(`invalid DISYRE config: channels must be a non-empty list of positive integers (got ${JSON.stringify(c.channels)})`);
  }
  const levels = c.channels.length;
  if (size % 2 ** (levels - 1) !== 0) throw new Error(`invalid DISYRE config: inputSize ${size} is not divisible by 2^${levels - 1} (${levels} levels)`);
  const n = c.normalisation as Normalisation | undefined;
  if (n === undefined || (n.kind !== 'linear' && n.kind !== 'foreground-zscore')) throw new Error('invalid DISYRE config: normalisation must be a linear or foreground-zscore descriptor');
  const w = c.segmentationWeight;
  if (w !== undefined && !(typeof w === 'number' && Number.isFinite(w) && w >= 0)) throw new Error(`invalid DISYRE config: segmentationWeight must be a number ≥ 0 (got ${JSON.stringify(w)})`);
  return c as DisyreConfig;
}

/** Side of level `l` (0 = full resolution). */
export function levelSize(cfg: DisyreConfig, level: number): number {
  return cfg.inputSize / 2 ** level;
}

/** Values of the conditioning input per slice: two sinusoidal embeddings (t, then z). */
export function condInputSize(cfg: DisyreConfig): number {
  return 2 * cfg.embedDim;
}
