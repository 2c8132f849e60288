/**
 * `moodlsr eval --pred` must be a folder of predictions of the evaluated task; anything else would be
 * scored as "every case missing" (all zeros), which looks like a result but is a mistake.
 */
import { readdir, stat } from 'node:fs/promises';
import { fsReason, InputFileError } from '../../src/errors.js';
import { isNiftiFileName } from '../../src/io/nifti.js';
import type { EvalMode } from './evaluate.js';

/** Refuses a --pred that is missing, a file, empty, or holds only the other task's predictions. */
export async function checkPredictionFolder(pred: string, mode: EvalMode): Promise<void> {
  const info = await stat(pred).catch((err: unknown) => err as Error);
  if (info instanceof Error) throw new InputFileError(pred, `--pred cannot be used: ${fsReason(info)}`);
  if (!info.isDirectory()) throw new InputFileError(pred, '--pred must be a folder of predictions (F.txt or F.nii.gz per case), this is a file');
  let names: string[];
  try {
    names = await readdir(pred);
  } catch (err) {
    throw new InputFileError(pred, `--pred cannot be listed: ${fsReason(err)}`);
  }
  const scores = names.filter((n) => n.endsWith('.txt')).length;
  const maps = names.filter(isNiftiFileName).length;
  if (mode === 'sample' && scores === 0) {
    throw new InputFileError(
      pred,
      maps > 0
        ? `holds ${maps} NIfTI map${maps === 1 ? '' : 's'} and no F.txt score: pixel predictions; use --mode pixel, or the folder of sample predictions`
        : 'holds no sample predictions (one F.txt per case)',
    );
  }
  if (mode === 'pixel' && maps === 0) {
    throw new InputFileError(
      pred,
      scores > 0
        ? `holds ${scores} F.txt score${scores === 1 ? '' : 's'} and no NIfTI map: sample predictions; use --mode sample, or the folder of pixel predictions`
        : 'holds no pixel predictions (one NIfTI map F per case)',
    );
  }
}
