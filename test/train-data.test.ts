import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { InputFileError } from '../src/errors.js';
import { trainVqvae, type VqvaeTrainOptions } from '../src/train/vqvae-trainer.js';
import { makeVolume } from '../src/volume/volume.js';
import { TINY_VQVAE, capture, headVolume, normalFolder, tempRoot, writeFolder } from './helpers/train-fixtures.js';

let root: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: () => undefined });
  ({ root, cleanup } = await tempRoot('moodlsr-train-data-'));
});
afterAll(async () => {
  await cleanup();
});

function options(dirs: string[], out: string, log: (l: string) => void): VqvaeTrainOptions {
  return {
    region: 'brain',
    data: dirs,
    outDir: join(root, out),
    preset: 'compact',
    config: TINY_VQVAE,
    augment: 'none',
    batch: 2,
    holdout: 0,
    stepsPerEpoch: 1,
    epochs: 1,
    workers: 0,
    backend: 'wasm',
    log,
    sink: capture().sink,
  };
}

function withNaN(seed: number) {
  const v = headVolume(seed);
  const data = v.data.slice();
  data[100] = Number.NaN;
  return makeVolume(v.shape, data);
}

describe('training data folders through trainVqvae', () => {
  it('an empty folder is refused with an error naming it', async () => {
    const empty = await writeFolder(root, 'empty', {});
    const c = capture();
    const run = trainVqvae(options([empty], 'out-empty', c.log));
    await expect(run).rejects.toThrow(InputFileError);
    await expect(run).rejects.toThrow(/empty.*no NIfTI files/);
  });

  it('unreadable, NaN and odd-shaped volumes are skipped with one warning each; training goes on', async () => {
    const good = await normalFolder(root, 'good', 3);
    const bad = await writeFolder(root, 'bad', {
      'broken.nii.gz': 'not a nifti file at all',
      'nan.nii.gz': withNaN(7),
      'small.nii.gz': headVolume(8, [10, 10, 6]),
    });
    const c = capture();
    const result = await trainVqvae(options([good, bad], 'out-mixed', c.log));
    expect(result.state.epoch).toBe(1);
    const warnings = c.lines.filter((l) => l.startsWith('warning: '));
    expect(warnings).toHaveLength(3);
    for (const name of ['broken.nii.gz', 'nan.nii.gz', 'small.nii.gz']) {
      expect(warnings.filter((w) => w.includes(name))).toHaveLength(1);
    }
    expect(warnings.find((w) => w.includes('nan.nii.gz'))).toMatch(/NaN/);
    expect(warnings.find((w) => w.includes('small.nii.gz'))).toMatch(/shape/);
    expect(c.lines.some((l) => /3 volumes .*3 skipped/.test(l))).toBe(true);
  });

  it('refuses to start when nothing usable is left', async () => {
    const bad = await writeFolder(root, 'all-bad', { 'a.nii.gz': 'garbage', 'b.nii.gz': withNaN(9) });
    const c = capture();
    await expect(trainVqvae(options([bad], 'out-bad', c.log))).rejects.toThrow(/none of the 2 NIfTI files is usable/);
    expect(c.lines.filter((l) => l.startsWith('warning: '))).toHaveLength(2);
  });
});
