/** Fitting, storing and running the z-score baseline (see zscore.ts for the method). */
import { createRng, shuffled } from '../../engine/random.js';
import { InputFileError, describeError } from '../../errors.js';
import { countNonFinite, readNifti } from '../../io/nifti.js';
import { readTensorBundle, writeTensorBundle } from '../../io/tensor-bundle.js';
import type { CaseContext, Predictor } from '../../mood/predictor.js';
import { fitSampleCalibration, isSampleCalibration, type SampleCalibration } from '../../score/calibration.js';
import type { Shape3, Volume } from '../../volume/volume.js';
import {
  DEFAULT_ZSCORE_CONFIG,
  FOREGROUND_THRESHOLD,
  RunningMoments,
  fittedSigmaFloor,
  pixelScoreFromZ,
  pooledZMap,
  rawSampleScoreOf,
  zscoreMaps,
  sampleScoreFromZ,
  standardisedIntensities,
  statisticsForSettings,
  statisticsSize,
  toStatisticsGrid,
  zscoreSettings,
  type ZScoreConfig,
  type ZScoreStatistics,
} from './zscore.js';
import { foregroundQuantiles, meanQuantiles } from './zscore-intensity.js';

/** Template quantiles when a fit with intensity 'quantile' does not say. */
export const DEFAULT_TEMPLATE_QUANTILES = 101;

export const ZSCORE_KIND = 'zscore-baseline';
export const ZSCORE_FILE = 'zscore';

export interface ZScoreModel {
  readonly config: ZScoreConfig;
  readonly stats: ZScoreStatistics;
  readonly calibration: SampleCalibration;
}

export interface FitZScoreOptions {
  readonly files: readonly string[];
  /** Held-out normal volumes for the sample-score calibration (at least 1, at most half); unused with calibrationFiles. */
  readonly holdout: number;
  /** Separate normal volumes for the calibration: then every file of `files` is fitted on. */
  readonly calibrationFiles?: readonly string[];
  readonly seed: number;
  readonly config?: Partial<Omit<ZScoreConfig, 'volumeShape'>>;
  readonly log: (line: string) => void;
}

export async function fitZScore(opts: FitZScoreOptions): Promise<ZScoreModel> {
  const order = shuffled([...opts.files].sort(), createRng(opts.seed));
  if (order.length < 2) throw new InputFileError(opts.files[0] ?? '(no files)', 'the z-score baseline needs at least 2 normal volumes');
  const separate = opts.calibrationFiles !== undefined && opts.calibrationFiles.length > 0;
  const holdoutCount = separate ? 0 : Math.max(1, Math.min(opts.holdout, Math.floor(order.length / 2)));
  const holdout = separate ? [...opts.calibrationFiles!].sort() : order.slice(0, holdoutCount);
  const fitFiles = order.slice(holdoutCount);
  const base = { ...DEFAULT_ZSCORE_CONFIG, ...opts.config };
  const quantileMatching = (base.intensity ?? 'none') === 'quantile';
  let shape: Shape3 | null = null;
  let template: Float32Array | undefined;
  if (quantileMatching) {
    // First pass: the template is the mean of the fit volumes' foreground quantile functions.
    const count = base.quantiles ?? DEFAULT_TEMPLATE_QUANTILES;
    const vectors: Float64Array[] = [];
    for (const file of fitFiles) {
      const volume = await readUsable(file, shape, opts.log);
      const q = volume && foregroundQuantiles(volume.data, FOREGROUND_THRESHOLD, count);
      if (!volume || !q) continue;
      shape ??= volume.shape;
      vectors.push(q);
    }
    if (vectors.length === 0) throw new InputFileError(fitFiles.join(', '), 'no usable normal volume with foreground to fit the template on');
    template = meanQuantiles(vectors);
    Object.assign(base, { quantiles: count });
  }
  const moments = new RunningMoments(statisticsSize(base));
  for (const file of fitFiles) {
    const volume = await readUsable(file, shape, opts.log);
    if (!volume) continue;
    shape ??= volume.shape;
    const x = standardisedIntensities(volume, { mean: new Float32Array(0), sigma: new Float32Array(0), template }, { ...base, volumeShape: shape });
    moments.add(toStatisticsGrid(x, volume.shape, base.grid));
  }
  if (moments.count === 0 || !shape) throw new InputFileError(fitFiles.join(', '), 'no usable normal volume to fit on');
  const floor =
    base.sigmaFloorQuantile === undefined ? base.sigmaFloor : fittedSigmaFloor(moments.means(), moments.standardDeviations(), base.sigmaFloorQuantile);
  const config: ZScoreConfig = { ...base, sigmaFloor: floor, volumeShape: shape };
  const stats: ZScoreStatistics = { ...moments.statistics(config.sigmaFloor), ...(template ? { template } : {}) };
  const raw: number[] = [];
  for (const file of holdout) {
    const volume = await readUsable(file, shape, opts.log);
    if (!volume) continue;
    const maps = zscoreMaps(volume, stats, config, { pixel: false });
    raw.push(rawSampleScoreOf(maps.sample, maps.sampleShape, config));
  }
  if (raw.length === 0) throw new InputFileError(holdout.join(', '), 'no usable held-out volume for the calibration');
  opts.log(
    `fitted on ${moments.count} volumes (σ floor ${floor.toPrecision(4)}), calibrated on ${raw.length} held-out volumes (raw scores ${raw.map((r) => r.toFixed(3)).join(', ')})`,
  );
  return { config, stats, calibration: fitSampleCalibration(raw) };
}

async function readUsable(file: string, shape: Shape3 | null, log: (line: string) => void): Promise<Volume | null> {
  try {
    const { volume } = await readNifti(file);
    if (countNonFinite(volume.data) > 0) throw new InputFileError(file, 'NaN or infinite voxels');
    if (shape && volume.shape.some((n, a) => n !== shape[a])) {
      throw new InputFileError(file, `shape ${volume.shape.join('×')} differs from ${shape.join('×')}`);
    }
    return volume;
  } catch (err) {
    log(`skipping ${describeError(err)}`);
    return null;
  }
}

export async function saveZScore(dir: string, model: ZScoreModel, extra: Record<string, unknown> = {}): Promise<void> {
  const g = model.config.grid;
  await writeTensorBundle(dir, ZSCORE_FILE, {
    kind: ZSCORE_KIND,
    config: model.config,
    extra: { ...extra, calibration: model.calibration },
    tensors: new Map([
      ['mean', { shape: [g, g, g], values: model.stats.mean }],
      ['sigma', { shape: [g, g, g], values: model.stats.sigma }],
      ...(model.stats.template ? ([['template', { shape: [model.stats.template.length], values: model.stats.template }]] as const) : []),
    ]),
  });
}

export async function loadZScore(dir: string): Promise<ZScoreModel> {
  const bundle = readTensorBundle(dir, ZSCORE_FILE, ZSCORE_KIND);
  const config = bundle.config as ZScoreConfig;
  const calibration = bundle.extra?.calibration;
  const mean = bundle.tensors.get('mean');
  const sigma = bundle.tensors.get('sigma');
  const template = bundle.tensors.get('template');
  const g = config?.grid;
  const ok = (t: typeof mean): boolean => !!t && t.shape.length === 3 && t.shape.every((n) => n === g);
  if (!Number.isInteger(g) || !ok(mean) || !ok(sigma) || !isSampleCalibration(calibration) || !Array.isArray(config.volumeShape)) {
    throw new InputFileError(`${dir}/${ZSCORE_FILE}.json`, 'z-score manifest does not match its tensors or lacks the calibration');
  }
  if ((config.intensity ?? 'none') === 'quantile' && (!template || template.shape.length !== 1 || template.values.length < 2)) {
    throw new InputFileError(`${dir}/${ZSCORE_FILE}.json`, 'intensity=quantile but no template quantiles among the tensors');
  }
  const stats: ZScoreStatistics = { mean: mean!.values, sigma: sigma!.values, ...(template ? { template: template.values } : {}) };
  return { config, stats, calibration };
}

/**
 * The model scoring with `overrides` (key → text, see `zscoreSettings`) applied to its config. The
 * calibration stays the fitted one, so overridden sample scores keep their ranking but not their scale.
 */
export function withZScoreSettings(model: ZScoreModel, overrides: Readonly<Record<string, string>>): ZScoreModel {
  if (Object.keys(overrides).length === 0) return model;
  const settings = zscoreSettings(model.config, overrides);
  const { stats, config } = statisticsForSettings(model.stats, model.config, settings);
  return { ...model, stats, config };
}

export function zscorePredictor(model: ZScoreModel): Predictor {
  return {
    name: 'zscore',
    tasks: ['sample', 'pixel'],
    async sampleScore(volume: Volume, _ctx: CaseContext): Promise<number> {
      return sampleScoreFromZ(zscoreMaps(volume, model.stats, model.config, { pixel: false }), model.config, model.calibration);
    },
    async pixelScore(volume: Volume, _ctx: CaseContext): Promise<Float32Array> {
      return pixelScoreFromZ(pooledZMap(volume, model.stats, model.config), model.config.zScale);
    },
  };
}
