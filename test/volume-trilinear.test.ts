import { describe, it, expect } from 'vitest';
import { createRng } from '../src/engine/random.js';
import { resampleData, resampleVolume, sampleTrilinear, sampleTrilinearPoints } from '../src/volume/trilinear.js';
import { type Affine, makeVolume, type Shape3 } from '../src/volume/volume.js';

const cube: Shape3 = [2, 2, 2];
/** v = x + 2y + 4z on the 2×2×2 cube: values 0 … 7 in memory order. */
const ramp = Float32Array.from({ length: 8 }, (_, i) => i);

describe('sampleTrilinear', () => {
  it('returns voxel values at integer coordinates', () => {
    const rng = createRng(1);
    const shape: Shape3 = [4, 3, 5];
    const data = Float32Array.from({ length: 60 }, () => rng.normal());
    for (let z = 0; z < 5; z++)
      for (let y = 0; y < 3; y++)
        for (let x = 0; x < 4; x++) {
          expect(sampleTrilinear(data, shape, x, y, z)).toBe(data[x + 4 * (y + 3 * z)]);
          expect(sampleTrilinear(data, shape, x, y, z, 'zero')).toBeCloseTo(data[x + 4 * (y + 3 * z)], 6);
        }
  });

  it('matches hand-computed values', () => {
    expect(sampleTrilinear(ramp, cube, 0.25, 0.5, 0.75)).toBeCloseTo(0.25 + 1 + 3, 6);
    const corner = new Float32Array(8);
    corner[7] = 8; // only voxel (1, 1, 1) is set
    expect(sampleTrilinear(corner, cube, 0.5, 0.5, 0.5)).toBeCloseTo(1, 6);
    expect(sampleTrilinear(corner, cube, 0.5, 1, 1)).toBeCloseTo(4, 6);
  });

  it("'clamp' extends the edge voxels outwards", () => {
    expect(sampleTrilinear(ramp, cube, -3, 0.5, 7)).toBeCloseTo(0 + 1 + 4, 6);
    expect(sampleTrilinear(ramp, cube, 1.5, -0.2, -1)).toBeCloseTo(1, 6);
  });

  it("'zero' fades to zero over the last voxel outside the grid", () => {
    const ones = new Float32Array(27).fill(1);
    const shape: Shape3 = [3, 3, 3];
    expect(sampleTrilinear(ones, shape, 1.3, 1, 1.7, 'zero')).toBeCloseTo(1, 6);
    expect(sampleTrilinear(ones, shape, -0.5, 1, 1, 'zero')).toBeCloseTo(0.5, 6);
    expect(sampleTrilinear(ones, shape, 2.25, 2.5, 1, 'zero')).toBeCloseTo(0.75 * 0.5, 6);
    expect(sampleTrilinear(ones, shape, -1, 1, 1, 'zero')).toBe(0);
    expect(sampleTrilinear(ones, shape, 1, 1, 3.5, 'zero')).toBe(0);
  });

  it('sampleTrilinearPoints agrees with single samples', () => {
    const rng = createRng(2);
    const coords = Float64Array.from({ length: 30 }, () => rng.uniform(-1.5, 2.5));
    for (const mode of ['clamp', 'zero'] as const) {
      const many = sampleTrilinearPoints(ramp, cube, coords, mode);
      for (let m = 0; m < 10; m++) {
        expect(many[m]).toBe(Math.fround(sampleTrilinear(ramp, cube, coords[3 * m], coords[3 * m + 1], coords[3 * m + 2], mode)));
      }
    }
    expect(() => sampleTrilinearPoints(ramp, cube, new Float32Array(4))).toThrow(/triples/);
  });
});

describe('resampleData', () => {
  it('same shape is an exact copy', () => {
    const rng = createRng(3);
    const data = Float32Array.from({ length: 3 * 4 * 5 }, () => rng.normal());
    expect(resampleData(data, [3, 4, 5], [3, 4, 5])).toEqual(data);
  });

  it('2 → 4 along each axis matches hand-computed half-pixel values', () => {
    // source coordinates per axis: 0 (clamped), 0.25, 0.75, 1 (clamped); v = x + 2y + 4z is linear.
    const out = resampleData(ramp, cube, [4, 4, 4]);
    const s = [0, 0.25, 0.75, 1];
    for (let k = 0; k < 4; k++)
      for (let j = 0; j < 4; j++)
        for (let i = 0; i < 4; i++) expect(out[i + 4 * (j + 4 * k)]).toBeCloseTo(s[i] + 2 * s[j] + 4 * s[k], 6);
  });

  it('4 → 2 averages neighbour pairs; constants stay constant for any shape change', () => {
    const line = Float32Array.from([1, 3, 5, 7]);
    expect(Array.from(resampleData(line, [4, 1, 1], [2, 1, 1]))).toEqual([2, 6]);
    const constant = new Float32Array(5 * 6 * 7).fill(0.3);
    for (const v of resampleData(constant, [5, 6, 7], [8, 3, 11])) expect(v).toBe(Math.fround(0.3));
  });
});

describe('resampleVolume', () => {
  it('keeps every new voxel at the world position of the same continuous point of the old grid', () => {
    const affine: Affine = [
      [0.9, 0.1, 0, -90],
      [0, 1.1, -0.2, -120],
      [0.05, 0, 1.2, -70],
      [0, 0, 0, 1],
    ];
    const volume = makeVolume([6, 8, 5], new Float32Array(240), [1, 1, 1], affine);
    const newShape: Shape3 = [4, 16, 10];
    const out = resampleVolume(volume, newShape);
    expect(out.shape).toEqual(newShape);
    expect(out.spacing).toEqual([1.5, 0.5, 0.5]);
    const world = (a: Affine, p: number[]) => [0, 1, 2].map((r) => a[r][0] * p[0] + a[r][1] * p[1] + a[r][2] * p[2] + a[r][3]);
    const scale = [6 / 4, 8 / 16, 5 / 10];
    for (const p of [[0, 0, 0], [3, 15, 9], [1, 7, 4], [-0.5, -0.5, -0.5]]) {
      const old = p.map((v, a) => (v + 0.5) * scale[a] - 0.5);
      const expected = world(affine, old);
      world(out.affine, p).forEach((v, r) => expect(v).toBeCloseTo(expected[r], 9));
    }
    expect(out.affine[3]).toEqual([0, 0, 0, 1]);
  });

  it('resamples the data with the same convention as resampleData', () => {
    const rng = createRng(4);
    const volume = makeVolume([5, 4, 3], Float32Array.from({ length: 60 }, () => rng.next()));
    expect(resampleVolume(volume, [7, 7, 7]).data).toEqual(resampleData(volume.data, [5, 4, 3], [7, 7, 7]));
  });
});
