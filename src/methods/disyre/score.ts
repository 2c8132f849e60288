/**
 * From restorations to DISYRE's scores, as pure functions over typed arrays:
 * - `levelBatch`: the network's inputs for one level t (every slice of the stack, t repeated);
 * - `meanAbsResidual`: mean over the levels of |x − x̂| per pixel of the stack;
 * - `disyreStackMap`: that stack map → min-pool then average-pool (kernels with z in voxels,
 *   src/score/smoothing.ts) → clipped to [0, 1] → standardised by the normal residual reference when
 *   one is given (./reference.ts) → zero outside the hole-filled body mask (src/volume/body-mask.ts,
 *   computed on the stack) when asked;
 * - `disyreVolumePixels`: back onto the volume grid (src/volume/resample.ts, slices on their own z,
 *   linear between them), masked;
 * - `disyreRawSampleScore`: the mean of the top `fraction` of the stack map inside the mask
 *   (src/score/sample-aggregates.ts topFractionMean), before the calibration.
 */
import { topFractionMean } from '../../score/sample-aggregates.js';
import { smoothStack, stackStride } from '../../score/smoothing.js';
import { applyMask, bodyMask } from '../../volume/body-mask.js';
import { stackToVolume } from '../../volume/resample.js';
import { stackShape, type SliceStack } from '../../volume/slices.js';
import type { Shape3 } from '../../volume/volume.js';
import type { DisyreScoring } from './settings.js';
import { referenceOnStack, standardisedMap, type ResidualReference } from './reference.js';

/** Restores `count` slices at level t: x̂ of the same layout (count × S × S). */
export type Restorer = (images: Float32Array, positions: Float32Array, level: number) => Promise<Float32Array>;

/** Mean over `levels` of |x − x̂_t| per pixel of a stack. */
export async function meanAbsResidual(stack: Pick<SliceStack, 'data' | 'positions'>, levels: readonly number[], restore: Restorer): Promise<Float32Array> {
  if (levels.length === 0) throw new RangeError('meanAbsResidual: no levels');
  const out = new Float32Array(stack.data.length);
  for (const t of levels) {
    const xhat = await restore(stack.data, stack.positions, t);
    if (xhat.length !== stack.data.length) throw new RangeError(`restoration has ${xhat.length} values, the stack ${stack.data.length}`);
    for (let i = 0; i < out.length; i++) out[i] += Math.abs(stack.data[i]! - xhat[i]!);
  }
  const k = 1 / levels.length;
  for (let i = 0; i < out.length; i++) out[i] *= k;
  return out;
}

export interface DisyreVolumeMap {
  /** Smoothed map on the slice stack (count × S × S), in [0, 1], zero outside the stack's body mask. */
  readonly stackMap: Float32Array;
  /** The body mask on the stack (all ones when masking is off). */
  readonly stackMask: Uint8Array;
}

/**
 * The stack's residual map → min-pool then average-pool → [0, 1] → zero outside the body mask. The
 * mask is src/volume/body-mask.ts's on the stack itself (its slices' intensities, margin 1 pixel of
 * the network's grid ≈ 2 voxels of a 256² slice), 10–20× fewer voxels than the volume.
 */
export function disyreStackMap(
  residual: Float32Array,
  stack: Pick<SliceStack, 'data' | 'count' | 'height' | 'width' | 'zs' | 'positions'>,
  scoring: Pick<DisyreScoring, 'min' | 'avg' | 'mask' | 'reference' | 'referenceFloor' | 'zScale'>,
  reference: ResidualReference | null = null,
): DisyreVolumeMap {
  let stackMap = smoothStack(residual, stack.count, stack.height, stack.width, { min: scoring.min, avg: scoring.avg }, stackStride(stack.zs));
  for (let i = 0; i < stackMap.length; i++) stackMap[i] = Math.min(1, Math.max(0, stackMap[i]!));
  if (reference !== null && scoring.reference) {
    const at = referenceOnStack(reference, stack);
    stackMap = standardisedMap(stackMap, at.mean, at.sd, scoring.referenceFloor, scoring.zScale);
  }
  const stackMask = scoring.mask ? bodyMask(stack.data, stackShape(stack), { threshold: 0, margin: 1 }) : new Uint8Array(stackMap.length).fill(1);
  if (scoring.mask) applyMask(stackMap, stackMask);
  return { stackMap, stackMask };
}

/** The pixel map on the volume grid: the stack map resampled (src/volume/resample.ts), zero where the resampled mask is below ½. */
export function disyreVolumePixels(map: DisyreVolumeMap, stack: Pick<SliceStack, 'count' | 'height' | 'width' | 'zs'>, shape: Shape3): Float32Array {
  const out = stackToVolume({ ...stack, data: map.stackMap }, shape);
  if (map.stackMask.every((m) => m === 1)) return out;
  const mask = stackToVolume({ ...stack, data: Float32Array.from(map.stackMask) }, shape);
  for (let i = 0; i < out.length; i++) if (mask[i]! < 0.5) out[i] = 0;
  return out;
}

/** Mean of the top `fraction` of the stack map inside its mask (the volume map interpolates it). */
export function disyreRawSampleScore(map: DisyreVolumeMap, fraction: number): number {
  return topFractionMean(map.stackMap, fraction, map.stackMask);
}
