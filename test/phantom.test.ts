import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNifti } from '../src/io/nifti.js';
import { makeAbdomenPhantom, MIN_BODY_VALUE, PHANTOM_DESCRIPTION, type AbdomenPhantom } from '../eval/phantom/abdomen.js';
import { abdomenEvalSeed, abdomenNormalSource, abdomenTrainSeed, buildAbdomenPopulation } from '../eval/phantom/population.js';
import { renderPhantomPreview } from '../eval/phantom/preview.js';
import { huToUnit, Tissue, type TissueCode } from '../eval/phantom/tissues.js';

const SIZE = 48;

function bytesOf(a: Float32Array | Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Voxel count and centroid (x, y, z) of the voxels with any of the given labels. */
function region(p: AbdomenPhantom, codes: readonly TissueCode[]): { count: number; centroid: [number, number, number] } {
  const [nx, ny] = p.volume.shape;
  const labels = p.labels!;
  const wanted = new Set<number>(codes);
  let count = 0;
  const sum = [0, 0, 0];
  for (let i = 0; i < labels.length; i++) {
    if (!wanted.has(labels[i])) continue;
    count++;
    sum[0] += i % nx;
    sum[1] += Math.floor(i / nx) % ny;
    sum[2] += Math.floor(i / (nx * ny));
  }
  return { count, centroid: [sum[0] / count, sum[1] / count, sum[2] / count] };
}

function meanValue(p: AbdomenPhantom, codes: readonly TissueCode[]): number {
  const wanted = new Set<number>(codes);
  let s = 0;
  let n = 0;
  for (let i = 0; i < p.labels!.length; i++) {
    if (wanted.has(p.labels![i])) {
      s += p.volume.data[i];
      n++;
    }
  }
  expect(n).toBeGreaterThan(0);
  return s / n;
}

describe('synthetic abdominal phantom', () => {
  let a: AbdomenPhantom;
  beforeAll(() => {
    a = makeAbdomenPhantom({ size: SIZE, seed: 11, labels: true });
  });

  it('is deterministic: the same seed gives the same bytes', () => {
    const again = makeAbdomenPhantom({ size: SIZE, seed: 11, labels: true });
    expect(bytesOf(again.volume.data).equals(bytesOf(a.volume.data))).toBe(true);
    expect(bytesOf(again.body).equals(bytesOf(a.body))).toBe(true);
    expect(bytesOf(again.labels!).equals(bytesOf(a.labels!))).toBe(true);
  });

  it('gives a different patient for a different seed', () => {
    const other = makeAbdomenPhantom({ size: SIZE, seed: 12 });
    let differing = 0;
    for (let i = 0; i < other.volume.data.length; i++) if (other.volume.data[i] !== a.volume.data[i]) differing++;
    expect(differing / other.volume.data.length).toBeGreaterThan(0.2);
    expect(other.anatomy.body.halfWidth).not.toBe(a.anatomy.body.halfWidth);
  });

  it('has the MOOD abdominal geometry: size³, finite values in [0, 1], isotropic voxels', () => {
    expect(a.volume.shape).toEqual([SIZE, SIZE, SIZE]);
    expect(a.volume.spacing[0]).toBe(a.volume.spacing[2]);
    let min = Infinity;
    let max = -Infinity;
    let nonFinite = 0;
    for (const v of a.volume.data) {
      if (!Number.isFinite(v)) nonFinite++;
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    expect(nonFinite).toBe(0);
    expect(min).toBe(0);
    expect(max).toBeLessThanOrEqual(1);
    expect(max).toBeGreaterThan(huToUnit(300));
  });

  it('has a body mask that is exactly the non-air voxels, covering a plausible share of the box', () => {
    let inside = 0;
    let mismatched = 0;
    let belowFloor = 0;
    let unlabelled = 0;
    for (let i = 0; i < a.body.length; i++) {
      if ((a.body[i] === 1) !== a.volume.data[i] > 0) mismatched++;
      if ((a.body[i] === 1) !== (a.labels![i] !== Tissue.background)) unlabelled++;
      if (a.body[i]) {
        inside++;
        if (a.volume.data[i] < Math.fround(MIN_BODY_VALUE)) belowFloor++;
      }
    }
    expect(mismatched).toBe(0);
    expect(unlabelled).toBe(0);
    expect(belowFloor).toBe(0);
    expect(inside / a.body.length).toBeGreaterThan(0.3);
    expect(inside / a.body.length).toBeLessThan(0.8);
    // The corners of every slice are air.
    expect(a.body[0]).toBe(0);
    expect(a.body[SIZE * SIZE * SIZE - 1]).toBe(0);
  });

  it('puts the organs where they belong (+x is patient right, +y anterior, +z superior)', () => {
    const mid = (SIZE - 1) / 2;
    const body = region(a, [Tissue.subcutaneousFat, Tissue.muscle, Tissue.visceralFat]);
    const liver = region(a, [Tissue.liver]);
    const spleen = region(a, [Tissue.spleen]);
    const kidneys = region(a, [Tissue.kidney]);
    const canal = region(a, [Tissue.csf]);
    const vertebrae = region(a, [Tissue.disc]);
    expect(liver.count).toBeGreaterThan(0.01 * SIZE ** 3);
    expect(liver.centroid[0]).toBeGreaterThan(mid); // right side
    expect(liver.centroid[2]).toBeGreaterThan(mid); // upper abdomen
    expect(spleen.count).toBeGreaterThan(0);
    expect(spleen.centroid[0]).toBeLessThan(mid); // left side
    expect(spleen.centroid[1]).toBeLessThan(body.centroid[1]); // posterior
    expect(kidneys.count).toBeGreaterThan(0);
    expect(Math.abs(kidneys.centroid[0] - mid)).toBeLessThan(0.1 * SIZE); // one each side
    expect(kidneys.centroid[1]).toBeLessThan(body.centroid[1]);
    // Spine: posterior midline, running the whole length.
    expect(Math.abs(canal.centroid[0] - mid)).toBeLessThan(0.06 * SIZE);
    expect(canal.centroid[1]).toBeLessThan(body.centroid[1]);
    expect(Math.abs(vertebrae.centroid[0] - mid)).toBeLessThan(0.06 * SIZE);
    const [nx, ny] = a.volume.shape;
    const slicesWithSpine = new Set<number>();
    for (let i = 0; i < a.labels!.length; i++) {
      const l = a.labels![i];
      if (l === Tissue.cancellousBone || l === Tissue.disc) {
        const x = i % nx;
        if (Math.abs(x - mid) < 0.08 * SIZE) slicesWithSpine.add(Math.floor(i / (nx * ny)));
      }
    }
    expect(slicesWithSpine.size).toBeGreaterThan(0.9 * SIZE);
  });

  it('orders intensities like CT: bone > soft tissue > fat > gas and lung > outside air', () => {
    const bone = meanValue(a, [Tissue.corticalBone, Tissue.cancellousBone]);
    const soft = meanValue(a, [Tissue.liver, Tissue.spleen, Tissue.muscle]);
    const fat = meanValue(a, [Tissue.subcutaneousFat, Tissue.visceralFat]);
    const air = meanValue(a, [Tissue.lung, Tissue.gas]);
    expect(bone).toBeGreaterThan(soft + 0.05);
    expect(soft).toBeGreaterThan(fat + 0.03);
    expect(fat).toBeGreaterThan(air + 0.2);
    expect(air).toBeGreaterThan(0);
    // Away from partial-volume edges (the skin), fat sits at its CT number: about −100 HU.
    expect(Math.abs(meanValue(a, [Tissue.visceralFat]) - huToUnit(-100))).toBeLessThan(0.03);
  });

  it('draws the anatomy from the seed alone, whatever the size', () => {
    const small = makeAbdomenPhantom({ size: 24, seed: 11 });
    expect(small.anatomy).toEqual(a.anatomy);
  });

  it('rejects a size that is not an integer ≥ 8', () => {
    expect(() => makeAbdomenPhantom({ size: 4, seed: 1 })).toThrow(/size/);
    expect(() => makeAbdomenPhantom({ size: 16.5, seed: 1 })).toThrow(/size/);
  });

  it('renders a PNG preview', () => {
    const png = renderPhantomPreview(a.volume);
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(2 * SIZE + 4);
  });
});

describe('phantom populations and seeds', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moodlsr-phantom-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes normal_NNNN.nii.gz float32 volumes that say they are synthetic', async () => {
    const paths = await buildAbdomenPopulation({ outDir: dir, count: 2, size: 24, seed: 5 });
    expect((await readdir(dir)).sort()).toEqual(['normal_0000.nii.gz', 'normal_0001.nii.gz']);
    const { volume, header } = await readNifti(paths[1]);
    expect(header.descrip).toBe(PHANTOM_DESCRIPTION);
    expect(header.descrip).toMatch(/synthetic/);
    const expected = makeAbdomenPhantom({ size: 24, seed: abdomenTrainSeed(5, 1) }).volume.data;
    expect(bytesOf(volume.data).equals(bytesOf(expected))).toBe(true);
  });

  it('keeps training and evaluation seeds apart and exposes the phantom as a normal-case source', () => {
    const train = new Set(Array.from({ length: 50 }, (_, i) => abdomenTrainSeed(3, i)));
    const evalSeeds = Array.from({ length: 50 }, (_, i) => abdomenEvalSeed(3, 'normal', i));
    expect(train.size).toBe(50);
    expect(evalSeeds.filter((s) => train.has(s))).toEqual([]);
    const source = abdomenNormalSource();
    const c = source.make(evalSeeds[0], 16);
    expect(c.volume.shape).toEqual([16, 16, 16]);
    expect(c.body.length).toBe(16 ** 3);
    expect(c.params).toEqual({ source: source.name, seed: evalSeeds[0] });
  });
});
