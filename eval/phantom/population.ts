/**
 * Populations of the SYNTHETIC abdominal phantom, written as MOOD-like NIfTI volumes
 * (float32, size³, values in [0, 1]); every file's description says it is synthetic.
 *
 * Seeds follow eval/inject/seeds.ts: training volumes use deriveSeed('train', seed, 'abdomen', i),
 * evaluation normals deriveSeed('eval', seed, 'abdomen', kind, slot) (via `abdomenNormalSource`),
 * so a training population and an evaluation set never share a patient, whatever user seeds are given.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeNifti } from '../../src/io/nifti.js';
import type { NormalCase, NormalSource } from '../inject/normal-source.js';
import { deriveSeed, EVAL_SALT, TRAIN_SALT } from '../inject/seeds.js';
import { populationFileName } from '../inject/population.js';
import { makeAbdomenPhantom, PHANTOM_DESCRIPTION } from './abdomen.js';

export interface AbdomenPopulationOptions {
  readonly outDir: string;
  readonly count: number;
  /** Side of the cubic volumes (MOOD abdomen: 512). */
  readonly size: number;
  readonly seed: number;
  readonly log?: (line: string) => void;
}

/** The seed of training phantom `index` for a user seed. */
export function abdomenTrainSeed(seed: number, index: number): number {
  return deriveSeed(TRAIN_SALT, seed, 'abdomen', index);
}

/** Writes `count` phantoms as outDir/normal_NNNN.nii.gz; returns the paths. One volume in memory at a time. */
export async function buildAbdomenPopulation(opts: AbdomenPopulationOptions): Promise<string[]> {
  if (!Number.isInteger(opts.count) || opts.count < 0) throw new RangeError(`count must be a non-negative integer, got ${opts.count}`);
  await mkdir(opts.outDir, { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < opts.count; i++) {
    const t0 = performance.now();
    const { volume } = makeAbdomenPhantom({ size: opts.size, seed: abdomenTrainSeed(opts.seed, i) });
    const t1 = performance.now();
    const path = join(opts.outDir, populationFileName(i));
    await writeNifti(path, volume, { dtype: 'float32', description: PHANTOM_DESCRIPTION });
    paths.push(path);
    opts.log?.(`${i + 1}/${opts.count} ${path} (generate ${((t1 - t0) / 1000).toFixed(1)} s, write ${((performance.now() - t1) / 1000).toFixed(1)} s)`);
  }
  return paths;
}

/** The phantom as a source of normal cases; the toy-set builder passes deriveSeed('eval', …) seeds. */
export function abdomenNormalSource(): NormalSource {
  const name = 'synthetic-abdomen-phantom';
  return {
    name,
    make(seed: number, size: number): NormalCase {
      const { volume, body } = makeAbdomenPhantom({ size, seed });
      return { volume, body, params: { source: name, seed } };
    },
  };
}

/** The seed of evaluation normal `slot` (of a given case kind) for a user seed, disjoint from training seeds. */
export function abdomenEvalSeed(seed: number, kind: string, slot: number): number {
  return deriveSeed(EVAL_SALT, seed, 'abdomen', kind, slot);
}
