import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isNiftiFileName } from '../io/nifti.js';

export interface CaseListing {
  /** NIfTI files of the folder, sorted by name (code-unit order, like Python's sorted()). */
  readonly cases: string[];
  /** Other entries of the folder, which are not cases. */
  readonly ignored: string[];
}

/** The cases of an input folder: every `*.nii` / `*.nii.gz` regular file, sorted by name. */
export async function listCases(inDir: string): Promise<CaseListing> {
  const entries = await readdir(inDir, { withFileTypes: true });
  const cases: string[] = [];
  const ignored: string[] = [];
  for (const e of entries) {
    if ((e.isFile() || e.isSymbolicLink()) && isNiftiFileName(e.name)) cases.push(e.name);
    else ignored.push(e.name);
  }
  const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return { cases: cases.sort(byCodeUnit), ignored: ignored.sort(byCodeUnit) };
}

export interface Shard {
  /** 1-based index of this shard. */
  readonly index: number;
  readonly count: number;
}

/** Parses "K/N" (1 ≤ K ≤ N). */
export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new Error(`--shard must look like K/N (e.g. 2/8), got "${text}"`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index < 1 || index > count) throw new Error(`--shard ${text}: need 1 ≤ K ≤ N`);
  return { index, count };
}

/**
 * The K-th of N disjoint, contiguous parts of a sorted list; the parts' sizes differ by at most one
 * and their union is the whole list. Contiguous parts keep each shard's outputs a sorted run.
 */
export function selectShard<T>(items: readonly T[], shard: Shard): T[] {
  const start = Math.floor(((shard.index - 1) * items.length) / shard.count);
  const end = Math.floor((shard.index * items.length) / shard.count);
  return items.slice(start, end);
}

export function outputPathFor(outDir: string, caseName: string, task: 'sample' | 'pixel'): string {
  return join(outDir, task === 'sample' ? `${caseName}.txt` : caseName);
}
