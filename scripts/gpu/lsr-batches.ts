/**
 * Batch producer of the GPU trainer of LSR's networks (scripts/gpu/train_lsr.py): one process makes its
 * share of a normal population (training-population.ts: brain variants of the template or abdominal
 * phantoms), opens it as the VQ-VAE trainer does (src/train/common.ts prepareData: the model's slice
 * size, the region's normalisation, every axial plane that holds foreground) and writes batches to stdout:
 * - `train`: forever, slices drawn by the trainer's own sampler with the paper's augmentation
 *   (src/train/sampler.ts sampleBatch, src/train/augment.ts);
 * - `holdout`: the fixed unaugmented held-out slices of the CPU trainer (`holdoutImageBatches`: 8 evenly
 *   spread slices per volume), then it ends.
 * Bundled with esbuild into one file so that a bare machine with only a node binary runs it (prepare.sh).
 *
 *   node lsr-batches.mjs [--region brain|abdom] --src ch2bet.nii.gz --work DIR --pop-seed 7 --indices 0,5,10 --seed S --batch 16 --size 128 [--mode holdout] [--augment none]
 *
 * Record per batch (little endian): images as float16 [B, S, S]; positions as float32 [B]. A holdout
 * stream whose slice count is not a multiple of B is padded by repeating its last slice (the trainer
 * weights every record equally, so holdout counts are chosen to divide evenly: 8 volumes × 8 slices).
 */
import { mkdir, rm } from 'node:fs/promises';
import { halves, writeAll } from './record-stream.js';
import { datasetRegionOf, producerRegion, writeTrainingNormals } from './training-population.js';
import { openVolumeFolder } from '../../src/train/dataset.js';
import { createRng } from '../../src/engine/random.js';
import { augmentOptionsFor } from '../../src/train/augment.js';
import { sampleBatch } from '../../src/train/sampler.js';
import { holdoutImageBatches, HOLDOUT_SLICES_PER_VOLUME } from '../../src/train/holdout-slices.js';
import { option } from '../cli-options.js';

function record(images: Float32Array, positions: Float32Array): Buffer {
  return Buffer.concat([halves(images), Buffer.from(Float32Array.from(positions).buffer)]);
}

async function main(): Promise<void> {
  const work = option('work');
  const popSeed = Number(option('pop-seed'));
  const indices = option('indices').split(',').map(Number);
  const seed = option('seed');
  const batch = Number(option('batch', '16'));
  const size = Number(option('size', '128'));
  const mode = option('mode', 'train');
  const augmentPreset = option('augment', 'paper');
  if (augmentPreset !== 'paper' && augmentPreset !== 'none') throw new Error(`lsr-batches: --augment ${augmentPreset} is not paper or none`);
  if (mode !== 'train' && mode !== 'holdout') throw new Error(`lsr-batches: --mode ${mode} is not train or holdout`);
  const region = producerRegion(option('region', 'brain'), 'lsr-batches');
  const datasetRegion = datasetRegionOf(region);
  await mkdir(work, { recursive: true });
  await writeTrainingNormals(region, option('src'), popSeed, indices, work);
  const folder = await openVolumeFolder([work], { region: datasetRegion, size, sliceRule: 'foreground', log: (line) => process.stderr.write(`lsr-batches: ${line}\n`) });
  await rm(work, { recursive: true, force: true }); // the stacks are in memory now
  const stacks = folder.files.map((f) => f.stack);
  process.stderr.write(`lsr-batches ${seed}: ${stacks.length} volumes, ${stacks.reduce((a, s) => a + s.count, 0)} slices\n`);
  if (mode === 'holdout') {
    for (const b of holdoutImageBatches(stacks, HOLDOUT_SLICES_PER_VOLUME, batch)) {
      const images = new Float32Array(batch * size * size);
      const positions = new Float32Array(batch);
      for (let i = 0; i < batch; i++) {
        const from = Math.min(i, b.count - 1);
        images.set(b.images.subarray(from * size * size, (from + 1) * size * size), i * size * size);
        positions[i] = b.positions[from]!;
      }
      await writeAll(record(images, positions));
    }
    return;
  }
  const augment = augmentOptionsFor(augmentPreset, datasetRegion);
  const volumesPerBatch = Math.min(stacks.length, batch);
  const slicesPerVolume = Math.ceil(batch / volumesPerBatch);
  const rng = createRng(`${seed}:train`);
  for (;;) {
    const b = sampleBatch(stacks, { volumesPerBatch, slicesPerVolume, rng, augment });
    await writeAll(record(b.images.subarray(0, batch * size * size), b.positions.subarray(0, batch)));
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`lsr-batches: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
