/**
 * Batch producer of the GPU trainer of LSR's networks (scripts/gpu/train_lsr.py): one process makes its
 * share of a normal population (brain: the `population` command's variants of the template; abdom: the
 * `phantom` command's phantoms; same seeds as scripts/gpu/disyre-batches.ts), opens it as the VQ-VAE trainer does (src/train/common.ts prepareData: the model's slice size, the region's
 * normalisation, every axial plane that holds foreground) and writes batches to stdout:
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
  const region = option('region', 'brain');
  if (region !== 'brain' && region !== 'abdom') throw new Error(`lsr-batches: --region ${region} is not brain or abdom`);
  const datasetRegion = region === 'brain' ? 'brain' : 'abdomen';
  await mkdir(work, { recursive: true });
  const source = region === 'brain' ? prepareSource((await readNifti(option('src'))).volume) : null;
  const variant = (i: number): Volume =>
    source !== null
      ? makeNormalVariant(source, { size: 256, seed: deriveSeed(TRAIN_SALT, popSeed, 'normal', i) }).volume
      : makeAbdomenPhantom({ size: 512, seed: abdomenTrainSeed(popSeed, i) }).volume;
  for (const i of indices) {
    await writeNifti(join(work, `normal_${String(i).padStart(4, '0')}.nii`), variant(i), { dtype: 'float32' });
  }
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
