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
import { halves, writeAll } from './record-stream.js';
import { datasetRegionOf, producerRegion, writeTrainingNormals } from './training-population.js';
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
  const region = producerRegion(option('region', 'brain'), 'disyre-batches');
  await mkdir(work, { recursive: true });
  await writeTrainingNormals(region, option('src'), popSeed, indices, work);
  const folder = await openVolumeFolder([work], {
    region: datasetRegionOf(region),
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
