/**
 * Residual maps relative to what the model gets wrong on normal anatomy. A network that reconstructs
 * a normal brain imperfectly leaves residuals at the same structures (edges, sulci, ventricles) in
 * every case; the mean residual of held-out normals at each stack pixel, dilated in-plane so that a
 * few voxels of misregistration do not matter, is the reference that a case's residual is compared
 * with: `subtract` keeps the excess over it, `divide` the ratio to it (plus a floor).
 */
import { minPool3d, type Kernel3 } from '../volume/pool3d.js';
import type { Shape3 } from '../volume/volume.js';

export type ResidualReferenceMode = 'subtract' | 'divide';

export const RESIDUAL_REFERENCE_MODES: readonly ResidualReferenceMode[] = Object.freeze(['subtract', 'divide']);

/** Maximum over the window (a min-pool of the negated values). */
export function maxPool3d(data: Float32Array, shape: Shape3, kernel: Kernel3): Float32Array {
  const negated = Float32Array.from(data, (v) => -v);
  const pooled = minPool3d(negated, shape, kernel);
  for (let i = 0; i < pooled.length; i++) pooled[i] = -pooled[i]!;
  return pooled;
}

/** Voxel-wise mean of equally shaped maps, then a max-pool with `dilate`. */
export function residualReference(maps: readonly Float32Array[], shape: Shape3, dilate: Kernel3): Float32Array {
  if (maps.length === 0) throw new RangeError('a residual reference needs at least one normal map');
  const n = maps[0]!.length;
  const sum = new Float64Array(n);
  for (const m of maps) {
    if (m.length !== n) throw new RangeError(`residual maps differ in size: ${m.length} vs ${n}`);
    for (let i = 0; i < n; i++) sum[i] += m[i]!;
  }
  const mean = Float32Array.from(sum, (s) => s / maps.length);
  return maxPool3d(mean, shape, dilate);
}

/** The residual relative to the reference: max(0, r − ref) or r / (ref + floor). */
export function relativeResidual(residual: Float32Array, reference: Float32Array, mode: ResidualReferenceMode, floor: number): Float32Array {
  if (residual.length !== reference.length) throw new RangeError(`residual has ${residual.length} values, reference ${reference.length}`);
  const out = new Float32Array(residual.length);
  if (mode === 'subtract') for (let i = 0; i < out.length; i++) out[i] = Math.max(0, residual[i]! - reference[i]!);
  else for (let i = 0; i < out.length; i++) out[i] = residual[i]! / (reference[i]! + floor);
  return out;
}
