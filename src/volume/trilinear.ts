import { type Affine, type Shape3, type Volume, makeVolume, voxelCount } from './volume.js';
import { halfPixelTaps } from './resize.js';

/**
 * What a sample outside the grid sees:
 * - 'clamp': the coordinate is clamped to [0, n − 1] per axis (edge voxels extend outwards);
 * - 'zero': voxels outside the grid are 0, so values fade to 0 over the last voxel and are 0 at ≥ 1
 *   voxel outside (like grid_sample's padding_mode = 'zeros').
 */
export type OutsideMode = 'clamp' | 'zero';

/**
 * Trilinear interpolation of data (x fastest) at voxel coordinates (x, y, z); voxel centres sit at
 * integer coordinates. Coordinates must be finite.
 */
export function sampleTrilinear(
  data: Float32Array,
  shape: Shape3,
  x: number,
  y: number,
  z: number,
  outside: OutsideMode = 'clamp',
): number {
  return outside === 'clamp' ? sampleClamped(data, shape, x, y, z) : sampleZeroPadded(data, shape, x, y, z);
}

function sampleClamped(data: Float32Array, shape: Shape3, x: number, y: number, z: number): number {
  const [nx, ny, nz] = shape;
  x = x < 0 ? 0 : x > nx - 1 ? nx - 1 : x;
  y = y < 0 ? 0 : y > ny - 1 ? ny - 1 : y;
  z = z < 0 ? 0 : z > nz - 1 ? nz - 1 : z;
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const z0 = Math.floor(z);
  const fx = x - x0;
  const fy = y - y0;
  const fz = z - z0;
  const dx = x0 < nx - 1 ? 1 : 0;
  const dy = y0 < ny - 1 ? nx : 0;
  const dz = z0 < nz - 1 ? nx * ny : 0;
  const i = x0 + nx * (y0 + ny * z0);
  const c00 = data[i] * (1 - fx) + data[i + dx] * fx;
  const c10 = data[i + dy] * (1 - fx) + data[i + dy + dx] * fx;
  const c01 = data[i + dz] * (1 - fx) + data[i + dz + dx] * fx;
  const c11 = data[i + dz + dy] * (1 - fx) + data[i + dz + dy + dx] * fx;
  return (c00 * (1 - fy) + c10 * fy) * (1 - fz) + (c01 * (1 - fy) + c11 * fy) * fz;
}

function sampleZeroPadded(data: Float32Array, shape: Shape3, x: number, y: number, z: number): number {
  const [nx, ny, nz] = shape;
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const z0 = Math.floor(z);
  if (x0 < -1 || y0 < -1 || z0 < -1 || x0 >= nx || y0 >= ny || z0 >= nz) return 0;
  const fx = x - x0;
  const fy = y - y0;
  const fz = z - z0;
  let sum = 0;
  for (let cz = 0; cz < 2; cz++) {
    const zi = z0 + cz;
    if (zi < 0 || zi >= nz) continue;
    const wz = cz === 0 ? 1 - fz : fz;
    for (let cy = 0; cy < 2; cy++) {
      const yi = y0 + cy;
      if (yi < 0 || yi >= ny) continue;
      const wzy = wz * (cy === 0 ? 1 - fy : fy);
      const row = nx * (yi + ny * zi);
      if (x0 >= 0) sum += wzy * (1 - fx) * data[row + x0];
      if (x0 + 1 < nx) sum += wzy * fx * data[row + x0 + 1];
    }
  }
  return sum;
}

/**
 * Sample at many points; `coordinates` holds x, y, z interleaved (length 3·M). Returns M values.
 */
export function sampleTrilinearPoints(
  data: Float32Array,
  shape: Shape3,
  coordinates: Float32Array | Float64Array,
  outside: OutsideMode = 'clamp',
): Float32Array {
  if (coordinates.length % 3 !== 0) {
    throw new RangeError(`coordinates must hold x, y, z triples, got ${coordinates.length} numbers`);
  }
  const out = new Float32Array(coordinates.length / 3);
  const sample = outside === 'clamp' ? sampleClamped : sampleZeroPadded;
  for (let m = 0; m < out.length; m++) {
    out[m] = sample(data, shape, coordinates[3 * m], coordinates[3 * m + 1], coordinates[3 * m + 2]);
  }
  return out;
}

/**
 * Resize a volume's data to `newShape` by trilinear interpolation with half-pixel centres
 * (align-corners = false, per axis the same taps as resize.ts: source = (o + 0.5)·n_in/n_out − 0.5,
 * clamped to the grid). Same shape gives an exact copy.
 */
export function resampleData(data: Float32Array, shape: Shape3, newShape: Shape3): Float32Array {
  const [nx, ny] = shape;
  const [ox, oy, oz] = newShape;
  if (data.length !== voxelCount(shape)) {
    throw new RangeError(`volume data has ${data.length} voxels, shape ${shape.join('×')} needs ${voxelCount(shape)}`);
  }
  const tx = halfPixelTaps(shape[0], ox);
  const ty = halfPixelTaps(shape[1], oy);
  const tz = halfPixelTaps(shape[2], oz);
  const { lo: xLo, hi: xHi, weightHi: xWeight } = tx;
  const out = new Float32Array(voxelCount(newShape));
  let o = 0;
  for (let k = 0; k < oz; k++) {
    const z0 = tz.lo[k] * ny;
    const z1 = tz.hi[k] * ny;
    const wz = tz.weightHi[k];
    for (let j = 0; j < oy; j++) {
      const y0 = ty.lo[j];
      const y1 = ty.hi[j];
      const wy = ty.weightHi[j];
      const r00 = (y0 + z0) * nx;
      const r10 = (y1 + z0) * nx;
      const r01 = (y0 + z1) * nx;
      const r11 = (y1 + z1) * nx;
      const w00 = (1 - wy) * (1 - wz);
      const w10 = wy * (1 - wz);
      const w01 = (1 - wy) * wz;
      const w11 = wy * wz;
      for (let i = 0; i < ox; i++, o++) {
        const a = xLo[i];
        const b = xHi[i];
        const wx = xWeight[i];
        const c00 = data[r00 + a] * (1 - wx) + data[r00 + b] * wx;
        const c10 = data[r10 + a] * (1 - wx) + data[r10 + b] * wx;
        const c01 = data[r01 + a] * (1 - wx) + data[r01 + b] * wx;
        const c11 = data[r11 + a] * (1 - wx) + data[r11 + b] * wx;
        out[o] = c00 * w00 + c10 * w10 + c01 * w01 + c11 * w11;
      }
    }
  }
  return out;
}

/**
 * Resample a volume onto a grid of `newShape` covering the same field of view (align-corners = false:
 * the outer voxel faces stay put). Spacing becomes spacing·n_in/n_out and the affine is updated so that
 * every new voxel keeps its world position: old index = s·new index + (s − 1)/2 with s = n_in/n_out.
 */
export function resampleVolume(volume: Volume, newShape: Shape3): Volume {
  const scale = [0, 1, 2].map((a) => volume.shape[a] / newShape[a]);
  const spacing: [number, number, number] = [
    volume.spacing[0] * scale[0],
    volume.spacing[1] * scale[1],
    volume.spacing[2] * scale[2],
  ];
  const moveRow = (row: Affine[number]): Affine[number] => [
    row[0] * scale[0],
    row[1] * scale[1],
    row[2] * scale[2],
    row[3] + (row[0] * (scale[0] - 1) + row[1] * (scale[1] - 1) + row[2] * (scale[2] - 1)) / 2,
  ];
  const [a0, a1, a2, a3] = volume.affine;
  // The bottom row [0, 0, 0, 1] maps to itself.
  const affine: Affine = [moveRow(a0), moveRow(a1), moveRow(a2), moveRow(a3)];
  return makeVolume(newShape, resampleData(volume.data, volume.shape, newShape), spacing, affine);
}
