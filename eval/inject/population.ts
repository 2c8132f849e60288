/**
 * Normal training populations: random variants of real heads, drawn from the 'train' seed space so that
 * they never coincide with the normal cases of an evaluation set built by `inject` (salt 'eval').
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readNifti, writeNifti } from '../../src/io/nifti.js';
import { deriveSeed, TRAIN_SALT } from './seeds.js';
import { makeNormalVariant, prepareSource, type PreparedSource } from './variants.js';

export interface PopulationOptions {
  readonly sources: readonly string[];
  readonly outDir: string;
  readonly count: number;
  readonly size: number;
  readonly seed: number;
  readonly log?: (line: string) => void;
}

export function populationFileName(index: number): string {
  return `normal_${String(index).padStart(4, '0')}.nii.gz`;
}

/** Writes `count` normal variants as outDir/normal_NNNN.nii.gz (float32, MOOD geometry); returns the paths. */
export async function buildPopulation(opts: PopulationOptions): Promise<string[]> {
  if (opts.sources.length === 0) throw new RangeError('a population needs at least one source head');
  const prepared: PreparedSource[] = [];
  for (const path of opts.sources) prepared.push(prepareSource((await readNifti(path)).volume));
  await mkdir(opts.outDir, { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < opts.count; i++) {
    const seed = deriveSeed(TRAIN_SALT, opts.seed, 'normal', i);
    const source = prepared[i % prepared.length]!;
    const { volume } = makeNormalVariant(source, { size: opts.size, seed });
    const path = join(opts.outDir, populationFileName(i));
    await writeNifti(path, volume, { dtype: 'float32' });
    paths.push(path);
    opts.log?.(`${i + 1}/${opts.count} ${path}`);
  }
  return paths;
}
