/**
 * A hole-filled body mask of a volume, for masking anomaly maps: what is not empty space connected to
 * the volume's border. Voxels above `threshold` are tissue; the mask is the tissue grown by `margin`
 * voxels (a box dilation, so that maps keep a rim at the outline), plus every enclosed cavity. A dark
 * anomaly inside the body (a sphere shifted down to 0) is enclosed, so it stays in the mask.
 */
import { minPool3d } from './pool3d.js';
import { type Shape3, voxelCount } from './volume.js';

export interface BodyMaskOptions {
  /** Intensity above which a voxel is tissue (default 0: anything not exactly empty). */
  readonly threshold?: number;
  /** Dilation, in voxels along each axis (default 2). */
  readonly margin?: number;
}

/** 1 inside the body (tissue, its margin and enclosed holes), 0 in empty space reachable from the border. */
export function bodyMask(data: Float32Array, shape: Shape3, opts: BodyMaskOptions = {}): Uint8Array {
  const n = voxelCount(shape);
  if (data.length !== n) throw new RangeError(`bodyMask: ${data.length} values for shape ${shape.join('×')}`);
  const threshold = opts.threshold ?? 0;
  const margin = opts.margin ?? 2;
  if (!Number.isInteger(margin) || margin < 0) throw new RangeError(`bodyMask: margin must be a non-negative integer, got ${margin}`);
  // Dilation of the tissue = min-pool of the "empty" indicator.
  const empty = new Float32Array(n);
  for (let i = 0; i < n; i++) empty[i] = data[i]! > threshold ? 0 : 1;
  const k = 2 * margin + 1;
  const grownEmpty = margin > 0 ? minPool3d(empty, shape, [k, k, k]) : empty;
  // Flood the empty space from the border (6-connectivity); what it does not reach is body.
  const [nx, ny, nz] = shape;
  const outside = new Uint8Array(n);
  const queue = new Int32Array(n);
  let head = 0;
  let tail = 0;
  const push = (i: number): void => {
    if (outside[i] === 0 && grownEmpty[i] === 1) {
      outside[i] = 1;
      queue[tail++] = i;
    }
  };
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        if (x === 0 || y === 0 || z === 0 || x === nx - 1 || y === ny - 1 || z === nz - 1) push(x + nx * (y + ny * z));
        else if (y !== 0 && y !== ny - 1 && z !== 0 && z !== nz - 1) x = nx - 2; // jump to the last column
      }
    }
  }
  const plane = nx * ny;
  while (head < tail) {
    const i = queue[head++]!;
    const x = i % nx;
    const y = Math.floor(i / nx) % ny;
    const z = Math.floor(i / plane);
    if (x > 0) push(i - 1);
    if (x < nx - 1) push(i + 1);
    if (y > 0) push(i - nx);
    if (y < ny - 1) push(i + nx);
    if (z > 0) push(i - plane);
    if (z < nz - 1) push(i + plane);
  }
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = outside[i] === 1 ? 0 : 1;
  return mask;
}

/** Sets `map` to 0 outside `mask` (in place); returns `map`. */
export function applyMask(map: Float32Array, mask: Uint8Array): Float32Array {
  if (map.length !== mask.length) throw new RangeError(`applyMask: map of ${map.length} values, mask of ${mask.length}`);
  for (let i = 0; i < map.length; i++) if (mask[i] === 0) map[i] = 0;
  return map;
}
