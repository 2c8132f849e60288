/**
 * Calibration of the `lsgs` method on held-out NORMAL volumes, stored with the weights as
 * `<weights>/lsgs-calibration.json` (written atomically), measured as for `lsr`
 * (./calibrate-lsr.ts): λs = 98th and λ = 90th percentile of the transformer NLL of all held-out
 * codes, the monotone sample-score calibration of the raw held-out sample scores, and the pixel scale
 * c = 99th percentile of the smoothed restoration score over the foreground of the first
 * `pixelVolumes` held-out volumes (1 when none).
 */
import { atomicWriteFileSync } from '../io/atomic.js';
import { countNonFinite, readNifti } from '../io/nifti.js';
import { describeError, InputFileError } from '../errors.js';
import { initEngine } from '../engine/backend.js';
import { inferenceSliceSelection, normalisedBackground } from '../volume/preprocess.js';
import { normalisationFor, type Region } from '../volume/normalise.js';
import type { SliceSelection } from '../volume/slices.js';
import type { Volume } from '../volume/volume.js';
import { fitSampleCalibration } from './calibration.js';
import { PIXEL_LAMBDA_QUANTILE, PIXEL_SCALE_QUANTILE, quantileOfSorted, SAMPLE_LAMBDA_QUANTILE } from './calibrate-lsr.js';
import type { EngineChoice } from './engine-choice.js';
import { createLsgsEngine, type LsgsEngine } from './lsgs-engine.js';
import { defaultWorkerCount } from './lsr-model.js';
import {
  createLsgsPool,
  DEFAULT_LSGS_COPIES,
  DEFAULT_LSGS_ROUNDS,
  describeLsgsRestoration,
  encodeForLsgs,
  inProcessLsgsRunner,
  LSGS_CALIBRATION_FORMAT,
  LSGS_CALIBRATION_VERSION,
  lsgsCalibrationPath,
  lsgsPixelStack,
  validateLsgsCalibration,
  type LsgsCalibration,
  type LsgsRunner,
} from './lsgs-model.js';
import { disposeLsgsNetworks, loadLsgsNetworks } from './lsgs-networks.js';
import { RESIDUAL_TEMPERATURE } from './pixel-score.js';
import { rawSampleScore } from './sample-score.js';

export interface CalibrateLsgsOptions {
  readonly weightsDir: string;
  readonly files: readonly string[];
  readonly region: Region;
  readonly slices?: SliceSelection;
  readonly copies?: number;
  readonly rounds?: number;
  readonly k?: number;
  readonly foregroundMask?: boolean;
  /** How many of `files` also get the full restoration, for the pixel scale (default 2). */
  readonly pixelVolumes?: number;
  readonly seed: number;
  /** Workers for the restorations with TF.js on wasm; default one per core (0 = in-process; none on ONNX Runtime). */
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

export async function calibrateLsgs(opts: CalibrateLsgsOptions): Promise<LsgsCalibration> {
  const tf = await initEngine();
  const nets = loadLsgsNetworks(opts.weightsDir);
  let engine: LsgsEngine | null = null;
  try {
    engine = await createLsgsEngine(opts.engine ?? 'auto', nets, { tfjsBackend: tf.backend, log: opts.log });
    const slices = opts.slices ?? inferenceSliceSelection(opts.region);
    const copies = opts.copies ?? DEFAULT_LSGS_COPIES;
    const rounds = opts.rounds ?? DEFAULT_LSGS_ROUNDS;
    const k = opts.k ?? RESIDUAL_TEMPERATURE;
    const foregroundMask = opts.foregroundMask ?? true;
    const perVolume: Float32Array[] = [];
    const kept: Volume[] = [];
    const wantPixel = opts.pixelVolumes ?? 2;
    for (const file of opts.files) {
      const volume = await readUsable(file, opts.log);
      if (volume === null) continue;
      const encoded = await encodeForLsgs(engine, volume, opts.region, slices);
      perVolume.push(await engine.transformer.nlls(encoded.codes, encoded.stack.positions));
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
    opts.log(`${perVolume.length} volumes, ${all.length} codes: λs = ${lambdaS.toFixed(3)} nats, λ = ${lambdaP.toFixed(3)} nats; raw sample scores ${raw.map((r) => r.toFixed(1)).join(', ')}`);

    let pixelScale = 1;
    let pixelValues = 0;
    if (kept.length > 0) {
      const workers = engine.wantsWorkers ? (opts.workers ?? (await defaultWorkerCount())) : 0;
      const pool = workers > 0 ? await createLsgsPool(opts.weightsDir, workers) : null;
      const runner: LsgsRunner = pool ? (tasks) => pool.runAll(tasks) : inProcessLsgsRunner(engine);
      const background = normalisedBackground(normalisationFor(opts.region));
      const collected: number[] = [];
      try {
        for (const [i, volume] of kept.entries()) {
          const result = await lsgsPixelStack(
            engine,
            volume,
            { region: opts.region, slices, copies, rounds, lambdaP, k, foregroundMask, seed: opts.seed + i, chunks: Math.max(1, 2 * workers) },
            runner,
          );
          result.smoothed.forEach((v, j) => {
            if (result.encoded.stack.data[j] !== background) collected.push(v);
          });
          opts.log(`pixel scale: volume ${i + 1}/${kept.length} restored in ${result.restoreWall.toFixed(1)} s; ${describeLsgsRestoration(result.stats)}`);
        }
      } finally {
        await pool?.close();
      }
      if (collected.length > 0) {
        const q = quantileOfSorted(Float64Array.from(collected).sort(), PIXEL_SCALE_QUANTILE);
        pixelScale = q > 0 && Number.isFinite(q) ? q : 1;
        pixelValues = collected.length;
      }
    }
    opts.log(`pixel scale c = ${pixelScale.toFixed(4)} (99th percentile of ${pixelValues} foreground values of ${kept.length} volumes)`);
    return validateLsgsCalibration({
      format: LSGS_CALIBRATION_FORMAT,
      version: LSGS_CALIBRATION_VERSION,
      region: opts.region,
      slices,
      copies,
      rounds,
      k,
      lambdaS,
      lambdaP,
      foregroundMask,
      sampleCalibration: fitSampleCalibration(raw),
      pixelScale,
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
    disposeLsgsNetworks(nets);
  }
}

export function writeLsgsCalibration(weightsDir: string, calibration: LsgsCalibration): string {
  const file = lsgsCalibrationPath(weightsDir);
  atomicWriteFileSync(file, JSON.stringify(validateLsgsCalibration(calibration), null, 1) + '\n');
  return file;
}
