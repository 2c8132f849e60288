import { describe, it, expect } from 'vitest';
import { createRng } from '../src/engine/random.js';
import { avgPool3d, type Kernel3, minPool3d } from '../src/volume/pool3d.js';
import type { Shape3 } from '../src/volume/volume.js';

/** Direct definition: window cut at the border, min or mean of the in-volume voxels. */
function bruteForce(data: Float32Array, shape: Shape3, kernel: Kernel3, kind: 'min' | 'avg'): Float64Array {
  const [nx, ny, nz] = shape;
  const [rx, ry, rz] = kernel.map((k) => (k - 1) / 2);
  const out = new Float64Array(data.length);
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++) {
        let min = Infinity;
        let sum = 0;
        let count = 0;
        for (let c = Math.max(0, z - rz); c <= Math.min(nz - 1, z + rz); c++)
          for (let b = Math.max(0, y - ry); b <= Math.min(ny - 1, y + ry); b++)
            for (let a = Math.max(0, x - rx); a <= Math.min(nx - 1, x + rx); a++) {
              const v = data[a + nx * (b + ny * c)];
              min = Math.min(min, v);
              sum += v;
              count++;
            }
        out[x + nx * (y + ny * z)] = kind === 'min' ? min : sum / count;
      }
  return out;
}

const cases: Array<[Shape3, Kernel3]> = [
  [[7, 5, 6], [3, 3, 3]],
  [[9, 8, 7], [7, 7, 3]],
  [[5, 6, 4], [1, 5, 1]],
  [[4, 3, 5], [9, 3, 7]], // kernel wider than the axis
  [[1, 1, 10], [3, 3, 5]],
  [[300, 2, 3], [5, 1, 3]], // more lines than one lane block along y and z
];

describe('minPool3d', () => {
  it.each(cases)('equals brute force exactly on random data, shape %j kernel %j', (shape, kernel) => {
    const rng = createRng(`${shape}-${kernel}`);
    const data = Float32Array.from({ length: shape[0] * shape[1] * shape[2] }, () => rng.normal());
    const fast = minPool3d(data, shape, kernel);
    const slow = bruteForce(data, shape, kernel, 'min');
    for (let i = 0; i < data.length; i++) expect(fast[i]).toBe(slow[i]);
  });

  it('ignores out-of-volume voxels: a border minimum is not pulled to zero', () => {
    const data = Float32Array.from({ length: 27 }, () => 5);
    expect(Array.from(minPool3d(data, [3, 3, 3], [3, 3, 3]))).toEqual(Array(27).fill(5));
  });

  it('handles a stack of slices as a volume with nz = N (kernel 1 along N leaves slices independent)', () => {
    const data = new Float32Array(2 * 3 * 3);
    data[4] = -1; // centre of slice 0
    const out = minPool3d(data, [3, 3, 2], [3, 3, 1]);
    expect(Array.from(out.subarray(0, 9))).toEqual(Array(9).fill(-1));
    expect(Array.from(out.subarray(9))).toEqual(Array(9).fill(0));
  });
});

describe('avgPool3d', () => {
  it.each(cases)('equals brute force to 1e-6 relative on random data, shape %j kernel %j', (shape, kernel) => {
    const rng = createRng(`avg-${shape}-${kernel}`);
    const data = Float32Array.from({ length: shape[0] * shape[1] * shape[2] }, () => rng.uniform(0.5, 2));
    const fast = avgPool3d(data, shape, kernel);
    const slow = bruteForce(data, shape, kernel, 'avg');
    for (let i = 0; i < data.length; i++) expect(Math.abs(fast[i] - slow[i])).toBeLessThanOrEqual(1e-6 * Math.abs(slow[i]));
  });

  it('divides by the in-volume count: a constant map stays constant at the borders', () => {
    const data = new Float32Array(4 * 5 * 6).fill(0.75);
    for (const v of avgPool3d(data, [4, 5, 6], [7, 7, 3])) expect(v).toBeCloseTo(0.75, 6);
  });

  it('does not modify its input and rejects even kernels', () => {
    const data = Float32Array.from({ length: 8 }, (_, i) => i);
    avgPool3d(data, [2, 2, 2], [3, 3, 3]);
    minPool3d(data, [2, 2, 2], [3, 3, 3]);
    expect(Array.from(data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(() => avgPool3d(data, [2, 2, 2], [2, 3, 3])).toThrow(/odd/);
    expect(() => minPool3d(data, [2, 2, 3], [3, 3, 3])).toThrow(/needs 12/);
  });
});
