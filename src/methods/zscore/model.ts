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
  RunningMoments,
  pixelScoreFromZ,
  pooledZMap,
  rawSampleScore,
  sampleScoreFromZ,
  statisticsSize,
  toStatisticsGrid,
  type ZScoreConfig,
  type ZScoreStatistics,
} from './zscore.js';

export const ZSCORE_KIND = 'zscore-baseline';
export const ZSCORE_FILE = 'zscore';

export interface ZScoreModel {
  readonly config: ZScoreConfig;
  readonly stats: ZScoreStatistics;
  readonly calibration: SampleCalibration;
}

export interface FitZScoreOptions {
  readonly files: readonly string[];
  /** Held-out normal volumes for the sample-score calibration (at least 1, at most half). */
  readonly holdout: number;
  readonly seed: number;
  readonly config?: Partial<Omit<ZScoreConfig, 'volumeShape'>>;
  readonly log: (line: string) => void;
}

export async function fitZScore(opts: FitZScoreOptions): Promise<ZScoreModel> {
  const order = shuffled([...opts.files].sort(), createRng(opts.seed));
  const holdoutCount = Math.max(1, Math.min(opts.holdout, Math.floor(order.length / 2)));
  if (order.length < 2) throw new InputFileError(opts.files[0] ?? '(no files)', 'the z-score baseline needs at least 2 normal volumes');
  const holdout = order.slice(0, holdoutCount);
  const fitFiles = order.slice(holdoutCount);
  const base = { ...DEFAULT_ZSCORE_CONFIG, ...opts.config };
  let shape: Shape3 | null = null;
  const moments = new RunningMoments(statisticsSize(base));
  for (const file of fitFiles) {
    const volume = await readUsable(file, shape, opts.log);
    if (!volume) continue;
    shape ??= volume.shape;
    moments.add(toStatisticsGrid(volume.data, volume.shape, base.grid));
  }
  if (moments.count === 0 || !shape) throw new InputFileError(fitFiles.join(', '), 'no usable normal volume to fit on');
  const config: ZScoreConfig = { ...base, volumeShape: shape };
  const stats = moments.statistics(config.sigmaFloor);
  const raw: number[] = [];
  for (const file of holdout) {
    const volume = await readUsable(file, shape, opts.log);
    if (volume) raw.push(rawSampleScore(pooledZMap(volume, stats, config), config.topFraction));
  }
  if (raw.length === 0) throw new InputFileError(holdout.join(', '), 'no usable held-out volume for the calibration');
  opts.log(`fitted on ${moments.count} volumes, calibrated on ${raw.length} held-out volumes (raw scores ${raw.map((r) => r.toFixed(3)).join(', ')})`);
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
    ]),
  });
}

export async function loadZScore(dir: string): Promise<ZScoreModel> {
  const bundle = readTensorBundle(dir, ZSCORE_FILE, ZSCORE_KIND);
  const config = bundle.config as ZScoreConfig;
  const calibration = bundle.extra?.calibration;
  const mean = bundle.tensors.get('mean');
  const sigma = bundle.tensors.get('sigma');
  const g = config?.grid;
  const ok = (t: typeof mean): boolean => !!t && t.shape.length === 3 && t.shape.every((n) => n === g);
  if (!Number.isInteger(g) || !ok(mean) || !ok(sigma) || !isSampleCalibration(calibration) || !Array.isArray(config.volumeShape)) {
    throw new InputFileError(`${dir}/${ZSCORE_FILE}.json`, 'z-score manifest does not match its tensors or lacks the calibration');
  }
  return { config, stats: { mean: mean!.values, sigma: sigma!.values }, calibration };
}

export function zscorePredictor(model: ZScoreModel): Predictor {
  return {
    name: 'zscore',
    tasks: ['sample', 'pixel'],
    async sampleScore(volume: Volume, _ctx: CaseContext): Promise<number> {
      return sampleScoreFromZ(pooledZMap(volume, model.stats, model.config), model.config, model.calibration);
    },
    async pixelScore(volume: Volume, _ctx: CaseContext): Promise<Float32Array> {
      return pixelScoreFromZ(pooledZMap(volume, model.stats, model.config), model.config.zScale);
    },
  };
}
