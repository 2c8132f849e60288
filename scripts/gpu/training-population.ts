/**
 * The normal population the GPU trainers' batch producers (disyre-batches.ts, lsr-batches.ts) make for their
 * share of the volumes: brain = the `population` command's variants of the template, abdom = the `phantom`
 * command's phantoms (512³), both with the training seeds. Written to a folder as float32 NIfTI
 * (normal_NNNN.nii) for `openVolumeFolder`.
 */
import { join } from 'node:path';
import { readNifti, writeNifti } from '../../src/io/nifti.js';
import { deriveSeed, TRAIN_SALT } from '../../eval/inject/seeds.js';
import { makeNormalVariant, prepareSource } from '../../eval/inject/variants.js';
import { makeAbdomenPhantom } from '../../eval/phantom/abdomen.js';
import { abdomenTrainSeed } from '../../eval/phantom/population.js';
import type { Region } from '../../src/volume/normalise.js';
import type { Volume } from '../../src/volume/volume.js';

/** A producer's `--region` value, or one error naming the producer and the value. */
export function producerRegion(value: string, producer: string): 'brain' | 'abdom' {
  if (value !== 'brain' && value !== 'abdom') throw new Error(`${producer}: --region ${value} is not brain or abdom`);
  return value;
}

/** The dataset region of a producer region. */
export const datasetRegionOf = (region: 'brain' | 'abdom'): Region => (region === 'brain' ? 'brain' : 'abdomen');

/** Writes normals `indices` of population `popSeed` into `work`; `src` is the brain template (unused for abdom). */
export async function writeTrainingNormals(region: 'brain' | 'abdom', src: string, popSeed: number, indices: readonly number[], work: string): Promise<void> {
  const source = region === 'brain' ? prepareSource((await readNifti(src)).volume) : null;
  const variant = (i: number): Volume =>
    source !== null
      ? makeNormalVariant(source, { size: 256, seed: deriveSeed(TRAIN_SALT, popSeed, 'normal', i) }).volume
      : makeAbdomenPhantom({ size: 512, seed: abdomenTrainSeed(popSeed, i) }).volume;
  for (const i of indices) {
    await writeNifti(join(work, `normal_${String(i).padStart(4, '0')}.nii`), variant(i), { dtype: 'float32' });
  }
}
