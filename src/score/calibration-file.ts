/** Reading the JSON calibration files stored next to a method's weights (lsr, lsgs, vae). */
import { existsSync, readFileSync } from 'node:fs';
import { InputFileError } from '../errors.js';
import type { SliceSelection } from '../volume/slices.js';

export function isSliceSelection(x: unknown): x is SliceSelection {
  if (x === 'all') return true;
  if (x === null || typeof x !== 'object') return false;
  const s = x as { every?: unknown; count?: unknown };
  const positiveInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0;
  return ('every' in s && positiveInt(s.every)) || ('count' in s && positiveInt(s.count));
}

/**
 * Parses and validates a calibration file; every failure is one InputFileError naming the file.
 * `calibrateCommand` is the `moodlsr calibrate …` subcommand named in the message for a missing file.
 */
export function readCalibrationFile<T>(file: string, weightsDir: string, calibrateCommand: string, validate: (raw: unknown) => T): T {
  if (!existsSync(file)) {
    throw new InputFileError(file, `missing: create it with \`moodlsr calibrate ${calibrateCommand} --weights ${weightsDir} --data HELD_OUT_NORMALS\``);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InputFileError(file, `not readable JSON (${(err as Error).message})`);
  }
  try {
    return validate(raw);
  } catch (err) {
    throw new InputFileError(file, (err as Error).message);
  }
}
