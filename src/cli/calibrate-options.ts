/** Options shared by the `calibrate` subcommands of the methods. */
import { InvalidArgumentError } from 'commander';
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
