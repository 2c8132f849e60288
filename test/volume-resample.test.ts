import { describe, it, expect } from 'vitest';
import { createRng } from '../src/engine/random.js';
import { stackToVolume } from '../src/volume/resample.js';
import { resizeStack } from '../src/volume/resize.js';
import { extractAxialSlices, type SliceStack, sliceIndices } from '../src/volume/slices.js';
import { makeVolume, type Shape3 } from '../src/volume/volume.js';

/** A score stack at the model's in-plane size whose slice i is the constant value(i). */
function constantStack(zs: number[], size: number, value: (i: number) => number): SliceStack {
  const plane = size * size;
  const data = new Float32Array(zs.length * plane);
  zs.forEach((_, i) => data.fill(value(i), i * plane, (i + 1) * plane));
  return { data, count: zs.length, height: size, width: size, positions: new Float32Array(zs.length), zs };
}

function plane(data: Float32Array, shape: Shape3, z: number): Float32Array {
  const p = shape[0] * shape[1];
  return data.subarray(z * p, (z + 1) * p);
}

describe('stackToVolume', () => {
  const c = 0.37;
  const shape: Shape3 = [6, 4, 20];

  it('slice i taken at z = zs[i] lands exactly on z = zs[i]; halfway between is the average', () => {
    const zs = sliceIndices(shape[2], { every: 4 }); // 0, 4, 8, 12, 16
    const out = stackToVolume(constantStack(zs, 5, (i) => i * c), shape);
    zs.forEach((z, i) => {
      for (const v of plane(out, shape, z)) expect(v).toBe(Math.fround(i * c));
    });
    for (let i = 0; i + 1 < zs.length; i++) {
      const expected = (Math.fround(i * c) + Math.fround((i + 1) * c)) / 2;
      for (const v of plane(out, shape, zs[i] + 2)) expect(v).toBeCloseTo(expected, 6);
      // a quarter of the way
      for (const v of plane(out, shape, zs[i] + 1)) expect(v).toBeCloseTo(0.75 * Math.fround(i * c) + 0.25 * Math.fround((i + 1) * c), 6);
    }
  });

  it('holds the nearest slice outside [zs[0], zs[last]] and handles uneven spacing', () => {
    const zs = [3, 7, 15];
    const out = stackToVolume(constantStack(zs, 3, (i) => [1, 2, 10][i]), shape);
    for (let z = 0; z <= 3; z++) for (const v of plane(out, shape, z)) expect(v).toBe(1);
    for (let z = 15; z < 20; z++) for (const v of plane(out, shape, z)) expect(v).toBe(10);
    for (const v of plane(out, shape, 9)) expect(v).toBeCloseTo(2 + (8 * 2) / 8, 6);
  });

  it('has no z shift: a volume linear in z, sampled every 3rd slice, comes back exactly linear', () => {
    const [nx, ny, nz] = [5, 4, 22];
    const volume = makeVolume([nx, ny, nz]);
    for (let z = 0; z < nz; z++) plane(volume.data, volume.shape, z).fill(2 * z + 1);
    const zs = sliceIndices(nz, { every: 3 }); // last sampled slice is 21
    const model = resizeStack(extractAxialSlices(volume, zs), 16, 16);
    const out = stackToVolume(model, volume.shape);
    for (let z = 0; z < nz; z++) for (const v of plane(out, volume.shape, z)) expect(v).toBeCloseTo(2 * z + 1, 4);
  });

  it("with 'all' slices at the volume's own in-plane size it is the exact identity", () => {
    const rng = createRng(11);
    const shape3: Shape3 = [7, 5, 6];
    const volume = makeVolume(shape3, Float32Array.from({ length: 7 * 5 * 6 }, () => rng.normal()));
    const out = stackToVolume(extractAxialSlices(volume, sliceIndices(6, 'all')), shape3);
    expect(out).toEqual(volume.data);
  });

  it('sampled planes of a random volume come back unchanged when the in-plane size matches', () => {
    const rng = createRng(12);
    const shape3: Shape3 = [6, 3, 9];
    const volume = makeVolume(shape3, Float32Array.from({ length: 6 * 3 * 9 }, () => rng.next()));
    const zs = [1, 5, 8];
    const out = stackToVolume(extractAxialSlices(volume, zs), shape3);
    for (const z of zs) expect(plane(out, shape3, z)).toEqual(plane(volume.data, shape3, z));
  });

  it('rejects unsorted, out-of-range or mismatched slices', () => {
    expect(() => stackToVolume(constantStack([4, 2], 2, () => 0), shape)).toThrow(/strictly increasing/);
    expect(() => stackToVolume(constantStack([20], 2, () => 0), shape)).toThrow(/outside/);
    const bad = { ...constantStack([1, 2], 2, () => 0), zs: [1] };
    expect(() => stackToVolume(bad, shape)).toThrow(/z indices/);
  });
});
