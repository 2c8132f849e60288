/**
 * Intensity normalisation of the model input, one descriptor per region so that training and
 * prediction run the very same code (`normalise(data, descriptor)`); the descriptor is plain JSON and
 * can be stored next to the weights.
 *
 * Brain (the paper's submission): a voxel is foreground when its value is > threshold (0.05);
 * background voxels (≤ threshold, and NaN) become exactly 0; foreground voxels are z-scored,
 * (v − mean) / (std + 1e-5), with mean and population std (ddof = 0) over the foreground voxels.
 * The paper thresholds "< 0.05"; we use the single predicate "> threshold" for both the zeroing and
 * the mask, which differs only for voxels exactly equal to the threshold.
 *
 * Statistics are per volume: pass one volume's worth of data (the whole volume, or the stack of slices
 * taken from one volume), or compute them once with `foregroundStatistics` on the full volume and pass
 * them in, which makes the normalisation independent of which slices were picked (recommended:
 * random training slices and every-8th inference slices then see identical intensities).
 *
 * Abdomen: x · 2 − 1 everywhere (no mask).
 */
export interface ForegroundZScore {
  readonly kind: 'foreground-zscore';
  readonly threshold: number;
  readonly epsilon: number;
}

export interface LinearIntensity {
  readonly kind: 'linear';
  readonly scale: number;
  readonly offset: number;
}

export type Normalisation = ForegroundZScore | LinearIntensity;

export type Region = 'brain' | 'abdomen';

export const BRAIN_NORMALISATION: ForegroundZScore = Object.freeze({
  kind: 'foreground-zscore',
  threshold: 0.05,
  epsilon: 1e-5,
});

export const ABDOMEN_NORMALISATION: LinearIntensity = Object.freeze({ kind: 'linear', scale: 2, offset: -1 });

export function normalisationFor(region: Region): Normalisation {
  return region === 'brain' ? BRAIN_NORMALISATION : ABDOMEN_NORMALISATION;
}

export interface ForegroundStatistics {
  readonly mean: number;
  /** Population standard deviation (ddof = 0). */
  readonly std: number;
  /** Number of foreground voxels. */
  readonly count: number;
}

/** 1 where value > threshold (brain foreground), else 0 (NaN counts as background). */
export function foregroundMask(data: Float32Array, threshold: number = BRAIN_NORMALISATION.threshold): Uint8Array {
  const mask = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) mask[i] = data[i] > threshold ? 1 : 0;
  return mask;
}

/** Mean and std over the voxels > threshold, two-pass in float64 (mean 0, std 0, count 0 when none). */
export function foregroundStatistics(data: Float32Array, threshold: number): ForegroundStatistics {
  let count = 0;
  let sum = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v > threshold) {
      sum += v;
      count++;
    }
  }
  if (count === 0) return { mean: 0, std: 0, count: 0 };
  const mean = sum / count;
  let squares = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v > threshold) squares += (v - mean) * (v - mean);
  }
  return { mean, std: Math.sqrt(squares / count), count };
}

/**
 * The brain normalisation; statistics from `data` itself unless given (see the file comment).
 * Returns a new array; with no foreground voxel the result is all zeros.
 */
export function normaliseBrain(
  data: Float32Array,
  threshold: number = BRAIN_NORMALISATION.threshold,
  epsilon: number = BRAIN_NORMALISATION.epsilon,
  statistics: ForegroundStatistics = foregroundStatistics(data, threshold),
): Float32Array {
  const out = new Float32Array(data.length);
  const { mean } = statistics;
  const scale = 1 / (statistics.std + epsilon);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v > threshold) out[i] = (v - mean) * scale;
  }
  return out;
}

/** The abdomen normalisation x · 2 − 1 (input assumed in [0, 1] → [−1, 1]). Returns a new array. */
export function normaliseAbdomen(data: Float32Array): Float32Array {
  return normaliseLinear(data, 2, -1);
}

function normaliseLinear(data: Float32Array, scale: number, offset: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] * scale + offset;
  return out;
}

/**
 * Apply a normalisation descriptor. `statistics` is used by the z-score kind only (computed from
 * `data` when omitted). Returns a new array.
 */
export function normalise(
  data: Float32Array,
  normalisation: Normalisation,
  statistics?: ForegroundStatistics,
): Float32Array {
  switch (normalisation.kind) {
    case 'foreground-zscore':
      return normaliseBrain(data, normalisation.threshold, normalisation.epsilon, statistics);
    case 'linear':
      return normaliseLinear(data, normalisation.scale, normalisation.offset);
  }
}
