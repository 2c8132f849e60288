import type { Shape3 } from '../../src/volume/volume.js';

/**
 * A smooth, low-frequency scalar field over a voxel grid: a coarse grid of control values
 * interpolated with uniform cubic B-splines (C² smooth, no ringing, no kinks at control points).
 *
 * The grid has `controls` points per axis; the outer ones lie one knot spacing outside the volume,
 * so the field is smooth right up to the border. Evaluation is separable and done row by row
 * (`fillRow`), so a 256³ field never has to be held in memory.
 */
export interface SmoothField {
  readonly shape: Shape3;
  /** Writes the field values along x for the row (y, z) into `out` (length ≥ nx). */
  fillRow(y: number, z: number, out: Float32Array): void;
}

interface AxisTaps {
  /** First of the 4 control indices for each voxel. */
  readonly first: Int32Array;
  /** 4 weights per voxel (sum 1). */
  readonly weights: Float64Array;
}

function cubicBSplineWeights(f: number, out: Float64Array, at: number): void {
  const g = 1 - f;
  out[at] = (g * g * g) / 6;
  out[at + 1] = (3 * f * f * f - 6 * f * f + 4) / 6;
  out[at + 2] = (-3 * f * f * f + 3 * f * f + 3 * f + 1) / 6;
  out[at + 3] = (f * f * f) / 6;
}

function axisTaps(size: number, controls: number): AxisTaps {
  const first = new Int32Array(size);
  const weights = new Float64Array(size * 4);
  const intervals = controls - 3;
  const knot = size > 1 ? (size - 1) / intervals : 1;
  for (let p = 0; p < size; p++) {
    let cell = Math.floor(p / knot);
    let f = p / knot - cell;
    if (cell >= intervals) {
      cell = intervals - 1;
      f = 1;
    }
    first[p] = cell;
    cubicBSplineWeights(f, weights, 4 * p);
  }
  return { first, weights };
}

/**
 * @param values control values, `controls³` of them, x fastest.
 * @param controls control points per axis (≥ 4).
 */
export function bsplineField(shape: Shape3, controls: number, values: Float64Array): SmoothField {
  if (!Number.isInteger(controls) || controls < 4) throw new RangeError(`need ≥ 4 control points per axis, got ${controls}`);
  if (values.length !== controls ** 3) throw new RangeError(`need ${controls ** 3} control values, got ${values.length}`);
  const [nx, ny, nz] = shape;
  const tx = axisTaps(nx, controls);
  const ty = axisTaps(ny, controls);
  const tz = axisTaps(nz, controls);
  const g = controls;
  // Cache of the control grid collapsed along z (g × g) and along z then y (g), reused while z / y repeat.
  const plane = new Float64Array(g * g);
  const line = new Float64Array(g);
  let planeZ = -1;
  let lineY = -1;

  return {
    shape,
    fillRow(y: number, z: number, out: Float32Array): void {
      if (z !== planeZ) {
        const kz = tz.first[z];
        plane.fill(0);
        for (let t = 0; t < 4; t++) {
          const w = tz.weights[4 * z + t];
          const base = (kz + t) * g * g;
          for (let i = 0; i < g * g; i++) plane[i] += w * values[base + i];
        }
        planeZ = z;
        lineY = -1;
      }
      if (y !== lineY) {
        const ky = ty.first[y];
        line.fill(0);
        for (let t = 0; t < 4; t++) {
          const w = ty.weights[4 * y + t];
          const base = (ky + t) * g;
          for (let i = 0; i < g; i++) line[i] += w * plane[base + i];
        }
        lineY = y;
      }
      const first = tx.first;
      const weights = tx.weights;
      for (let x = 0; x < nx; x++) {
        const k = first[x];
        const w = 4 * x;
        out[x] = weights[w] * line[k] + weights[w + 1] * line[k + 1] + weights[w + 2] * line[k + 2] + weights[w + 3] * line[k + 3];
      }
    },
  };
}
