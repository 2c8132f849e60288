/**
 * Builds a per-place reference (./place-reference.ts) from normal volumes: each usable file's stack map
 * (`mapOf`) is added in turn, unusable files are skipped with a log line, and the result is rounded as
 * its float16 file will give it back (so a calibration scores with exactly what predict reads).
 */
import { InputFileError } from '../errors.js';
import type { Volume } from '../volume/volume.js';
import type { SliceStack } from '../volume/slices.js';
import { readUsableVolume } from './held-out.js';
import { ReferenceAccumulator, type ResidualReference } from './place-reference.js';
import { asStored } from './place-reference-file.js';

export interface ReferenceMap {
  /** count × height × width, on the plane of `stack`. */
  readonly map: Float32Array;
  readonly stack: Pick<SliceStack, 'count' | 'height' | 'width' | 'positions'>;
  /** Appended to the progress line, e.g. timings. */
  readonly note?: string;
}

/** `what` names the reference in log lines and errors; `index` counts the usable volumes before this one. */
export async function buildPlaceReference(
  files: readonly string[],
  what: string,
  log: (line: string) => void,
  mapOf: (volume: Volume, index: number) => Promise<ReferenceMap>,
): Promise<{ reference: ResidualReference; files: string[] }> {
  let acc: ReferenceAccumulator | null = null;
  const used: string[] = [];
  for (const file of files) {
    const volume = await readUsableVolume(file, log);
    if (volume === null) continue;
    const { map, stack, note } = await mapOf(volume, used.length);
    acc ??= new ReferenceAccumulator(stack.height, stack.width);
    acc.add(map, stack);
    used.push(file);
    log(`${what} ${used.length}/${files.length}: ${file}${note ? ` (${note})` : ''}`);
  }
  if (acc === null) throw new InputFileError(files.join(', ') || '(no files)', `no usable normal volume for the ${what}`);
  return { reference: asStored(acc.result()), files: used };
}
