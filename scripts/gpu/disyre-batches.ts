/**
 * Batch producer of the GPU trainer (scripts/gpu/train_disyre.py): one process makes its share of a
 * normal population (the `population` command's variants, same seeds), opens it as the DISYRE trainer
 * does (src/methods/disyre/trainer.ts: 128² slice stacks, usable slices) and writes batches drawn by
 * the trainer's own `drawBatch` (src/methods/disyre/samples.ts) to stdout, forever in `train` mode,
 * or a fixed number in `holdout` mode. Bundled with esbuild into one file so that a bare machine with
 * only a node binary runs it (scripts/gpu/prepare.sh).
 *
 *   node batches.mjs [--region brain|abdom] --src ch2bet.nii.gz --work DIR --pop-seed 7 --indices 0,5,10 --seed 3 --batch 16 \
 *     [--mode holdout --batches 8] [--size 128 --embed 32]
 *
 * Record per batch (little endian): image, target, mask as float16 [B, S, S]; cond as float32 [B, 2E].
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readNifti, writeNifti } from '../../src/io/nifti.js';
import { halves, writeAll } from './record-stream.js';
import { deriveSeed, TRAIN_SALT } from '../../eval/inject/seeds.js';
import { makeNormalVariant, prepareSource } from '../../eval/inject/variants.js';
import { makeAbdomenPhantom } from '../../eval/phantom/abdomen.js';
import { abdomenTrainSeed } from '../../eval/phantom/population.js';
import type { Volume } from '../../src/volume/volume.js';
import { openVolumeFolder } from '../../src/train/dataset.js';
import { createRng } from '../../src/engine/random.js';
import { DEFAULT_CORRUPTION } from '../../src/methods/disyre/corrupt.js';
import { RAW_INTENSITIES } from '../../src/methods/disyre/config.js';
import { conditionInput } from '../../src/methods/disyre/embedding.js';
import { DISYRE_SLICE_RULES, drawBatch, sourceOf } from '../../src/methods/disyre/samples.js';
import { option } from '../cli-options.js';

async function main(): Promise<void> {
  const work = option('work');
  const popSeed = Number(option('pop-seed'));
  const indices = option('indices').split(',').map(Number);
  const seed = option('seed');
  const batch = Number(option('batch', '16'));
  const size = Number(option('size', '128'));
  const embedDim = Number(option('embed', '32'));
  const mode = option('mode', 'train');
  const batches = Number(option('batches', '0'));
  const region = option('region', 'brain');
  if (region !== 'brain' && region !== 'abdom') throw new Error(`disyre-batches: --region ${region} is not brain or abdom`);
  await mkdir(work, { recursive: true });
  // brain: the `population` command's variants of the template; abdom: the `phantom` command's phantoms (512³)
  const source = region === 'brain' ? prepareSource((await readNifti(option('src'))).volume) : null;
  const variant = (i: number): Volume =>
    source !== null
      ? makeNormalVariant(source, { size: 256, seed: deriveSeed(TRAIN_SALT, popSeed, 'normal', i) }).volume
      : makeAbdomenPhantom({ size: 512, seed: abdomenTrainSeed(popSeed, i) }).volume;
  for (const i of indices) {
    const volume = variant(i);
    await writeNifti(join(work, `normal_${String(i).padStart(4, '0')}.nii`), volume, { dtype: 'float32' });
  }
  const folder = await openVolumeFolder([work], {
    region: region === 'brain' ? 'brain' : 'abdomen',
    size,
    normalisation: RAW_INTENSITIES,
    maxSlicesPerVolume: DISYRE_SLICE_RULES.slicesPerVolume,
    log: (line) => process.stderr.write(`disyre-batches: ${line}\n`),
  });
  await rm(work, { recursive: true, force: true }); // the stacks are in memory now
  const slices = sourceOf(folder.files, DEFAULT_CORRUPTION, DISYRE_SLICE_RULES.minTissue);
  process.stderr.write(`disyre-batches ${seed}: ${folder.files.length} volumes, ${slices.usable.reduce((a, u) => a + u.length, 0)} slices\n`);
  const rng = createRng(`${seed}:${mode}`);
  for (let n = 0; mode === 'train' || n < batches; n++) {
    const b = drawBatch(slices, size, batch, rng, DEFAULT_CORRUPTION);
    const cond = conditionInput({ embedDim }, b.levels, b.positions);
    await writeAll(Buffer.concat([halves(b.images), halves(b.targets), halves(b.masks!), Buffer.from(cond.buffer)]));
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`disyre-batches: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
