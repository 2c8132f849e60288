/** Options shared by the `calibrate` subcommands of the methods. */
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { listNiftiFiles } from '../train/dataset.js';
import type { SliceSelection } from '../volume/slices.js';

/** "every:8", "count:32" or "all". */
export function parseSliceSelection(value: string): SliceSelection {
  if (value === 'all') return 'all';
  const m = /^(every|count):(\d+)$/.exec(value);
  if (m === null || Number(m[2]) < 1) throw new InvalidArgumentError(`--slices must be all, every:N or count:N, got "${value}"`);
  return m[1] === 'every' ? { every: Number(m[2]) } : { count: Number(m[2]) };
}

/** Flags of the restoration methods' calibrations (lsr; lsgs adds its own). */
export interface CalibrateLsrCliOptions {
  weights: string;
  data: string[];
  region: string;
  slices?: SliceSelection;
  copies: number;
  pixelVolumes: number;
  seed: number;
  workers?: number;
  engine: string;
}

/**
 * The NIfTI files of `--reference-data` (none when it was not given): a given folder without volumes,
 * or a volume that is also in `--data`, is an error (the calibration needs normals the reference did
 * not see).
 */
export async function referenceFilesOf(referenceData: readonly string[], calibrationFiles: readonly string[]): Promise<string[]> {
  if (referenceData.length === 0) return [];
  const files = await listNiftiFiles(referenceData);
  if (files.length === 0) throw new Error(`--reference-data: no NIfTI files in ${referenceData.join(', ')}`);
  const both = files.filter((f) => calibrationFiles.some((g) => path.resolve(g) === path.resolve(f)));
  if (both.length > 0) throw new Error(`--reference-data and --data share ${both.length} volume(s) (${both[0]}): the calibration needs normals the reference did not see`);
  return files;
}
