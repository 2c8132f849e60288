import { describe, it, expect } from 'vitest';
import { makeVolume } from '../src/volume/volume.js';
import {
  extractAxialSlices,
  slicePosition,
  sliceIndices,
  stackShape,
  withSliceData,
} from '../src/volume/slices.js';

/** Voxel value that encodes its own coordinates, so any misplaced copy shows. */
function codedVolume(nx: number, ny: number, nz: number) {
  const data = new Float32Array(nx * ny * nz);
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) data[x + nx * (y + ny * z)] = x + 100 * y + 10000 * z;
  return makeVolume([nx, ny, nz], data);
}

describe('sliceIndices', () => {
  it('every 8th of 256 is the paper selection z = 0, 8, …, 248', () => {
    const zs = sliceIndices(256, { every: 8 });
    expect(zs).toHaveLength(32);
    expect(zs[0]).toBe(0);
    expect(zs[31]).toBe(248);
    zs.forEach((z, i) => expect(z).toBe(8 * i));
  });

  it('every 16th of 512 gives 32 slices; a step not dividing nz keeps the partial last block', () => {
    expect(sliceIndices(512, { every: 16 })).toHaveLength(32);
    expect(sliceIndices(10, { every: 4 })).toEqual([0, 4, 8]);
  });

  it('count spreads slices evenly from the first to the last, distinct and sorted', () => {
    expect(sliceIndices(11, { count: 3 })).toEqual([0, 5, 10]);
    expect(sliceIndices(9, { count: 1 })).toEqual([4]);
    for (const [nz, count] of [[7, 7], [100, 32], [33, 32], [256, 5]] as const) {
      const zs = sliceIndices(nz, { count });
      expect(zs).toHaveLength(count);
      expect(zs[0]).toBe(0);
      expect(zs[count - 1]).toBe(count > 1 ? nz - 1 : Math.round((nz - 1) / 2));
      for (let i = 1; i < zs.length; i++) expect(zs[i]).toBeGreaterThan(zs[i - 1]);
    }
  });

  it("'all' lists every slice", () => {
    expect(sliceIndices(5, 'all')).toEqual([0, 1, 2, 3, 4]);
  });

  it('rejects impossible requests with a clear error', () => {
    expect(() => sliceIndices(4, { count: 5 })).toThrow(/5 distinct slices/);
    expect(() => sliceIndices(4, { every: 0 })).toThrow(/every/);
    expect(() => sliceIndices(0, 'all')).toThrow(/nz/);
  });
});

describe('slicePosition', () => {
  it('runs from −0.5 at the first slice to +0.5 at the last and matches linspace for all slices', () => {
    const nz = 33;
    const all = sliceIndices(nz, 'all').map((z) => slicePosition(z, nz));
    all.forEach((p, i) => expect(p).toBeCloseTo(-0.5 + i / (nz - 1), 12));
    expect(slicePosition(0, 1)).toBe(0);
  });
});

describe('extractAxialSlices', () => {
  it('slice i is the volume plane z = zs[i], rows = y, columns = x', () => {
    const [nx, ny, nz] = [4, 3, 6];
    const volume = codedVolume(nx, ny, nz);
    const zs = [1, 4, 5];
    const stack = extractAxialSlices(volume, zs);
    expect(stack.count).toBe(3);
    expect(stack.height).toBe(ny);
    expect(stack.width).toBe(nx);
    expect(stack.zs).toEqual(zs);
    zs.forEach((z, i) => {
      for (let h = 0; h < ny; h++)
        for (let w = 0; w < nx; w++) expect(stack.data[w + nx * (h + ny * i)]).toBe(w + 100 * h + 10000 * z);
      expect(stack.positions[i]).toBeCloseTo(z / (nz - 1) - 0.5, 6);
    });
    expect(stackShape(stack)).toEqual([nx, ny, 3]);
  });

  it('copies (the stack does not alias the volume)', () => {
    const volume = codedVolume(2, 2, 2);
    const stack = extractAxialSlices(volume, [1]);
    stack.data[0] = -1;
    expect(volume.data[4]).toBe(10000);
  });

  it('rejects unsorted or out-of-range z', () => {
    const volume = codedVolume(2, 2, 4);
    expect(() => extractAxialSlices(volume, [2, 1])).toThrow(/strictly increasing/);
    expect(() => extractAxialSlices(volume, [4])).toThrow(/outside/);
    expect(() => extractAxialSlices(volume, [])).toThrow(/no slices/);
  });

  it('withSliceData keeps positions and zs and checks the size', () => {
    const stack = extractAxialSlices(codedVolume(2, 2, 4), [0, 3]);
    const other = withSliceData(stack, new Float32Array(2 * 5 * 5), 5, 5);
    expect(other.positions).toBe(stack.positions);
    expect(other.zs).toEqual([0, 3]);
    expect(() => withSliceData(stack, new Float32Array(3))).toThrow(/3 values/);
  });
});
