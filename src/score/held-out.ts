/**
 * What the calibrations on held-out NORMAL volumes share (lsr, lsgs, vae-*): reading the volumes
 * (an unusable file is skipped with one log line; none usable is an error), the per-code NLL
 * thresholds λs / λp, and the pixel scale c of AS / (AS + c) over the foreground of restored volumes.
 * Percentiles interpolate linearly between order statistics (numpy's default).
 */
import { describeError, InputFileError } from '../errors.js';
import { countNonFinite, readNifti } from '../io/nifti.js';
import { normalisationFor, type Region } from '../volume/normalise.js';
import { normalisedBackground } from '../volume/preprocess.js';
import type { Volume } from '../volume/volume.js';
import type { ChunkRunners } from '../inference/method-runtime.js';
import type { ChunkRunner } from './slice-chunks.js';
import { rawSampleScore } from './sample-score.js';

export const SAMPLE_LAMBDA_QUANTILE = 0.98;
export const PIXEL_LAMBDA_QUANTILE = 0.9;
export const PIXEL_SCALE_QUANTILE = 0.99;

/** q-quantile (0 ≤ q ≤ 1) of values sorted ascending, linear interpolation between order statistics. */
export function quantileOfSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) throw new RangeError('quantile of no values');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be in [0, 1], got ${q}`);
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (at - lo) * (sorted[hi] - sorted[lo]);
}

export function quantile(values: Float32Array, q: number): number {
  return quantileOfSorted(Float32Array.from(values).sort(), q);
}

type Log = (line: string) => void;

/** The volume of `file`, or null (logged as `skipping …`) when it cannot be read or holds NaN / ∞. */
export async function readUsableVolume(file: string, log: Log): Promise<Volume | null> {
  try {
    const { volume } = await readNifti(file);
    const bad = countNonFinite(volume.data);
    if (bad > 0) throw new InputFileError(file, `${bad} voxels are NaN or infinite`);
    return volume;
  } catch (err) {
    log(`skipping ${describeError(err)}`);
    return null;
  }
}

/**
 * Calls `visit` on every usable volume of `files` in order (`index` counts usable volumes only) and
 * returns how many there were; throws when there is none.
 */
export async function forEachUsableVolume(
  files: readonly string[],
  log: Log,
  visit: (volume: Volume, file: string, index: number) => Promise<void>,
): Promise<number> {
  let usable = 0;
  for (const file of files) {
    const volume = await readUsableVolume(file, log);
    if (volume === null) continue;
    await visit(volume, file, usable);
    usable++;
  }
  if (usable === 0) throw new InputFileError(files.join(', ') || '(no files)', 'no usable held-out normal volume to calibrate on');
  return usable;
}

export interface HeldOutNlls {
  /** NLL of every code of each usable volume, in file order. */
  readonly perVolume: Float32Array[];
  /** The first `pixelVolumes` usable volumes, kept for the pixel scale. */
  readonly kept: Volume[];
}

/** Per-code NLLs (`nllsOf`) of every usable held-out volume. */
export async function heldOutCodeNlls(
  files: readonly string[],
  pixelVolumes: number,
  log: Log,
  nllsOf: (volume: Volume) => Promise<Float32Array>,
): Promise<HeldOutNlls> {
  const perVolume: Float32Array[] = [];
  const kept: Volume[] = [];
  await forEachUsableVolume(files, log, async (volume) => {
    perVolume.push(await nllsOf(volume));
    if (kept.length < pixelVolumes) kept.push(volume);
  });
  return { perVolume, kept };
}

export interface NllThresholds {
  /** Every held-out code's NLL, sorted ascending. */
  readonly all: Float32Array;
  /** λs: codes above it count in the sample score. */
  readonly lambdaS: number;
  /** λp: codes above it are resampled in the restoration. */
  readonly lambdaP: number;
  /** Raw sample score of each volume under λs. */
  readonly raw: number[];
}

export function nllThresholds(perVolume: readonly Float32Array[]): NllThresholds {
  const all = new Float32Array(perVolume.reduce((a, v) => a + v.length, 0));
  let at = 0;
  for (const v of perVolume) {
    all.set(v, at);
    at += v.length;
  }
  all.sort();
  const lambdaS = quantileOfSorted(all, SAMPLE_LAMBDA_QUANTILE);
  const lambdaP = quantileOfSorted(all, PIXEL_LAMBDA_QUANTILE);
  return { all, lambdaS, lambdaP, raw: perVolume.map((nll) => rawSampleScore(nll, lambdaS)) };
}

/** One log line; `lambdaPName` is how the method calls λp. */
export function describeNllThresholds(t: NllThresholds, volumes: number, lambdaPName: string): string {
  return (
    `${volumes} volumes, ${t.all.length} codes: λs = ${t.lambdaS.toFixed(3)} nats, ${lambdaPName} = ${t.lambdaP.toFixed(3)} nats; ` +
    `raw sample scores ${t.raw.map((r) => r.toFixed(1)).join(', ')}`
  );
}

/** The `heldOut` provenance stored with an NLL-based calibration. */
export function nllProvenance(t: NllThresholds, volumes: number, pixelVolumes: number, seed: number): Record<string, unknown> {
  return {
    volumes,
    codes: t.all.length,
    pixelVolumes,
    seed,
    nllQuantiles: Object.fromEntries([0.5, 0.9, 0.98, 0.999].map((q) => [String(q), quantileOfSorted(t.all, q)])),
  };
}

/** c: the 99th percentile of `values`; 1 when there are none or it is not positive and finite. */
export function pixelScaleOf(values: readonly number[]): number {
  const q = values.length > 0 ? quantileOfSorted(Float64Array.from(values).sort(), PIXEL_SCALE_QUANTILE) : 1;
  return q > 0 && Number.isFinite(q) ? q : 1;
}

export interface HeldOutRestoration {
  /** The normalised slice stack the score was computed on (background = the region's value). */
  readonly normalised: Float32Array;
  /** Smoothed restoration score, same layout as `normalised`. */
  readonly smoothed: Float32Array;
  readonly wallSeconds: number;
  /** What the restoration did, for the log. */
  readonly description: string;
}

/**
 * The pixel scale over the foreground of `volumes` restored by `restore` (called in order, on the
 * runner of `runners`, which are closed at the end), one log line per volume and one for the result;
 * c = 1 when there is no volume.
 */
export async function heldOutPixelScale<TTask, TResult>(
  volumes: readonly Volume[],
  region: Region,
  log: Log,
  runners: ChunkRunners<TTask, TResult>,
  restore: (volume: Volume, index: number, runner: { run: ChunkRunner<TTask, TResult>; chunks: number }) => Promise<HeldOutRestoration>,
): Promise<number> {
  const background = normalisedBackground(normalisationFor(region));
  const collected: number[] = [];
  try {
    for (const [i, volume] of volumes.entries()) {
      const result = await restore(volume, i, await runners.get());
      result.smoothed.forEach((v, j) => {
        if (result.normalised[j] !== background) collected.push(v);
      });
      log(`pixel scale: volume ${i + 1}/${volumes.length} restored in ${result.wallSeconds.toFixed(1)} s; ${result.description}`);
    }
  } finally {
    await runners.close();
  }
  const scale = pixelScaleOf(collected);
  log(`pixel scale c = ${scale.toFixed(4)} (99th percentile of ${collected.length} foreground values of ${volumes.length} volumes)`);
  return scale;
}
