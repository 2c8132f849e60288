/**
 * The training-free baseline: how far each voxel lies from the voxel-wise statistics of normal volumes.
 *
 * Fit: every normal volume (optionally quantile-matched to the template, see zscore-intensity.ts) is
 * box-smoothed and resampled onto a coarse grid (default 64³); Welford's running mean and variance
 * give μ and σ per grid voxel (σ + a floor, so the background, where normal volumes are all 0, does not
 * turn every speck of noise into an anomaly; the floor is fixed or a quantile of σ over the foreground).
 * Score, `resolution` = 'case' (the original): μ and σ are resampled trilinearly onto the case's grid;
 * z = |x − μ| / σ on the raw case; 3³ min-pool, then 7³ average pool (case voxels).
 * Score, `resolution` = 'grid' (matched): the case is smoothed and resampled exactly as the statistics
 * were, z is computed on the grid, pooled there (kernels in grid voxels) and resampled to the case;
 * the sample score aggregates the grid map.
 * Optionally the final map is zeroed outside the case's hole-filled body mask.
 * Pixel score = 1 − exp(−z / zScale) ∈ [0, 1). Sample score = an aggregate of the z-map (mean of its top
 * `topFraction`, or the maximum of a `sampleBox`³ box mean), mapped to [0, 1] by the calibration fitted
 * on held-out normal volumes.
 * Needs no network, no GPU and no training beyond two running moments — a floor that any learned
 * method must clearly beat. On a population made from one real subject it is strong, because every
 * normal volume is a deformed copy of the same anatomy: read its numbers with that in mind.
 * Every field added after the first release is optional: absent means the original behaviour, so
 * older weights load and score exactly as before.
 */
import { avgPool3d, minPool3d } from '../../volume/pool3d.js';
import { resampleData } from '../../volume/trilinear.js';
import type { Shape3, Volume } from '../../volume/volume.js';
import { voxelCount } from '../../volume/volume.js';
import { applySampleCalibration, type SampleCalibration } from '../../score/calibration.js';
import { applyMask, bodyMask } from '../../volume/body-mask.js';
import { meanOfLargest } from '../../score/sample-aggregates.js';
import { foregroundQuantiles, matchQuantiles } from './zscore-intensity.js';

export type ZResolution = 'case' | 'grid';
export type ZIntensity = 'none' | 'quantile';
export type ZSampleAggregate = 'top' | 'boxmax';

/** Intensities above this are foreground (the MOOD volumes have an exactly-0 background). */
export const FOREGROUND_THRESHOLD = 0;

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
  /** Fraction of voxels whose mean pooled z is the raw sample score ('top' aggregate). */
  readonly topFraction: number;
  /** Where z is computed (absent: 'case'). With 'grid', minPool and avgPool count grid voxels. */
  readonly resolution?: ZResolution;
  /** Per-case intensity standardisation (absent: 'none'); 'quantile' needs the template of the fit. */
  readonly intensity?: ZIntensity;
  /** Quantiles in the template (fixed by the fit). */
  readonly quantiles?: number;
  /** When set, the σ floor is this quantile of σ over the statistics' foreground (sigmaFloor records it). */
  readonly sigmaFloorQuantile?: number;
  /** Zero the map outside the case's hole-filled body mask (absent: false). */
  readonly mask?: boolean;
  /** Raw sample score (absent: 'top'): mean of the top fraction, or maximum of a box mean. */
  readonly sampleAggregate?: ZSampleAggregate;
  /** Box edge (case voxels, odd) of the 'boxmax' aggregate. */
  readonly sampleBox?: number;
  /**
   * With 'grid': z of a grid voxel is the smallest |x − μ| / σ over the statistics within this many grid
   * voxels along each axis (absent: 0), so that a case shifted against the normals by up to that much
   * is not an anomaly at every edge; an anomaly must differ from every nearby normal value.
   */
  readonly search?: number;
}

/**
 * What `train zscore` fits and stores (chosen on the development set, docs/quality.md): matched
 * resolution, quantile matching, body mask. Weights store their whole config; a field they lack means
 * the original behaviour (LEGACY_ZSCORE_CONFIG), never these defaults.
 */
export const DEFAULT_ZSCORE_CONFIG: Omit<ZScoreConfig, 'volumeShape'> = Object.freeze({
  grid: 64,
  sigmaFloor: 0.05,
  minPool: 1,
  avgPool: 1,
  zScale: 4,
  topFraction: 0.001,
  resolution: 'grid',
  intensity: 'quantile',
  quantiles: 101,
  mask: true,
});

/** The original baseline (raw case against 64³ statistics, 3³ min and 7³ mean pooling, no matching, no mask). */
export const LEGACY_ZSCORE_CONFIG: Omit<ZScoreConfig, 'volumeShape'> = Object.freeze({
  grid: 64,
  sigmaFloor: 0.05,
  minPool: 3,
  avgPool: 7,
  zScale: 4,
  topFraction: 0.001,
});

export interface ZScoreStatistics {
  readonly mean: Float32Array;
  /** Standard deviation plus the config's sigmaFloor. */
  readonly sigma: Float32Array;
  /** Template foreground quantiles (present when fitted with intensity 'quantile'). */
  readonly template?: Float32Array;
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

  /** Voxel-wise mean. */
  means(): Float32Array {
    if (this.n === 0) throw new Error('no volume was added');
    return Float32Array.from(this.mean);
  }

  /** Voxel-wise sample standard deviation (n − 1). */
  standardDeviations(): Float32Array {
    if (this.n === 0) throw new Error('no volume was added');
    const dof = Math.max(1, this.n - 1);
    return Float32Array.from(this.m2, (m2) => Math.sqrt(m2 / dof));
  }

  statistics(sigmaFloor: number): ZScoreStatistics {
    const dof = Math.max(1, this.n - 1);
    const sigma = Float32Array.from(this.m2, (m2) => Math.sqrt(m2 / dof) + sigmaFloor);
    return { mean: this.means(), sigma };
  }
}

/** The case's intensities as the statistics expect them (quantile-matched when configured). */
export function standardisedIntensities(volume: Volume, stats: ZScoreStatistics, cfg: ZScoreConfig): Float32Array {
  if ((cfg.intensity ?? 'none') === 'none') return volume.data;
  const template = stats.template;
  if (!template) throw new Error('intensity=quantile needs the template quantiles of a fit with intensity=quantile; refit with `train zscore`');
  const q = foregroundQuantiles(volume.data, FOREGROUND_THRESHOLD, template.length);
  return q ? matchQuantiles(volume.data, q, template, FOREGROUND_THRESHOLD) : volume.data;
}

/** What one scoring pass of a case yields. */
export interface ZScoreMaps {
  /** The final z-map on the case's grid (pixel task), when asked for. */
  readonly pixel?: Float32Array;
  /** The map the sample score aggregates: the pixel map ('case'), or the pooled grid map ('grid'). */
  readonly sample: Float32Array;
  readonly sampleShape: Shape3;
}

/**
 * Scores a case against the statistics (the case must have the fitted shape). With `resolution` 'grid'
 * the sample score needs only the coarse map, so `pixel: false` skips everything at case resolution;
 * its mask is then the body mask of the grid copy of the case (one grid voxel of margin).
 */
export function zscoreMaps(volume: Volume, stats: ZScoreStatistics, cfg: ZScoreConfig, want: { pixel: boolean }, memo?: ZScoreCaseMemo): ZScoreMaps {
  const shape = volume.shape;
  if (shape.some((n, a) => n !== cfg.volumeShape[a])) {
    throw new Error(`volume is ${shape.join('×')}, the z-score statistics were fitted on ${cfg.volumeShape.join('×')}`);
  }
  const remember = <T>(key: string, make: () => T): T => {
    if (!memo) return make();
    if (!memo.has(key)) memo.set(key, make());
    return memo.get(key) as T;
  };
  const intensity = cfg.intensity ?? 'none';
  const x = (): Float32Array => remember(`x:${intensity}`, () => standardisedIntensities(volume, stats, cfg));
  const caseMask = (z: Float32Array): Float32Array =>
    cfg.mask ? applyMask(z, remember('mask', () => bodyMask(volume.data, shape, { threshold: FOREGROUND_THRESHOLD }))) : z;
  if ((cfg.resolution ?? 'case') === 'case') {
    const z = caseMask(caseZMap(x(), shape, stats, cfg));
    return { pixel: z, sample: z, sampleShape: shape };
  }
  const gridShape: Shape3 = [cfg.grid, cfg.grid, cfg.grid];
  const xGrid = remember(`xGrid:${intensity}:${cfg.grid}`, () => toStatisticsGrid(x(), shape, cfg.grid));
  const zGrid = pool(gridZ(xGrid, stats, gridShape, cfg.search ?? 0), gridShape, cfg);
  const gridMask = (): Uint8Array =>
    remember(`gridMask:${intensity}:${cfg.grid}`, () => bodyMask(xGrid, gridShape, { threshold: FOREGROUND_THRESHOLD, margin: 1 }));
  const sample = cfg.mask ? applyMask(Float32Array.from(zGrid), gridMask()) : zGrid;
  return { ...(want.pixel ? { pixel: caseMask(resampleData(zGrid, gridShape, shape)) } : {}), sample, sampleShape: gridShape };
}

/**
 * Intermediate results of one case shared between scorings with different settings (standardised
 * intensities, grid copy, masks), for ablations; keys are internal. Use one memo per case.
 */
export type ZScoreCaseMemo = Map<string, unknown>;

/** The final z-map of a case on its own grid (what the pixel score maps to [0, 1]). */
export function pooledZMap(volume: Volume, stats: ZScoreStatistics, cfg: ZScoreConfig): Float32Array {
  return zscoreMaps(volume, stats, cfg, { pixel: true }).pixel!;
}

/** The original: raw case against μ and σ resampled onto its grid, pooled in case voxels. */
function caseZMap(x: Float32Array, shape: Shape3, stats: ZScoreStatistics, cfg: ZScoreConfig): Float32Array {
  const gridShape: Shape3 = [cfg.grid, cfg.grid, cfg.grid];
  const mean = resampleData(stats.mean, gridShape, shape);
  const z = resampleData(stats.sigma, gridShape, shape); // σ first, overwritten by z in place
  for (let i = 0; i < z.length; i++) z[i] = Math.abs(x[i]! - mean[i]!) / z[i]!;
  return pool(z, shape, cfg);
}

/**
 * |x − μ| / σ voxel by voxel, x already on the statistics grid; with `search` r > 0, the smallest such z
 * against the statistics of the (2r + 1)³ neighbourhood (cut at the grid's border).
 */
export function gridZ(xGrid: Float32Array, stats: ZScoreStatistics, shape: Shape3, search = 0): Float32Array {
  if (xGrid.length !== stats.mean.length || xGrid.length !== voxelCount(shape)) {
    throw new RangeError(`gridZ: ${xGrid.length} values, statistics of ${stats.mean.length}, grid ${shape.join('×')}`);
  }
  const { mean, sigma } = stats;
  const z = new Float32Array(xGrid.length);
  if (search <= 0) {
    for (let i = 0; i < z.length; i++) z[i] = Math.abs(xGrid[i]! - mean[i]!) / sigma[i]!;
    return z;
  }
  const [nx, ny, nz] = shape;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const at = i + nx * (j + ny * k);
        const x = xGrid[at]!;
        let best = Infinity;
        for (let c = Math.max(0, k - search); c <= Math.min(nz - 1, k + search); c++) {
          for (let b = Math.max(0, j - search); b <= Math.min(ny - 1, j + search); b++) {
            const row = nx * (b + ny * c);
            for (let a = Math.max(0, i - search); a <= Math.min(nx - 1, i + search); a++) {
              const v = Math.abs(x - mean[row + a]!) / sigma[row + a]!;
              if (v < best) best = v;
            }
          }
        }
        z[at] = best;
      }
    }
  }
  return z;
}

function pool(z: Float32Array, shape: Shape3, cfg: ZScoreConfig): Float32Array {
  const k = cfg.minPool;
  const a = cfg.avgPool;
  const minned = k > 1 ? minPool3d(z, shape, [k, k, k]) : z;
  return a > 1 ? avgPool3d(minned, shape, [a, a, a]) : minned;
}

/** The raw sample score of a map (`ZScoreMaps.sample`) under the config's aggregate; sampleBox counts that map's voxels. */
export function rawSampleScoreOf(zmap: Float32Array, shape: Shape3, cfg: ZScoreConfig): number {
  if ((cfg.sampleAggregate ?? 'top') === 'boxmax') {
    const b = cfg.sampleBox ?? 1;
    const boxed = b > 1 ? avgPool3d(zmap, shape, [b, b, b]) : zmap;
    let max = -Infinity;
    for (const v of boxed) if (v > max) max = v;
    return max;
  }
  return rawSampleScore(zmap, cfg.topFraction);
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

export function sampleScoreFromZ(maps: ZScoreMaps, cfg: ZScoreConfig, calibration: SampleCalibration): number {
  return applySampleCalibration(calibration, rawSampleScoreOf(maps.sample, maps.sampleShape, cfg));
}

/** The mean of the k largest values lives with the other sample aggregates. */
export { meanOfLargest };

export function statisticsSize(cfg: Pick<ZScoreConfig, 'grid'>): number {
  return voxelCount([cfg.grid, cfg.grid, cfg.grid]);
}

/** Foreground of the statistics: grid voxels whose mean exceeds this fraction of the largest mean. */
export const STATISTICS_FOREGROUND_FRACTION = 0.05;

/** Smallest fitted σ floor (a quantile of 0 over perfectly equal normals must not divide by 0). */
export const MIN_SIGMA_FLOOR = 1e-4;

/** The `q` quantile (0 … 1) of σ (without floor) over the statistics' foreground, at least MIN_SIGMA_FLOOR. */
export function fittedSigmaFloor(mean: Float32Array, sd: Float32Array, q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`σ-floor quantile must lie in [0, 1], got ${q}`);
  let top = 0;
  for (const m of mean) if (m > top) top = m;
  const values: number[] = [];
  for (let i = 0; i < mean.length; i++) if (mean[i]! > STATISTICS_FOREGROUND_FRACTION * top) values.push(sd[i]!);
  if (values.length === 0) throw new Error('the z-score statistics have no foreground to fit a σ floor on');
  values.sort((a, b) => a - b);
  const pos = q * (values.length - 1);
  const i = Math.floor(pos);
  const t = pos - i;
  const quantile = i + 1 < values.length ? values[i]! * (1 - t) + values[i + 1]! * t : values[i]!;
  return Math.max(MIN_SIGMA_FLOOR, quantile);
}

/**
 * Statistics and config for scoring with `settings` when the statistics were fitted with `fitted`:
 * σ is stored with the fitted floor added, so a different floor (a fixed one, or a new quantile) is
 * swapped in here. Returns the inputs unchanged when the floor is the same.
 */
export function statisticsForSettings(
  stats: ZScoreStatistics,
  fitted: ZScoreConfig,
  settings: ZScoreConfig,
): { stats: ZScoreStatistics; config: ZScoreConfig } {
  const quantileChanged = settings.sigmaFloorQuantile !== undefined && settings.sigmaFloorQuantile !== fitted.sigmaFloorQuantile;
  if (!quantileChanged && settings.sigmaFloor === fitted.sigmaFloor) return { stats, config: settings };
  const sd = Float32Array.from(stats.sigma, (s) => Math.max(0, s - fitted.sigmaFloor));
  const floor = quantileChanged ? fittedSigmaFloor(stats.mean, sd, settings.sigmaFloorQuantile!) : settings.sigmaFloor;
  if (!(floor > 0)) throw new Error(`the σ floor must be positive, got ${floor}`);
  for (let i = 0; i < sd.length; i++) sd[i]! += floor;
  return { stats: { ...stats, sigma: sd }, config: { ...settings, sigmaFloor: floor } };
}

type SettingParser = (value: string) => unknown;

const oddInteger: SettingParser = (v) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n % 2 === 0) throw new Error(`expected an odd positive integer, got "${v}"`);
  return n;
};
const numberIn =
  (lo: number, hi: number, loOpen: boolean): SettingParser =>
  (v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n > hi || n < lo || (loOpen && n === lo)) {
      throw new Error(`expected a number in ${loOpen ? '(' : '['}${lo}, ${hi === Infinity ? '∞)' : `${hi}]`}, got "${v}"`);
    }
    return n;
  };
const oneOf =
  (...values: string[]): SettingParser =>
  (v) => {
    if (!values.includes(v)) throw new Error(`expected one of ${values.join(', ')}, got "${v}"`);
    return v;
  };
const boolean: SettingParser = (v) => {
  if (['true', 'on', '1', 'yes'].includes(v)) return true;
  if (['false', 'off', '0', 'no'].includes(v)) return false;
  throw new Error(`expected true or false, got "${v}"`);
};

/** The scoring options that can be changed at predict time, with their parsers. */
const SETTINGS: Readonly<Record<string, SettingParser>> = Object.freeze({
  sigmaFloor: numberIn(0, Infinity, true),
  sigmaFloorQuantile: numberIn(0, 1, false),
  minPool: oddInteger,
  avgPool: oddInteger,
  zScale: numberIn(0, Infinity, true),
  topFraction: numberIn(0, 1, true),
  resolution: oneOf('case', 'grid'),
  intensity: oneOf('none', 'quantile'),
  mask: boolean,
  sampleAggregate: oneOf('top', 'boxmax'),
  sampleBox: oddInteger,
  search: (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 4) throw new Error(`expected an integer from 0 to 4, got "${v}"`);
    return n;
  },
});

/** Fields fixed by the fit (the shape of the stored statistics). */
const FIT_ONLY = new Set(['grid', 'volumeShape', 'quantiles']);

/** The names `zscoreSettings` accepts. */
export const ZSCORE_SETTING_KEYS: readonly string[] = Object.freeze(Object.keys(SETTINGS));

/**
 * `config` with `overrides` (key → text, e.g. from `--set key=value`) parsed and applied. Throws on an
 * unknown key (listing the valid ones), a field fixed by the fit, or a value of the wrong type. A fixed
 * `sigmaFloor` replaces a fitted quantile floor; giving both is an error.
 */
export function zscoreSettings<C extends Omit<ZScoreConfig, 'volumeShape'>>(config: C, overrides: Readonly<Record<string, string>>): C {
  const out: Record<string, unknown> = { ...config };
  for (const [key, text] of Object.entries(overrides)) {
    if (FIT_ONLY.has(key)) throw new Error(`zscore setting "${key}" is fixed when the statistics are fitted; refit with \`train zscore\``);
    const parse = Object.hasOwn(SETTINGS, key) ? SETTINGS[key] : undefined;
    if (!parse) throw new Error(`unknown zscore setting "${key}"; valid: ${ZSCORE_SETTING_KEYS.join(', ')}`);
    try {
      out[key] = parse(text.trim());
    } catch (err) {
      throw new Error(`zscore setting ${key}: ${(err as Error).message}`);
    }
  }
  if ('sigmaFloor' in overrides) {
    if ('sigmaFloorQuantile' in overrides) throw new Error('zscore settings sigmaFloor and sigmaFloorQuantile exclude each other: give one');
    delete out.sigmaFloorQuantile;
  }
  // The search runs on the statistics grid; at case resolution it would be silently ignored.
  if (((out.search as number | undefined) ?? 0) > 0 && ((out.resolution as string | undefined) ?? 'case') === 'case') {
    throw new Error('zscore setting search works on the statistics grid: add resolution=grid (these weights score at case resolution)');
  }
  return out as C;
}
