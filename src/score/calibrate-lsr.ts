/**
 * Calibration of the `lsr` method on held-out NORMAL volumes, stored with the weights as
 * `<weights>/lsr-calibration.json` (written atomically):
 * - λs = 98th and λp = 90th percentile of the per-code NLL of all held-out codes (the paper's 7 and 5
 *   nats were such percentiles for its model; ours depend on the trained prior, so they are measured);
 * - the sample-score calibration (monotone, untied) fitted on the held-out raw sample scores;
 * - pixelScale c of AS / (AS + c): the 99th percentile of the smoothed restoration score over the
 *   foreground of the first `pixelVolumes` held-out volumes (0 volumes: c = 1 normalised unit).
 * Percentiles interpolate linearly between order statistics (numpy's default).
 */
import { atomicWriteFileSync } from '../io/atomic.js';
import { countNonFinite, readNifti } from '../io/nifti.js';
import { describeError, InputFileError } from '../errors.js';
import { initEngine } from '../engine/backend.js';
import { inferenceSliceSelection } from '../volume/preprocess.js';
import type { Region } from '../volume/normalise.js';
import type { SliceSelection } from '../volume/slices.js';
import type { Volume } from '../volume/volume.js';
import { fitSampleCalibration } from './calibration.js';
import {
  calibrationPath,
  createLsrPool,
  DEFAULT_COPIES,
  defaultWorkerCount,
  describeRestoration,
  inProcessRunner,
  LSR_CALIBRATION_FORMAT,
  LSR_CALIBRATION_VERSION,
  pixelScoreStack,
  stackForeground,
  validateLsrCalibration,
  type LsrCalibration,
  type RestorationRunner,
} from './lsr-model.js';
import { createLsrEngine, type EngineChoice, type LsrEngine } from './engine.js';
import { disposeLsrNetworks, loadLsrNetworks } from './networks.js';
import { RESIDUAL_TEMPERATURE } from './pixel-score.js';
import { encodeVolume, rawSampleScore } from './sample-score.js';

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

export interface CalibrateLsrOptions {
  readonly weightsDir: string;
  /** Held-out normal volumes (never seen in training). */
  readonly files: readonly string[];
  readonly region: Region;
  readonly slices?: SliceSelection;
  readonly copies?: number;
  readonly k?: number;
  /** How many of `files` also get the full restoration, for the pixel scale (default 2). */
  readonly pixelVolumes?: number;
  readonly seed: number;
  /** Workers for the restorations; default one per core for TF.js on wasm (0 = in-process). */
  readonly workers?: number;
  /** Inference engine (default 'auto': ONNX Runtime when it loads, else TF.js). */
  readonly engine?: EngineChoice;
  readonly log: (line: string) => void;
}

async function readUsable(file: string, log: (line: string) => void): Promise<Volume | null> {
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

async function pixelScale(
  engine: LsrEngine,
  volumes: readonly Volume[],
  opts: CalibrateLsrOptions,
  common: { slices: SliceSelection; copies: number; k: number; lambdaP: number },
): Promise<{ scale: number; values: number }> {
  if (volumes.length === 0) return { scale: 1, values: 0 };
  const workers = engine.wantsWorkers ? (opts.workers ?? (await defaultWorkerCount(engine))) : 0;
  const pool = workers > 0 ? await createLsrPool(opts.weightsDir, workers) : null;
  const runner: RestorationRunner = pool ? (tasks) => pool.runAll(tasks) : inProcessRunner(engine);
  const collected: number[] = [];
  try {
    for (const [i, volume] of volumes.entries()) {
      const result = await pixelScoreStack(engine, volume, { region: opts.region, ...common, seed: opts.seed + i, chunks: Math.max(1, 2 * workers) }, runner);
      const foreground = stackForeground(result.encoded, opts.region);
      result.smoothed.forEach((v, j) => {
        if (foreground[j]) collected.push(v);
      });
      opts.log(`pixel scale: volume ${i + 1}/${volumes.length} restored in ${result.timings.restoreWall.toFixed(1)} s; ${describeRestoration(result.stats)}`);
    }
  } finally {
    await pool?.close();
  }
  if (collected.length === 0) return { scale: 1, values: 0 };
  const q = quantileOfSorted(Float64Array.from(collected).sort(), PIXEL_SCALE_QUANTILE);
  return { scale: q > 0 && Number.isFinite(q) ? q : 1, values: collected.length };
}

/** Measures λs, λp, the sample calibration and the pixel scale on held-out normals (does not write). */
export async function calibrateLsr(opts: CalibrateLsrOptions): Promise<LsrCalibration> {
  const tf = await initEngine();
  const nets = loadLsrNetworks(opts.weightsDir);
  let engine: LsrEngine | null = null;
  try {
    engine = await createLsrEngine(opts.engine ?? 'auto', nets, { tfjsBackend: tf.backend, log: opts.log });
    const slices = opts.slices ?? inferenceSliceSelection(opts.region);
    const copies = opts.copies ?? DEFAULT_COPIES;
    const k = opts.k ?? RESIDUAL_TEMPERATURE;
    const perVolume: Float32Array[] = [];
    const kept: Volume[] = [];
    const wantPixel = opts.pixelVolumes ?? 2;
    for (const file of opts.files) {
      const volume = await readUsable(file, opts.log);
      if (volume === null) continue;
      const encoded = await encodeVolume(engine, volume, opts.region, slices);
      perVolume.push(await engine.codeNlls(encoded.codes, encoded.stack.positions));
      if (kept.length < wantPixel) kept.push(volume);
    }
    if (perVolume.length === 0) throw new InputFileError(opts.files.join(', ') || '(no files)', 'no usable held-out normal volume to calibrate on');
    const all = new Float32Array(perVolume.reduce((a, v) => a + v.length, 0));
    let at = 0;
    for (const v of perVolume) {
      all.set(v, at);
      at += v.length;
    }
    all.sort();
    const lambdaS = quantileOfSorted(all, SAMPLE_LAMBDA_QUANTILE);
    const lambdaP = quantileOfSorted(all, PIXEL_LAMBDA_QUANTILE);
    const raw = perVolume.map((nll) => rawSampleScore(nll, lambdaS));
    opts.log(`${perVolume.length} volumes, ${all.length} codes: λs = ${lambdaS.toFixed(3)} nats, λp = ${lambdaP.toFixed(3)} nats; raw sample scores ${raw.map((r) => r.toFixed(1)).join(', ')}`);
    const pixel = await pixelScale(engine, kept, opts, { slices, copies, k, lambdaP });
    opts.log(`pixel scale c = ${pixel.scale.toFixed(4)} (99th percentile of ${pixel.values} foreground values of ${kept.length} volumes)`);
    return validateLsrCalibration({
      format: LSR_CALIBRATION_FORMAT,
      version: LSR_CALIBRATION_VERSION,
      region: opts.region,
      slices,
      copies,
      k,
      lambdaS,
      lambdaP,
      sampleCalibration: fitSampleCalibration(raw),
      pixelScale: pixel.scale,
      heldOut: {
        volumes: perVolume.length,
        codes: all.length,
        pixelVolumes: kept.length,
        seed: opts.seed,
        nllQuantiles: Object.fromEntries([0.5, 0.9, 0.98, 0.999].map((q) => [String(q), quantileOfSorted(all, q)])),
      },
    });
  } finally {
    await engine?.dispose();
    disposeLsrNetworks(nets);
  }
}

export function writeLsrCalibration(weightsDir: string, calibration: LsrCalibration): string {
  const file = calibrationPath(weightsDir);
  atomicWriteFileSync(file, JSON.stringify(validateLsrCalibration(calibration), null, 1) + '\n');
  return file;
}
