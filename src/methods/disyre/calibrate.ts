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
import { DISYRE_CALIBRATION_FORMAT, DISYRE_CALIBRATION_VERSION, disyreVolumeScores, loadDisyreModel, type DisyreCalibration } from './model.js';
import { disyreRawSampleScore } from './score.js';
import type { DisyreScoring } from './settings.js';
import { disposeParams } from '../../models/params.js';

export interface CalibrateDisyreOptions {
  readonly weightsDir: string;
  readonly files: readonly string[];
  readonly region: Region;
  readonly scoring: DisyreScoring;
  readonly engine?: EngineChoice;
  readonly log: (line: string) => void;
}

export async function calibrateDisyre(opts: CalibrateDisyreOptions): Promise<DisyreCalibration> {
  const model = await loadDisyreModel(opts.weightsDir, opts.region, { ...(opts.engine ? { engine: opts.engine } : {}), log: opts.log });
  const raw: number[] = [];
  const used: string[] = [];
  const seconds: number[] = [];
  try {
    for (const file of opts.files) {
      let volume;
      try {
        ({ volume } = await readNifti(file));
        if (countNonFinite(volume.data) > 0) throw new InputFileError(file, 'NaN or infinite voxels');
      } catch (err) {
        opts.log(`skipping ${describeError(err)}`);
        continue;
      }
      const t0 = performance.now();
      const scores = await disyreVolumeScores(model, volume, opts.scoring);
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
  return {
    format: DISYRE_CALIBRATION_FORMAT,
    version: DISYRE_CALIBRATION_VERSION,
    region: opts.region,
    scoring: opts.scoring,
    sample: fitSampleCalibration(raw),
    heldOut: { files: used, raw, secondsPerVolume: seconds, engine: model.engine },
  };
}
