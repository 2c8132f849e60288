import { type Shape3, voxelCount } from './volume.js';
import type { SliceStack } from './slices.js';
import { halfPixelTaps, resizePlaneInto } from './resize.js';

/**
 * Map a stack of per-slice maps (N × H × W, any in-plane size, slice i taken at volume z = zs[i])
 * back onto the volume grid [nx, ny, nz]:
 * 1. each slice is resized in-plane (bilinear, half-pixel centres, see resize.ts) to ny rows × nx columns
 *    and written straight into output plane z = zs[i], so a slice lands exactly on the z it came from;
 * 2. planes strictly between zs[i] and zs[i+1] are linear interpolations of those two planes,
 *    weight (z − zs[i]) / (zs[i+1] − zs[i]);
 * 3. planes below zs[0] copy plane zs[0], planes above zs[N−1] copy plane zs[N−1] (nearest slice held).
 * Memory: the output Float32Array (one volume) is the only large allocation; no per-slice full-size
 * copies and no float64 volume.
 */
export function stackToVolume(
  stack: Pick<SliceStack, 'data' | 'count' | 'height' | 'width' | 'zs'>,
  shape: Shape3,
): Float32Array {
  const [nx, ny, nz] = shape;
  const { count, height, width, zs } = stack;
  if (count < 1 || zs.length !== count) {
    throw new RangeError(`stack has ${count} slices but ${zs.length} z indices`);
  }
  if (stack.data.length !== count * height * width) {
    throw new RangeError(`stack data has ${stack.data.length} values, ${count}×${height}×${width} expected`);
  }
  zs.forEach((z, i) => {
    if (!Number.isInteger(z) || z < 0 || z >= nz) throw new RangeError(`slice z = ${z} is outside 0…${nz - 1}`);
    if (i > 0 && z <= zs[i - 1]) {
      throw new RangeError(`slice z indices must be strictly increasing, got ${zs[i - 1]} then ${z}`);
    }
  });

  const out = new Float32Array(voxelCount(shape));
  const plane = nx * ny;
  const rowTaps = halfPixelTaps(height, ny);
  const colTaps = halfPixelTaps(width, nx);
  const inPlane = height * width;
  for (let i = 0; i < count; i++) {
    const z = zs[i];
    resizePlaneInto(
      stack.data.subarray(i * inPlane, (i + 1) * inPlane),
      height,
      width,
      out.subarray(z * plane, (z + 1) * plane),
      ny,
      nx,
      rowTaps,
      colTaps,
    );
  }

  for (let i = 0; i + 1 < count; i++) {
    const z0 = zs[i];
    const z1 = zs[i + 1];
    const below = z0 * plane;
    const above = z1 * plane;
    for (let z = z0 + 1; z < z1; z++) {
      const t = (z - z0) / (z1 - z0);
      const dst = z * plane;
      for (let p = 0; p < plane; p++) out[dst + p] = out[below + p] * (1 - t) + out[above + p] * t;
    }
  }
  const first = out.subarray(zs[0] * plane, (zs[0] + 1) * plane);
  for (let z = 0; z < zs[0]; z++) out.set(first, z * plane);
  const lastZ = zs[count - 1];
  const last = out.subarray(lastZ * plane, (lastZ + 1) * plane);
  for (let z = lastZ + 1; z < nz; z++) out.set(last, z * plane);
  return out;
}
