import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../src/engine/random.js';
import { InputFileError } from '../src/errors.js';
import { writeNifti } from '../src/io/nifti.js';
import { augmentOptions } from '../src/train/augment.js';
import { type VolumeEntry, openVolumeFolder, splitVolumes, trainingSliceSelection } from '../src/train/dataset.js';
import { epochVolumeGroups, pickIndices, sampleBatch } from '../src/train/sampler.js';
import { preprocessForModel } from '../src/volume/preprocess.js';
import { slicePosition } from '../src/volume/slices.js';
import { type Shape3, type Volume, makeVolume } from '../src/volume/volume.js';

const SHAPE: Shape3 = [20, 18, 12];
const SIZE = 16;

/** A small head-like volume in [0, 1]: an ellipsoid of varied intensity, background 0. */
function headVolume(seed: number, shape: Shape3 = SHAPE): Volume {
  const [nx, ny, nz] = shape;
  const rng = createRng(seed);
  const data = new Float32Array(nx * ny * nz);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const u = (x - nx / 2) / (nx * 0.4);
        const v = (y - ny / 2) / (ny * 0.4);
        const w = (z - nz / 2) / (nz * 0.45);
        if (u * u + v * v + w * w < 1) data[x + nx * (y + ny * z)] = 0.3 + 0.5 * rng.next();
      }
    }
  }
  return makeVolume(shape, data);
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'moodlsr-dataset-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function folder(name: string, files: Record<string, Volume | string>): Promise<string> {
  const dir = join(root, name);
  await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
  for (const [file, content] of Object.entries(files)) {
    if (typeof content === 'string') await writeFile(join(dir, file), content);
    else await writeNifti(join(dir, file), content);
  }
  return dir;
}

function withNaN(volume: Volume): Volume {
  const data = volume.data.slice();
  data[5] = Number.NaN;
  return makeVolume(volume.shape, data);
}

describe('openVolumeFolder', () => {
  it('keeps the good volumes in file order and skips bad ones with one warning line each', async () => {
    const dir = await folder('mixed', {
      'c.nii.gz': headVolume(3),
      'a.nii.gz': headVolume(1),
      'b.nii': headVolume(2),
      'broken.nii.gz': 'this is not a NIfTI file',
      'nan.nii.gz': withNaN(headVolume(4)),
      'small.nii.gz': headVolume(5, [20, 18, 10]),
      'empty.nii.gz': makeVolume(SHAPE),
      'notes.txt': 'ignored: not a NIfTI name',
    });
    const lines: string[] = [];
    const result = await openVolumeFolder([dir], { region: 'brain', size: SIZE, log: (l) => lines.push(l) });

    expect(result.files.map((e) => e.file)).toEqual(['a.nii.gz', 'b.nii', 'c.nii.gz'].map((f) => join(dir, f)));
    expect(result.shape).toEqual(SHAPE);
    const skippedNames = result.skipped.map((s) => s.file).sort();
    expect(skippedNames).toEqual(['broken.nii.gz', 'empty.nii.gz', 'nan.nii.gz', 'small.nii.gz'].map((f) => join(dir, f)));
    expect(lines).toHaveLength(4);
    for (const name of ['broken', 'nan', 'small', 'empty']) {
      expect(lines.filter((l) => l.includes(join(dir, `${name}.nii`)))).toHaveLength(1);
    }
    expect(lines.find((l) => l.includes('nan.nii.gz'))).toMatch(/1 NaN/);
    expect(lines.find((l) => l.includes('small.nii.gz'))).toMatch(/20×18×10.*20×18×12/);
    expect(lines.find((l) => l.includes('empty.nii.gz'))).toMatch(/foreground/);
    expect(lines.find((l) => l.includes('broken.nii.gz'))).toMatch(/unreadable/);

    for (const entry of result.files) {
      const { stack } = entry;
      expect([stack.count, stack.height, stack.width]).toEqual([SHAPE[2], SIZE, SIZE]);
      expect(stack.positions[0]).toBe(slicePosition(0, SHAPE[2]));
      expect(stack.positions[stack.count - 1]).toBe(slicePosition(SHAPE[2] - 1, SHAPE[2]));
      expect(stack.data.every(Number.isFinite)).toBe(true);
    }
  });

  it('stores each volume as preprocessForModel makes it (the prediction path)', async () => {
    const volume = headVolume(7);
    const dir = await folder('single', { 'one.nii': volume });
    const { files } = await openVolumeFolder([dir], { region: 'brain', size: SIZE, log: () => {} });
    const expected = preprocessForModel(volume, { region: 'brain', slices: 'all', size: SIZE });
    expect(files[0].stack.data).toEqual(expected.data);
    expect(files[0].stack.positions).toEqual(expected.positions);
  });

  it('throws a clear error for an empty folder, a missing folder, and a folder with nothing usable', async () => {
    const empty = await folder('empty', {});
    await expect(openVolumeFolder([empty], { region: 'brain', log: () => {} })).rejects.toThrow(
      new RegExp(`${empty}.*no NIfTI files`),
    );
    await expect(openVolumeFolder([join(root, 'missing')], { region: 'brain', log: () => {} })).rejects.toBeInstanceOf(
      InputFileError,
    );
    const bad = await folder('bad', { 'x.nii.gz': 'garbage', 'y.nii.gz': withNaN(headVolume(1)) });
    const lines: string[] = [];
    const attempt = openVolumeFolder([bad], { region: 'brain', size: SIZE, log: (l) => lines.push(l) });
    await expect(attempt).rejects.toThrow(/none of the 2 NIfTI files is usable.*x\.nii\.gz.*y\.nii\.gz/);
    expect(lines).toHaveLength(2);
  });

  it('caps the slices kept per volume and spreads them over the whole volume', () => {
    expect(trainingSliceSelection(40)).toBe('all');
    expect(trainingSliceSelection(256)).toEqual({ count: 64 });
    expect(trainingSliceSelection(256, 32)).toEqual({ count: 32 });
  });
});

describe('preprocessForModel', () => {
  it('gives a slice the same pixels and position whichever other slices are chosen', () => {
    const volume = headVolume(11, [20, 18, 24]);
    const all = preprocessForModel(volume, { region: 'brain', slices: 'all', size: SIZE });
    const every8 = preprocessForModel(volume, { region: 'brain', size: SIZE });
    expect(every8.zs).toEqual([0, 8, 16]);
    const plane = SIZE * SIZE;
    every8.zs.forEach((z, i) => {
      expect(every8.data.subarray(i * plane, (i + 1) * plane)).toEqual(all.data.subarray(z * plane, (z + 1) * plane));
      expect(every8.positions[i]).toBe(all.positions[z]);
    });
  });

  it('abdomen: every 16th slice, x·2 − 1, empty space at −1', () => {
    const volume = headVolume(12, [20, 18, 40]);
    const stack = preprocessForModel(volume, { region: 'abdomen', size: SIZE });
    expect(stack.zs).toEqual([0, 16, 32]);
    expect(stack.data[0]).toBe(-1);
    expect(Math.max(...stack.data)).toBeLessThanOrEqual(1);
  });
});

function fakeEntries(n: number): { file: string }[] {
  return Array.from({ length: n }, (_, i) => ({ file: `/data/case_${String(i).padStart(2, '0')}.nii.gz` }));
}

describe('splitVolumes', () => {
  it('is deterministic, disjoint, complete, and independent of the input order', () => {
    const entries = fakeEntries(20);
    const a = splitVolumes(entries, { holdoutFraction: 0.2, seed: 1 });
    const b = splitVolumes([...entries].reverse(), { holdoutFraction: 0.2, seed: 1 });
    expect(a).toEqual(b);
    expect(a.holdout).toHaveLength(4);
    expect(a.train).toHaveLength(16);
    const names = (xs: { file: string }[]) => xs.map((e) => e.file);
    expect(names(a.train).filter((f) => names(a.holdout).includes(f))).toEqual([]);
    expect([...names(a.train), ...names(a.holdout)].sort()).toEqual(names(entries));
    const others = [2, 3, 4, 5].map((seed) => names(splitVolumes(entries, { holdoutCount: 4, seed }).holdout));
    expect(others.some((h) => h.join() !== names(a.holdout).join())).toBe(true);
  });

  it('holds out at least one but never everything', () => {
    expect(splitVolumes(fakeEntries(3), { holdoutFraction: 0.01, seed: 0 }).holdout).toHaveLength(1);
    expect(splitVolumes(fakeEntries(3), { holdoutCount: 0, seed: 0 }).holdout).toHaveLength(0);
    expect(() => splitVolumes(fakeEntries(3), { holdoutCount: 3, seed: 0 })).toThrow(/at least one/);
    expect(() => splitVolumes(fakeEntries(1), { holdoutFraction: 0.5, seed: 0 })).toThrow(/at least one/);
  });
});

describe('sampleBatch', () => {
  const stacks = [1, 2, 3].map((seed) =>
    preprocessForModel(headVolume(seed), { region: 'brain', slices: 'all', size: SIZE }),
  );

  it('draws slicesPerVolume distinct slices from each of volumesPerBatch distinct volumes', () => {
    const batch = sampleBatch(stacks, {
      volumesPerBatch: 2,
      slicesPerVolume: 5,
      rng: createRng(1),
      augment: augmentOptions('none'),
    });
    expect([batch.count, batch.height, batch.width]).toEqual([10, SIZE, SIZE]);
    expect(batch.images).toHaveLength(10 * SIZE * SIZE);
    expect(batch.positions).toHaveLength(10);
    const volumes = [...new Set(batch.stackIndex)];
    expect(volumes).toHaveLength(2);
    const plane = SIZE * SIZE;
    for (let b = 0; b < batch.count; b++) {
      const stack = stacks[batch.stackIndex[b]];
      const s = batch.sliceIndex[b];
      expect(batch.positions[b]).toBe(Math.fround(slicePosition(stack.zs[s], SHAPE[2])));
      expect(batch.images.subarray(b * plane, (b + 1) * plane)).toEqual(stack.data.subarray(s * plane, (s + 1) * plane));
    }
    for (const v of volumes) {
      const slices = [...batch.sliceIndex].filter((_, b) => batch.stackIndex[b] === v);
      expect(new Set(slices).size).toBe(5);
    }
  });

  it('is deterministic given the seed, with augmentation', () => {
    const options = { volumesPerBatch: 3, slicesPerVolume: 4, augment: augmentOptions('paper') };
    const a = sampleBatch(stacks, { ...options, rng: createRng(8) });
    const b = sampleBatch(stacks, { ...options, rng: createRng(8) });
    const c = sampleBatch(stacks, { ...options, rng: createRng(9) });
    expect(Buffer.from(a.images.buffer)).toEqual(Buffer.from(b.images.buffer));
    expect(a.positions).toEqual(b.positions);
    expect(Buffer.from(a.images.buffer)).not.toEqual(Buffer.from(c.images.buffer));
    expect(a.images.every(Number.isFinite)).toBe(true);
  });

  it('uses the given volumes, repeating slices only when a volume has too few', () => {
    const batch = sampleBatch(stacks, {
      volumes: [2, 0],
      slicesPerVolume: SHAPE[2] + 3,
      rng: createRng(2),
      augment: augmentOptions('none'),
    });
    expect([...new Set(batch.stackIndex)]).toEqual([2, 0]);
    const fromFirst = [...batch.sliceIndex].slice(0, SHAPE[2]);
    expect(new Set(fromFirst).size).toBe(SHAPE[2]);
  });

  it('epoch groups visit every volume once in equal-size groups', () => {
    const groups = epochVolumeGroups(10, 4, createRng(3));
    expect(groups.map((g) => g.length)).toEqual([4, 4, 4]);
    expect(new Set(groups.flat()).size).toBe(10);
    for (const g of groups) expect(new Set(g).size).toBe(4);
    expect(pickIndices(5, 12, createRng(1)).slice(0, 5).sort()).toEqual([0, 1, 2, 3, 4]);
  });
});

export type { VolumeEntry };
