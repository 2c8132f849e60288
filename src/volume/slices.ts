import type { Shape3, Volume } from './volume.js';

/**
 * Which axial slices to take from a volume with `nz` slices.
 * - `{ every: k }`: z = 0, k, 2k, … < nz (the paper: every 8th of 256 → 32 slices, z = 0 … 248).
 * - `{ count: n }`: n slices evenly spaced from z = 0 to z = nz − 1 inclusive (rounded to the nearest
 *   integer; n = 1 takes the middle slice).
 * - `'all'`: every slice.
 */
export type SliceSelection = { readonly every: number } | { readonly count: number } | 'all';

/**
 * A stack of 2-D axial slices, N × H × W with W fastest: pixel (row h, column w) of slice i is
 * `data[w + width * (h + height * i)]`.
 *
 * Orientation (no flips, no transposes): a slice of a volume has H = ny rows and W = nx columns, row h
 * is y = h, column w is x = w. So slice i is exactly the contiguous block of volume data at z = zs[i],
 * and a stack is laid out like a volume with shape [W, H, N] (see `stackShape`).
 */
export interface SliceStack {
  readonly data: Float32Array;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  /** Conditioning value of each slice, from `slicePosition(zs[i], nz)`. */
  readonly positions: Float32Array;
  /** The volume z index each slice was taken at, strictly increasing. */
  readonly zs: readonly number[];
}

function assertPositiveInteger(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${what} must be a positive integer, got ${value}`);
  }
}

/** Sorted, distinct z indices chosen by `selection` from a volume with `nz` axial slices. */
export function sliceIndices(nz: number, selection: SliceSelection): number[] {
  assertPositiveInteger(nz, 'number of slices nz');
  if (selection === 'all') {
    return Array.from({ length: nz }, (_, z) => z);
  }
  if ('every' in selection) {
    assertPositiveInteger(selection.every, 'slice step "every"');
    const zs: number[] = [];
    for (let z = 0; z < nz; z += selection.every) zs.push(z);
    return zs;
  }
  const count = selection.count;
  assertPositiveInteger(count, 'slice "count"');
  if (count > nz) {
    throw new RangeError(`cannot take ${count} distinct slices from a volume with ${nz} slices`);
  }
  if (count === 1) return [Math.round((nz - 1) / 2)];
  // The step (nz − 1)/(count − 1) is ≥ 1, so rounded indices stay distinct and sorted.
  return Array.from({ length: count }, (_, i) => Math.round((i * (nz - 1)) / (count - 1)));
}

/**
 * The slice-position conditioning value of axial slice z in a volume of nz slices:
 * z / (nz − 1) − 0.5, i.e. −0.5 at the first slice and +0.5 at the last (0 when nz = 1).
 *
 * It depends only on (z, nz), never on which other slices were chosen, so training on random slices
 * and inference on every 8th slice see the same value for the same anatomy. With `'all'` or `{count}`
 * it equals the paper's linspace(−0.5, 0.5, N); with every 8th of 256 it runs −0.5 … +0.4725
 * instead of the paper's linspace(−0.5, 0.5, 32) (the paper's value depends on the selection).
 */
export function slicePosition(z: number, nz: number): number {
  return nz > 1 ? z / (nz - 1) - 0.5 : 0;
}

/** Copy the axial slices z = zs[i] of a volume into a stack (H = ny rows, W = nx columns). */
export function extractAxialSlices(volume: Pick<Volume, 'data' | 'shape'>, zs: readonly number[]): SliceStack {
  const [nx, ny, nz] = volume.shape;
  if (zs.length === 0) throw new RangeError('no slices requested');
  const plane = nx * ny;
  const data = new Float32Array(zs.length * plane);
  const positions = new Float32Array(zs.length);
  zs.forEach((z, i) => {
    if (!Number.isInteger(z) || z < 0 || z >= nz) {
      throw new RangeError(`slice index ${z} is outside 0…${nz - 1}`);
    }
    if (i > 0 && z <= zs[i - 1]) {
      throw new RangeError(`slice indices must be strictly increasing, got ${zs[i - 1]} then ${z}`);
    }
    data.set(volume.data.subarray(z * plane, (z + 1) * plane), i * plane);
    positions[i] = slicePosition(z, nz);
  });
  return { data, count: zs.length, height: ny, width: nx, positions, zs: [...zs] };
}

/** The stack viewed as a volume grid [nx = W, ny = H, nz = N], e.g. for 3-D pooling. */
export function stackShape(stack: Pick<SliceStack, 'count' | 'height' | 'width'>): Shape3 {
  return [stack.width, stack.height, stack.count];
}

/** Same slices (positions, zs), new pixel values and in-plane size. */
export function withSliceData(like: SliceStack, data: Float32Array, height = like.height, width = like.width): SliceStack {
  if (data.length !== like.count * height * width) {
    throw new RangeError(
      `slice data has ${data.length} values, ${like.count} slices of ${height}×${width} need ${like.count * height * width}`,
    );
  }
  return { data, count: like.count, height, width, positions: like.positions, zs: like.zs };
}
