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
 * With `referenceFiles` (other normals, neither trained on nor `files`) it also builds the
 * transformer's per-place NLL reference (for sample=interior and sum+interior) and, for a chain with
 * reference=on, the per-place residual reference (./references.ts), as `calibrate lsr` does.
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
import type { ResidualReference } from '../../score/place-reference.js';
import { buildPlaceReference } from '../../score/place-reference-build.js';
import { interiorSampleRaw, type CodeNllReference } from '../../score/code-nll-reference.js';
import { heldOutSampleRaws, needsNllReference } from '../../score/reference-chain.js';
import { lsgsNetworksFingerprint, readLsgsNllReference, readLsgsResidualReference, transformerFingerprint, type LsgsResidualReference } from './references.js';

/** Seeds of the reference normals' restorations: apart from the held-out volumes' (seed + index). */
const RESIDUAL_REFERENCE_SEED_OFFSET = 100_000;

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
  /** Other normal volumes (not `files`, not trained on) to build the references from (none: the weights folder's are used). */
  readonly referenceFiles?: readonly string[];
  readonly log: (line: string) => void;
}

export interface LsgsCalibrationResult {
  readonly calibration: LsgsCalibration;
  /** The NLL reference built from `referenceFiles`, to be written next to the weights (null: none built). */
  readonly builtReference: CodeNllReference | null;
  /** The residual reference built from `referenceFiles` when the chain standardises by one (null: none built). */
  readonly builtResidualReference: LsgsResidualReference | null;
}

export async function calibrateLsgs(opts: CalibrateLsgsOptions): Promise<LsgsCalibrationResult> {
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
      throw new Error('calibrate lsgs: sample=top is not calibrated on held-out normals (it needs every volume restored); calibrate with sum, localmax or interior and choose top with predict --set sample=top');
    }
    const { height: codeRows, width: codeSide } = active.nets.transformer.cfg;
    const background = normalisedBackground(normalisationFor(opts.region));
    const referenceFiles = opts.referenceFiles ?? [];
    const wantsNll = scoring !== undefined && needsNllReference(scoring.sample);
    let builtReference: CodeNllReference | null = null;
    let reference: ResidualReference | null = null;
    if (referenceFiles.length > 0) {
      const built = await buildPlaceReference(referenceFiles, 'NLL reference', opts.log, async (volume) => {
        const encoded = await encodeForLsgs(active, volume, opts.region, slices);
        const map = await active.transformer.nlls(encoded.codes, encoded.stack.positions);
        return { map, stack: { count: encoded.stack.count, height: codeRows, width: codeSide, positions: encoded.stack.positions } };
      });
      reference = built.reference;
      builtReference = { reference, prior: transformerFingerprint(opts.weightsDir), files: built.files };
    } else if (wantsNll) {
      reference = readLsgsNllReference(opts.weightsDir)?.reference ?? null;
    }
    if (wantsNll && reference === null) {
      throw new Error(`calibrate lsgs: sample=${scoring.sample} needs the transformer's NLL reference: give --reference-data DIR (normal volumes other than --data) or keep ${opts.weightsDir}/lsgs-nll-reference.json`);
    }
    if (scoring?.reference && referenceFiles.length === 0 && readLsgsResidualReference(opts.weightsDir) === null) {
      throw new Error(`calibrate lsgs: reference=on needs the normal residual reference: give --reference-data DIR (normal volumes other than --data) or keep ${opts.weightsDir}/lsgs-residual-reference.json`);
    }
    const foreground: Uint8Array[] = [];
    const gridShapes: [number, number, number][] = [];
    const interiorRaw: number[] = [];
    const { perVolume, kept } = await heldOutCodeNlls(opts.files, opts.pixelVolumes ?? 2, opts.log, async (volume) => {
      const encoded = await encodeForLsgs(active, volume, opts.region, slices);
      gridShapes.push([codeSide, codeRows, encoded.stack.count]);
      foreground.push(foregroundCodes(encoded.stack.data, encoded.stack.count, encoded.stack.width, codeSide, background));
      const nll = await active.transformer.nlls(encoded.codes, encoded.stack.positions);
      if (wantsNll) interiorRaw.push(interiorSampleRaw(nll, encoded.stack, codeSide, background, reference!));
      return nll;
    });
    const t = nllThresholds(perVolume, thresholdCodes === 'foreground' ? foreground : undefined);
    opts.log(`thresholds over ${thresholdCodes === 'foreground' ? 'the codes whose patch holds foreground' : 'all codes'}`);
    opts.log(describeNllThresholds(t, perVolume.length, 'λ'));
    const rawOf: Record<string, () => number[]> = {
      sum: () => t.raw,
      localmax: () => perVolume.map((nll, i) => localMaxExcess(nll, gridShapes[i]!, t.lambdaS)),
      interior: () => interiorRaw,
    };
    const aggregate = scoring?.sample ?? 'sum';
    const { raw: rawSample, sampleParts } = heldOutSampleRaws(aggregate, (part) => rawOf[part]!(), 'lsgs');
    if (aggregate !== 'sum') opts.log(`raw ${aggregate} sample scores ${rawSample.map((r) => r.toFixed(3)).join(', ')}`);

    const lambdaP = t.lambdaP;
    let resampled = 0;
    let copyPositions = 0;
    const smoothing = scoring?.smoothing ? { smoothing: scoring.smoothing } : {};
    const runners = chunkRunners(active, opts.workers, inProcessLsgsRunner(active), (workers) => createLsgsPool(opts.weightsDir, workers));
    let builtResidualReference: LsgsResidualReference | null = null;
    if (scoring?.reference && referenceFiles.length > 0) {
      // The residual reference: each reference normal restored as predict restores a case.
      try {
        const { run, chunks } = await runners.get();
        const built = await buildPlaceReference(referenceFiles, 'residual reference', opts.log, async (volume, i) => {
          const result = await lsgsPixelStack(active, volume, { region: opts.region, slices, copies, rounds, lambdaP, k, foregroundMask, ...smoothing, seed: opts.seed + RESIDUAL_REFERENCE_SEED_OFFSET + i, chunks }, run);
          return { map: result.smoothed, stack: result.encoded.stack, note: `restored in ${result.restoreWall.toFixed(1)} s` };
        });
        builtResidualReference = {
          reference: built.reference,
          recipe: { lambdaP, copies, rounds, k, foregroundMask, smoothing: scoring.smoothing ?? null },
          networks: lsgsNetworksFingerprint(opts.weightsDir),
          files: built.files,
        };
      } catch (err) {
        await runners.close();
        throw err;
      }
    }
    const pixelScale = await heldOutPixelScale(kept, opts.region, opts.log, runners, async (volume, i, { run, chunks }) => {
      const result = await lsgsPixelStack(active, volume, { region: opts.region, slices, copies, rounds, lambdaP, k, foregroundMask, ...smoothing, seed: opts.seed + i, chunks }, run);
      resampled += result.stats.resampled;
      copyPositions += result.stats.slices * result.stats.copies * result.stats.positions;
      return { normalised: result.encoded.stack.data, smoothed: result.smoothed, wallSeconds: result.restoreWall, description: describeLsgsRestoration(result.stats) };
    });
    const calibration = validateLsgsCalibration({
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
      ...(sampleParts !== undefined ? { sampleParts } : {}),
      pixelScale,
      ...(scoring ? { scoring } : {}),
      heldOut: {
        ...nllProvenance(t, perVolume.length, kept.length, opts.seed),
        thresholdCodes,
        // Positions over λ summed over the rounds, per copy-position of the restored volumes.
        ...(copyPositions > 0 ? { resampledShare: resampled / copyPositions } : {}),
        ...(builtReference !== null ? { nllReferenceVolumes: builtReference.files.length } : {}),
        ...(builtResidualReference !== null ? { residualReferenceVolumes: builtResidualReference.files.length } : {}),
      },
    });
    return { calibration, builtReference, builtResidualReference };
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
