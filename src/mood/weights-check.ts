/**
 * Checks of a weights folder that `predict` makes before loading a method, so that the message names the
 * real problem: a folder that is missing or holds no weights at all (rather than the first file a method
 * happens to look for), and weights made for another region than --region.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InputFileError } from '../errors.js';
import { fsReason } from '../errors.js';
import type { MoodRegion } from './predictor.js';

/** Refuses a weights folder that does not exist, is a file, or holds no *.json file at all. */
export async function checkWeightsFolder(dir: string, method: string): Promise<void> {
  const info = await stat(dir).catch((err: unknown) => err as Error);
  if (info instanceof Error) throw new InputFileError(dir, `weights folder of --method ${method} cannot be used: ${fsReason(info)}`);
  if (!info.isDirectory()) throw new InputFileError(dir, `--weights must be a folder of weights files, this is a file`);
  const names = await readdir(dir).catch((err: unknown) => {
    throw new InputFileError(dir, `cannot list the weights folder: ${fsReason(err)}`);
  });
  if (!names.some((n) => n.endsWith('.json'))) {
    throw new InputFileError(
      dir,
      `holds no weights (no *.json file): the networks or statistics of --method ${method} are missing; train them (moodlsr train …) or omit --weights to use the shipped ones`,
    );
  }
}

/** MOOD's short region names; training records also write "abdomen". */
function normaliseRegion(value: unknown): MoodRegion | null {
  if (value === 'brain') return 'brain';
  if (value === 'abdom' || value === 'abdomen') return 'abdom';
  return null;
}

/** A "region" field at the top of a JSON object or one level down (e.g. extra.training.region is two). */
function regionIn(value: unknown, depth: number): MoodRegion | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const record = value as Record<string, unknown>;
  const own = normaliseRegion(record.region);
  if (own !== null) return own;
  if (depth === 0) return null;
  for (const [key, child] of Object.entries(record)) {
    if (key === 'tensors' || key === 'config') continue;
    const found = regionIn(child, depth - 1);
    if (found !== null) return found;
  }
  return null;
}

/** The region the weights of `dir` were made for (from the first JSON file that records one), or null. */
export async function weightsRegion(dir: string): Promise<{ region: MoodRegion; file: string } | null> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort();
  for (const name of names) {
    const file = join(dir, name);
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(file, 'utf8'));
    } catch {
      continue;
    }
    const region = regionIn(parsed, 3);
    if (region !== null) return { region, file };
  }
  return null;
}
