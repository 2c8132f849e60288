/**
 * `calibrate disyre`: the sample-score calibration of a trained network on held-out normal volumes
 * (never used in training): each volume's raw score (top-fraction mean of its masked map, with the
 * scoring given) → the monotone normal-ECDF calibration of src/score/calibration.ts. The scoring is
 * stored with it and becomes the predictor's default.
 */
import { InputFileError, describeError } from '../../errors.js';
import { countNonFinite, readNifti } from '../../io/nifti.js';
import { fitSampleCalibration } from '../../score/calibration.js';
import type { Region } from '../../volume/normalise.js';
import type { EngineChoice } from '../../inference/engine-choice.js';
import { DISYRE_CALIBRATION_FORMAT, DISYRE_CALIBRATION_VERSION, disyreVolumeScores, loadDisyreModel, readDisyreReference, requireMapSource, type DisyreCalibration, type DisyreReferenceRecord } from './model.js';
import { disyreRawSampleScore } from './score.js';
import type { ResidualReference } from '../../score/place-reference.js';
import { buildPlaceReference } from '../../score/place-reference-build.js';
import type { Volume } from '../../volume/volume.js';
import type { DisyreScoring } from './settings.js';
import { disposeParams } from '../../models/params.js';

export interface CalibrateDisyreOptions {
  readonly weightsDir: string;
  readonly files: readonly string[];
  readonly region: Region;
  readonly scoring: DisyreScoring;
  readonly engine?: EngineChoice;
  /** Normal volumes to build a new residual reference from (none: keep the folder's). */
  readonly referenceFiles?: readonly string[];
  readonly log: (line: string) => void;
}

export interface CalibrateDisyreResult {
  readonly calibration: DisyreCalibration;
  /** The reference built from `referenceFiles`, to be written next to the weights (null: none built). */
  readonly builtReference: DisyreReferenceRecord | null;
}

/** Reads a volume for calibration; null (with a log line) when it is unusable. */
async function readUsable(file: string, log: (line: string) => void): Promise<Volume | null> {
  try {
    const { volume } = await readNifti(file);
    if (countNonFinite(volume.data) > 0) throw new InputFileError(file, 'NaN or infinite voxels');
    return volume;
  } catch (err) {
    log(`skipping ${describeError(err)}`);
    return null;
  }
}

export async function calibrateDisyre(opts: CalibrateDisyreOptions): Promise<CalibrateDisyreResult> {
  const model = await loadDisyreModel(opts.weightsDir, opts.region, { ...(opts.engine ? { engine: opts.engine } : {}), log: opts.log });
  const raw: number[] = [];
  const used: string[] = [];
  const seconds: number[] = [];
  let builtReference: DisyreReferenceRecord | null = null;
  let reference: ResidualReference | null = null;
  try {
    requireMapSource(model.net.cfg, opts.scoring, opts.weightsDir);
    if (opts.referenceFiles !== undefined && opts.referenceFiles.length > 0) {
      const built = await buildPlaceReference(opts.referenceFiles, 'reference', opts.log, async (volume) => {
        const scores = await disyreVolumeScores(model, volume, { ...opts.scoring, map: 'residual' }, null);
        return { map: scores.stackMap, stack: scores.stack, note: `network ${scores.seconds.network.toFixed(1)} s` };
      });
      reference = built.reference;
      builtReference = { reference, scoring: opts.scoring, files: built.files };
    } else if (opts.scoring.reference) {
      reference = readDisyreReference(opts.weightsDir)?.reference ?? null;
    }
    if (opts.scoring.reference) opts.log(reference === null ? 'no normal residual reference: raw maps' : `maps standardised by the normal residual reference of ${reference.volumes} volumes`);
    for (const file of opts.files) {
      const volume = await readUsable(file, opts.log);
      if (volume === null) continue;
      const t0 = performance.now();
      const scores = await disyreVolumeScores(model, volume, opts.scoring, opts.scoring.reference ? reference : null);
      const r = disyreRawSampleScore(scores, opts.scoring.fraction);
      seconds.push((performance.now() - t0) / 1000);
      raw.push(r);
      used.push(file);
      opts.log(`${file}: raw ${r.toFixed(5)} (${seconds[seconds.length - 1]!.toFixed(1)} s; network ${scores.seconds.network.toFixed(1)} s)`);
    }
  } finally {
    await model.release();
    disposeParams(model.net.params);
  }
  if (raw.length === 0) throw new InputFileError(opts.files.join(', '), 'no usable held-out volume for the calibration');
  const calibration: DisyreCalibration = {
    format: DISYRE_CALIBRATION_FORMAT,
    version: DISYRE_CALIBRATION_VERSION,
    region: opts.region,
    scoring: opts.scoring,
    sample: fitSampleCalibration(raw),
    heldOut: { files: used, raw, secondsPerVolume: seconds, engine: model.engine },
  };
  return { calibration, builtReference };
}
