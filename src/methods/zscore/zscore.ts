/**
 * The training-free baseline: how far each voxel lies from the voxel-wise statistics of normal volumes.
 *
 * Fit: every normal volume is box-smoothed and resampled onto a coarse grid (default 64³); Welford's
 * running mean and variance give μ and σ per grid voxel (σ floored, so the background, where normal
 * volumes are all 0, does not turn every speck of noise into an anomaly).
 * Score: μ and σ are resampled trilinearly onto the case's grid; z = |x − μ| / σ; the z-map gets the
 * same post-processing as latent space restoration (3³ min-pool, then 7³ average pool).
 * Pixel score = 1 − exp(−z / zScale) ∈ [0, 1). Sample score = mean of the top `topFraction` of the
 * pooled z-map, mapped to [0, 1] by the calibration fitted on held-out normal volumes.
 * Needs no network, no GPU and no training beyond two running moments — a floor that any learned
 * method must clearly beat. On a population made from one real subject it is strong, because every
 * normal volume is a deformed copy of the same anatomy: read its numbers with that in mind.
 */
import { avgPool3d, minPool3d } from '../../volume/pool3d.js';
import { resampleData } from '../../volume/trilinear.js';
import type { Shape3, Volume } from '../../volume/volume.js';
import { voxelCount } from '../../volume/volume.js';
import { applySampleCalibration, type SampleCalibration } from '../../score/calibration.js';

export interface ZScoreConfig {
  /** Edge length of the grid holding μ and σ. */
  readonly grid: number;
  /** Shape of the volumes the statistics were fitted on (cases must have this shape). */
  readonly volumeShape: Shape3;
  /** σ floor, in intensity units. */
  readonly sigmaFloor: number;
  readonly minPool: number;
  readonly avgPool: number;
  /** z at which the pixel score reaches 1 − 1/e. */
  readonly zScale: number;
  /** Fraction of voxels whose mean pooled z is the raw sample score. */
  readonly topFraction: number;
}

export const DEFAULT_ZSCORE_CONFIG: Omit<ZScoreConfig, 'volumeShape'> = Object.freeze({
  grid: 64,
  sigmaFloor: 0.05,
  minPool: 3,
  avgPool: 7,
  zScale: 4,
  topFraction: 0.001,
});

export interface ZScoreStatistics {
  readonly mean: Float32Array;
  readonly sigma: Float32Array;
}

/** Coarse-grid copy of a volume: box average over the down-sampling factor, then trilinear resampling. */
export function toStatisticsGrid(data: Float32Array, shape: Shape3, grid: number): Float32Array {
  const kernel = shape.map((n) => {
    const k = Math.max(1, Math.round(n / grid));
    return k % 2 === 1 ? k : k + 1;
  }) as unknown as readonly [number, number, number];
  const smoothed = kernel.every((k) => k === 1) ? data : avgPool3d(data, shape, kernel);
  return resampleData(smoothed, shape, [grid, grid, grid]);
}

/** Running voxel-wise mean and variance (Welford), fed one coarse volume at a time. */
export class RunningMoments {
  private n = 0;
  private readonly mean: Float64Array;
  private readonly m2: Float64Array;

  constructor(readonly size: number) {
    this.mean = new Float64Array(size);
    this.m2 = new Float64Array(size);
  }

  get count(): number {
    return this.n;
  }

  add(values: Float32Array): void {
    if (values.length !== this.size) throw new RangeError(`expected ${this.size} values, got ${values.length}`);
    this.n++;
    for (let i = 0; i < this.size; i++) {
      const d = values[i]! - this.mean[i]!;
      this.mean[i]! += d / this.n;
      this.m2[i]! += d * (values[i]! - this.mean[i]!);
    }
  }

  statistics(sigmaFloor: number): ZScoreStatistics {
    if (this.n === 0) throw new Error('no volume was added');
    const mean = Float32Array.from(this.mean);
    const sigma = new Float32Array(this.size);
    const dof = Math.max(1, this.n - 1);
    for (let i = 0; i < this.size; i++) sigma[i] = Math.sqrt(this.m2[i]! / dof) + sigmaFloor;
    return { mean, sigma };
  }
}

/** Pooled voxel z-map of a volume against the statistics (the volume must have the fitted shape). */
export function pooledZMap(volume: Volume, stats: ZScoreStatistics, cfg: ZScoreConfig): Float32Array {
  const shape = volume.shape;
  if (shape.some((n, a) => n !== cfg.volumeShape[a])) {
    throw new Error(`volume is ${shape.join('×')}, the z-score statistics were fitted on ${cfg.volumeShape.join('×')}`);
  }
  const gridShape: Shape3 = [cfg.grid, cfg.grid, cfg.grid];
  const mean = resampleData(stats.mean, gridShape, shape);
  const z = resampleData(stats.sigma, gridShape, shape); // σ first, overwritten by z in place
  const x = volume.data;
  for (let i = 0; i < z.length; i++) z[i] = Math.abs(x[i]! - mean[i]!) / z[i]!;
  const k = cfg.minPool;
  const a = cfg.avgPool;
  return avgPool3d(minPool3d(z, shape, [k, k, k]), shape, [a, a, a]);
}

export function rawSampleScore(zmap: Float32Array, topFraction: number): number {
  const k = Math.max(1, Math.round(zmap.length * topFraction));
  return meanOfLargest(zmap, k);
}

export function pixelScoreFromZ(zmap: Float32Array, zScale: number): Float32Array {
  const out = new Float32Array(zmap.length);
  for (let i = 0; i < zmap.length; i++) out[i] = 1 - Math.exp(-zmap[i]! / zScale);
  return out;
}

export function sampleScoreFromZ(zmap: Float32Array, cfg: ZScoreConfig, calibration: SampleCalibration): number {
  return applySampleCalibration(calibration, rawSampleScore(zmap, cfg.topFraction));
}

/**
 * Mean of the k largest values without sorting everything: a histogram pass finds the value range
 * holding the top k, and only that range is sorted.
 */
export function meanOfLargest(values: Float32Array, k: number): number {
  if (k <= 0 || values.length === 0) throw new RangeError('need k ≥ 1 and a non-empty array');
  k = Math.min(k, values.length);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (hi === lo) return hi;
  const bins = 4096;
  const counts = new Uint32Array(bins);
  const scale = (bins - 1) / (hi - lo);
  for (const v of values) counts[Math.floor((v - lo) * scale)]!++;
  let above = 0;
  let bin = bins - 1;
  while (bin > 0 && above + counts[bin]! < k) above += counts[bin--]!;
  const candidates: number[] = [];
  for (const v of values) if (Math.floor((v - lo) * scale) >= bin) candidates.push(v);
  candidates.sort((a, b) => b - a);
  let sum = 0;
  for (let i = 0; i < k; i++) sum += candidates[i]!;
  return sum / k;
}

export function statisticsSize(cfg: Pick<ZScoreConfig, 'grid'>): number {
  return voxelCount([cfg.grid, cfg.grid, cfg.grid]);
}
