/**
 * Calibration of the `lsgs` method on held-out NORMAL volumes, stored with the weights as
 * `<weights>/lsgs-calibration.json` (written atomically), measured as for `lsr`
 * (src/methods/lsr/calibrate.ts): λs = 98th and λ = 90th percentile of the transformer NLL of the
 * held-out codes whose patch holds foreground (`thresholdCodes: 'all'`: of every code, the earlier
 * recipe; empty background codes are many and nearly certain), the monotone sample-score calibration
 * of the raw held-out sample scores of the chosen aggregate (`scoring.sample`: the sum above λs or the
 * local maximum of NLL − λs), and the pixel scale c = 99th percentile of the smoothed restoration score
 * (with the chain's smoothing) over the foreground of the first `pixelVolumes` held-out volumes (1 when
 * none). The share of resampled copy-positions of those restorations is recorded in `heldOut`.
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
import { foregroundCodes, localMaxExcess } from '../../score/sample-aggregates.js';
import { normalisedBackground } from '../../volume/preprocess.js';
import { normalisationFor } from '../../volume/normalise.js';
import type { LsgsScoring } from './scoring.js';

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
  /** Codes the NLL quantiles are taken over: those whose patch holds foreground (default) or all. */
  readonly thresholdCodes?: 'foreground' | 'all';
  /**
   * The scoring chain stored with the calibration (absent: none stored, the original chain): its
   * smoothing shapes the maps the pixel scale is fitted on, its sample aggregate the raw sample scores.
   */
  readonly scoring?: LsgsScoring;
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
    const thresholdCodes = opts.thresholdCodes ?? 'foreground';
    const scoring = opts.scoring;
    if (scoring?.sample === 'top') {
      throw new Error('calibrate lsgs: sample=top is not calibrated on held-out normals (it needs every volume restored); calibrate with sum or localmax and choose top with predict --set sample=top');
    }
    const { height: codeRows, width: codeSide } = active.nets.transformer.cfg;
    const background = normalisedBackground(normalisationFor(opts.region));
    const foreground: Uint8Array[] = [];
    const gridShapes: [number, number, number][] = [];
    const { perVolume, kept } = await heldOutCodeNlls(opts.files, opts.pixelVolumes ?? 2, opts.log, async (volume) => {
      const encoded = await encodeForLsgs(active, volume, opts.region, slices);
      gridShapes.push([codeSide, codeRows, encoded.stack.count]);
      foreground.push(foregroundCodes(encoded.stack.data, encoded.stack.count, encoded.stack.width, codeSide, background));
      return active.transformer.nlls(encoded.codes, encoded.stack.positions);
    });
    const t = nllThresholds(perVolume, thresholdCodes === 'foreground' ? foreground : undefined);
    opts.log(`thresholds over ${thresholdCodes === 'foreground' ? 'the codes whose patch holds foreground' : 'all codes'}`);
    opts.log(describeNllThresholds(t, perVolume.length, 'λ'));
    const rawSample = scoring?.sample === 'localmax' ? perVolume.map((nll, i) => localMaxExcess(nll, gridShapes[i]!, t.lambdaS)) : t.raw;
    if (scoring?.sample === 'localmax') opts.log(`raw local-maximum sample scores ${rawSample.map((r) => r.toFixed(3)).join(', ')}`);

    const lambdaP = t.lambdaP;
    let resampled = 0;
    let copyPositions = 0;
    const runners = chunkRunners(active, opts.workers, inProcessLsgsRunner(active), (workers) => createLsgsPool(opts.weightsDir, workers));
    const pixelScale = await heldOutPixelScale(kept, opts.region, opts.log, runners, async (volume, i, { run, chunks }) => {
      const smoothing = scoring?.smoothing ? { smoothing: scoring.smoothing } : {};
      const result = await lsgsPixelStack(active, volume, { region: opts.region, slices, copies, rounds, lambdaP, k, foregroundMask, ...smoothing, seed: opts.seed + i, chunks }, run);
      resampled += result.stats.resampled;
      copyPositions += result.stats.slices * result.stats.copies * result.stats.positions;
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
      sampleCalibration: fitSampleCalibration(rawSample),
      pixelScale,
      ...(scoring ? { scoring } : {}),
      heldOut: {
        ...nllProvenance(t, perVolume.length, kept.length, opts.seed),
        thresholdCodes,
        // Positions over λ summed over the rounds, per copy-position of the restored volumes.
        ...(copyPositions > 0 ? { resampledShare: resampled / copyPositions } : {}),
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
