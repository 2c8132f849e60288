/**
 * Calibration of the `lsgs` method on held-out NORMAL volumes, stored with the weights as
 * `<weights>/lsgs-calibration.json` (written atomically), measured as for `lsr`
 * (src/methods/lsr/calibrate.ts): λs = 98th and λ = 90th percentile of the transformer NLL of all held-out
 * codes, the monotone sample-score calibration of the raw held-out sample scores, and the pixel scale
 * c = 99th percentile of the smoothed restoration score over the foreground of the first
 * `pixelVolumes` held-out volumes (1 when none).
 */
import { atomicWriteFileSync } from '../../io/atomic.js';
import { initEngine } from '../../engine/backend.js';
import { inferenceSliceSelection } from '../../volume/preprocess.js';
import type { Region } from '../../volume/normalise.js';
import type { SliceSelection } from '../../volume/slices.js';
import { fitSampleCalibration } from '../../score/calibration.js';
import type { EngineChoice } from '../../inference/engine-choice.js';
import { describeNllThresholds, heldOutCodeNlls, heldOutPixelScale, nllProvenance, nllThresholds } from '../../score/held-out.js';
import { createLsgsEngine, type LsgsEngine } from './engine.js';
import { chunkRunners } from '../../inference/method-runtime.js';
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
} from './model.js';
import { disposeLsgsNetworks, loadLsgsNetworks } from './networks.js';
import { RESIDUAL_TEMPERATURE } from '../../score/pixel-score.js';

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

export async function calibrateLsgs(opts: CalibrateLsgsOptions): Promise<LsgsCalibration> {
  const tf = await initEngine();
  const nets = loadLsgsNetworks(opts.weightsDir);
  let engine: LsgsEngine | null = null;
  try {
    const active = await createLsgsEngine(opts.engine ?? 'auto', nets, { tfjsBackend: tf.backend, log: opts.log });
    engine = active;
    const slices = opts.slices ?? inferenceSliceSelection(opts.region);
    const copies = opts.copies ?? DEFAULT_LSGS_COPIES;
    const rounds = opts.rounds ?? DEFAULT_LSGS_ROUNDS;
    const k = opts.k ?? RESIDUAL_TEMPERATURE;
    const foregroundMask = opts.foregroundMask ?? true;
    const { perVolume, kept } = await heldOutCodeNlls(opts.files, opts.pixelVolumes ?? 2, opts.log, async (volume) => {
      const encoded = await encodeForLsgs(active, volume, opts.region, slices);
      return active.transformer.nlls(encoded.codes, encoded.stack.positions);
    });
    const t = nllThresholds(perVolume);
    opts.log(describeNllThresholds(t, perVolume.length, 'λ'));

    const lambdaP = t.lambdaP;
    const runners = chunkRunners(active, opts.workers, inProcessLsgsRunner(active), (workers) => createLsgsPool(opts.weightsDir, workers));
    const pixelScale = await heldOutPixelScale(kept, opts.region, opts.log, runners, async (volume, i, { run, chunks }) => {
      const result = await lsgsPixelStack(active, volume, { region: opts.region, slices, copies, rounds, lambdaP, k, foregroundMask, seed: opts.seed + i, chunks }, run);
      return { normalised: result.encoded.stack.data, smoothed: result.smoothed, wallSeconds: result.restoreWall, description: describeLsgsRestoration(result.stats) };
    });
    return validateLsgsCalibration({
      format: LSGS_CALIBRATION_FORMAT,
      version: LSGS_CALIBRATION_VERSION,
      region: opts.region,
      slices,
      copies,
      rounds,
      k,
      lambdaS: t.lambdaS,
      lambdaP,
      foregroundMask,
      sampleCalibration: fitSampleCalibration(t.raw),
      pixelScale,
      heldOut: nllProvenance(t, perVolume.length, kept.length, opts.seed),
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
