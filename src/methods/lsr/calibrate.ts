/**
 * Calibration of the `lsr` method on held-out NORMAL volumes, stored with the weights as
 * `<weights>/lsr-calibration.json` (written atomically):
 * - λs = 98th and λp = 90th percentile of the per-code NLL of the held-out codes whose patch holds
 *   foreground (empty background codes are many and nearly certain, so quantiles over all codes sit at
 *   a typical brain code); `thresholdCodes: 'all'` gives the earlier recipe. The paper's 7 and 5 nats
 *   were such percentiles for its model; ours depend on the trained prior, so they are measured;
 * - the sample-score calibration (monotone, untied) fitted on the held-out raw sample scores of the
 *   chosen aggregate (`scoring.sample`: the paper's sum above λs, the local maximum of NLL − λs, or
 *   the interior excess over the prior's NLL reference, built from `referenceFiles`);
 * - pixelScale c of AS / (AS + c): the 99th percentile of the smoothed restoration score over the
 *   foreground of the first `pixelVolumes` held-out volumes (0 volumes: c = 1 normalised unit).
 * Percentiles interpolate linearly between order statistics (numpy's default).
 */
import { atomicWriteFileSync } from '../../io/atomic.js';
import { initEngine } from '../../engine/backend.js';
import { inferenceSliceSelection } from '../../volume/preprocess.js';
import type { Region } from '../../volume/normalise.js';
import type { SliceSelection } from '../../volume/slices.js';
import { fitSampleCalibration } from '../../score/calibration.js';
import {
  calibrationPath,
  createLsrPool,
  DEFAULT_COPIES,
  describeRestoration,
  inProcessRunner,
  LSR_CALIBRATION_FORMAT,
  LSR_CALIBRATION_VERSION,
  pixelScoreStack,
  validateLsrCalibration,
  type LsrCalibration,
} from './model.js';
import { needsNllReference, type LsrScoring } from './scoring.js';
import { heldOutSampleRaws } from '../../score/reference-chain.js';
import { createLsrEngine, type EngineChoice, type LsrEngine } from './engine.js';
import { describeNllThresholds, heldOutCodeNlls, heldOutPixelScale, nllProvenance, nllThresholds } from '../../score/held-out.js';
import { chunkRunners } from '../../inference/method-runtime.js';
import { disposeLsrNetworks, latentGeometry, loadLsrNetworks } from './networks.js';
import { RESIDUAL_TEMPERATURE } from '../../score/pixel-score.js';
import { encodeVolume } from '../../score/sample-score.js';
import { foregroundCodes, localMaxExcess } from '../../score/sample-aggregates.js';
import { normalisedBackground } from '../../volume/preprocess.js';
import { normalisationFor } from '../../volume/normalise.js';
import type { ResidualReference } from '../../score/place-reference.js';
import { buildPlaceReference } from '../../score/place-reference-build.js';
import { interiorSampleRaw, networksFingerprint, priorFingerprint, readLsrNllReference, type LsrNllReference } from './nll-reference.js';
import { readLsrResidualReference, type LsrResidualReference } from './residual-reference.js';

/** Seeds of the reference normals' restorations: apart from the held-out volumes' (seed + index). */
const RESIDUAL_REFERENCE_SEED_OFFSET = 100_000;

export { PIXEL_LAMBDA_QUANTILE, PIXEL_SCALE_QUANTILE, quantile, quantileOfSorted, SAMPLE_LAMBDA_QUANTILE } from '../../score/held-out.js';

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
  /** Codes the NLL quantiles are taken over: those whose patch holds foreground (default) or all. */
  readonly thresholdCodes?: 'foreground' | 'all';
  readonly seed: number;
  /**
   * The scoring chain stored with the calibration (absent: the paper's): its weighting and smoothing
   * shape the maps the pixel scale is fitted on, its sample aggregate the raw sample scores.
   */
  readonly scoring?: LsrScoring;
  /** Workers for the restorations; default one per core for TF.js on wasm (0 = in-process). */
  readonly workers?: number;
  /** Inference engine (default 'auto': ONNX Runtime when it loads, else TF.js). */
  readonly engine?: EngineChoice;
  /**
   * Other normal volumes (not `files`, not trained on) to build the prior's NLL reference from, for
   * sample=interior (none: the weights folder's reference is used, when that aggregate is chosen).
   */
  readonly referenceFiles?: readonly string[];
  readonly log: (line: string) => void;
}

export interface LsrCalibrationResult {
  readonly calibration: LsrCalibration;
  /** The NLL reference built from `referenceFiles`, to be written next to the weights (null: none built). */
  readonly builtReference: LsrNllReference | null;
  /** The residual reference built from `referenceFiles` when the scoring standardises by one (null: none built). */
  readonly builtResidualReference: LsrResidualReference | null;
}

/** Measures λs, λp, the sample calibration and the pixel scale on held-out normals (does not write). */
export async function calibrateLsr(opts: CalibrateLsrOptions): Promise<LsrCalibrationResult> {
  const tf = await initEngine();
  const nets = loadLsrNetworks(opts.weightsDir);
  let engine: LsrEngine | null = null;
  try {
    const active = await createLsrEngine(opts.engine ?? 'auto', nets, { tfjsBackend: tf.backend, log: opts.log });
    engine = active;
    const slices = opts.slices ?? inferenceSliceSelection(opts.region);
    const copies = opts.copies ?? DEFAULT_COPIES;
    const k = opts.k ?? RESIDUAL_TEMPERATURE;
    const thresholdCodes = opts.thresholdCodes ?? 'foreground';
    const scoring = opts.scoring;
    if (scoring?.sample === 'top') {
      throw new Error('calibrate lsr: sample=top is not calibrated on held-out normals (it needs every volume restored); calibrate with sum, localmax or interior and choose top with predict --set sample=top');
    }
    const { width: codeSide, height: codeRows } = latentGeometry(active.nets.prior);
    const background = normalisedBackground(normalisationFor(opts.region));
    let builtReference: LsrNllReference | null = null;
    let reference: ResidualReference | null = null;
    if (opts.referenceFiles !== undefined && opts.referenceFiles.length > 0) {
      const built = await buildPlaceReference(opts.referenceFiles, 'NLL reference', opts.log, async (volume) => {
        const encoded = await encodeVolume(active, volume, opts.region, slices);
        const map = await active.codeNlls(encoded.codes, encoded.stack.positions);
        return { map, stack: { count: encoded.stack.count, height: codeRows, width: codeSide, positions: encoded.stack.positions } };
      });
      reference = built.reference;
      builtReference = { reference, prior: priorFingerprint(opts.weightsDir), files: built.files };
    } else if (scoring !== undefined && needsNllReference(scoring.sample)) {
      reference = readLsrNllReference(opts.weightsDir)?.reference ?? null;
    }
    if (scoring !== undefined && needsNllReference(scoring.sample) && reference === null) {
      throw new Error(`calibrate lsr: sample=${scoring.sample} needs the prior's NLL reference: give --reference-data DIR (normal volumes other than --data) or keep ${opts.weightsDir}/lsr-nll-reference.json`);
    }
    if (scoring?.reference && !(opts.referenceFiles !== undefined && opts.referenceFiles.length > 0) && readLsrResidualReference(opts.weightsDir) === null) {
      throw new Error(`calibrate lsr: reference=on needs the normal residual reference: give --reference-data DIR (normal volumes other than --data) or keep ${opts.weightsDir}/lsr-residual-reference.json`);
    }
    const foreground: Uint8Array[] = [];
    const gridShapes: [number, number, number][] = [];
    const interiorRaw: number[] = [];
    const { perVolume, kept } = await heldOutCodeNlls(opts.files, opts.pixelVolumes ?? 2, opts.log, async (volume) => {
      const encoded = await encodeVolume(active, volume, opts.region, slices);
      gridShapes.push([codeSide, codeRows, encoded.stack.count]);
      foreground.push(foregroundCodes(encoded.stack.data, encoded.stack.count, encoded.stack.width, codeSide, background));
      const nll = await active.codeNlls(encoded.codes, encoded.stack.positions);
      if (reference !== null && scoring !== undefined && needsNllReference(scoring.sample)) interiorRaw.push(interiorSampleRaw(nll, encoded.stack, codeSide, background, reference));
      return nll;
    });
    const t = nllThresholds(perVolume, thresholdCodes === 'foreground' ? foreground : undefined);
    opts.log(`thresholds over ${thresholdCodes === 'foreground' ? 'the codes whose patch holds foreground' : 'all codes'}`);
    const rawOf: Record<'sum' | 'localmax' | 'interior', () => number[]> = {
      sum: () => t.raw,
      localmax: () => perVolume.map((nll, i) => localMaxExcess(nll, gridShapes[i]!, t.lambdaS)),
      interior: () => interiorRaw,
    };
    const aggregate = scoring?.sample ?? 'sum';
    const { raw: rawSample, sampleParts } = heldOutSampleRaws(aggregate, (part) => rawOf[part as keyof typeof rawOf](), 'lsr');
    if (aggregate !== 'sum') opts.log(`raw ${aggregate} sample scores ${rawSample.map((r) => r.toFixed(3)).join(', ')}`);
    let resampled = 0;
    let copyPositions = 0;
    opts.log(describeNllThresholds(t, perVolume.length, 'λp'));
    const runners = chunkRunners(active, opts.workers, inProcessRunner(active), (workers) => createLsrPool(opts.weightsDir, workers));
    const chain = scoring ? { weighting: scoring.weighting, ...(scoring.smoothing ? { smoothing: scoring.smoothing } : {}) } : {};
    let builtResidualReference: LsrResidualReference | null = null;
    if (scoring?.reference && opts.referenceFiles !== undefined && opts.referenceFiles.length > 0) {
      // The residual reference: each reference normal restored as predict restores a case.
      try {
        const { run, chunks } = await runners.get();
        const referenceFiles = opts.referenceFiles;
        const built = await buildPlaceReference(referenceFiles, 'residual reference', opts.log, async (volume, i) => {
          const result = await pixelScoreStack(active, volume, { region: opts.region, slices, copies, k, lambdaP: t.lambdaP, seed: opts.seed + RESIDUAL_REFERENCE_SEED_OFFSET + i, chunks, ...chain }, run);
          return { map: result.smoothed, stack: result.encoded.stack, note: `restored in ${result.timings.restoreWall.toFixed(1)} s` };
        });
        builtResidualReference = {
          reference: built.reference,
          recipe: { lambdaP: t.lambdaP, copies, k, weighting: scoring.weighting, smoothing: scoring.smoothing ?? null },
          networks: networksFingerprint(opts.weightsDir),
          files: built.files,
        };
      } catch (err) {
        await runners.close();
        throw err;
      }
    }
    const scale = await heldOutPixelScale(kept, opts.region, opts.log, runners, async (volume, i, { run, chunks }) => {
      const result = await pixelScoreStack(active, volume, { region: opts.region, slices, copies, k, lambdaP: t.lambdaP, seed: opts.seed + i, chunks, ...chain }, run);
      resampled += result.stats.resampled;
      copyPositions += result.stats.slices * result.stats.copies * result.stats.positions;
      return { normalised: result.encoded.stack.data, smoothed: result.smoothed, wallSeconds: result.timings.restoreWall, description: describeRestoration(result.stats) };
    });
    const calibration = validateLsrCalibration({
      format: LSR_CALIBRATION_FORMAT,
      version: LSR_CALIBRATION_VERSION,
      region: opts.region,
      slices,
      copies,
      k,
      lambdaS: t.lambdaS,
      lambdaP: t.lambdaP,
      sampleCalibration: fitSampleCalibration(rawSample),
      ...(sampleParts !== undefined ? { sampleParts } : {}),
      pixelScale: scale,
      ...(scoring ? { scoring } : {}),
      heldOut: {
        ...nllProvenance(t, perVolume.length, kept.length, opts.seed),
        thresholdCodes,
        // Share of (slice, copy, position) triples resampled at λp on the pixel-scale volumes.
        ...(copyPositions > 0 ? { resampledShare: resampled / copyPositions } : {}),
        ...(builtReference !== null ? { nllReferenceVolumes: builtReference.files.length } : {}),
        ...(builtResidualReference !== null ? { residualReferenceVolumes: builtResidualReference.files.length } : {}),
      },
    });
    return { calibration, builtReference, builtResidualReference };
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
