/**
 * From restorations to DISYRE's scores, as pure functions over typed arrays:
 * - `levelBatch`: the network's inputs for one level t (every slice of the stack, t repeated);
 * - `restorationMaps`: mean over the levels of |x − x̂| per pixel of the stack, and of the segmentation
 *   head's probabilities when the network has one;
 * - `disyreStackMap`: the chosen map (`map`: the residual, the segmentation, or their mean or maximum)
 *   → each part min-pooled then average-pooled (kernels with z in voxels, src/score/smoothing.ts) →
 *   clipped to [0, 1] → the residual standardised by the normal residual reference when one is given
 *   (./reference.ts) → combined → zero outside the hole-filled body mask (src/volume/body-mask.ts,
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
import { referenceOnStack, standardisedMap, type ResidualReference } from '../../score/place-reference.js';

/** One network pass over `count` slices at level t: x̂ (count × S × S) and the segmentation head's probabilities (null without the head). */
export interface Restoration {
  readonly xhat: Float32Array;
  readonly segmentation: Float32Array | null;
}

export type Restorer = (images: Float32Array, positions: Float32Array, level: number) => Promise<Restoration>;

export interface RestorationMaps {
  /** Mean over the levels of |x − x̂_t|. */
  readonly residual: Float32Array;
  /** Mean over the levels of the segmentation probabilities (null without the head). */
  readonly segmentation: Float32Array | null;
}

/** Mean over `levels` of |x − x̂_t| (and of the segmentation head's output) per pixel of a stack. */
export async function restorationMaps(stack: Pick<SliceStack, 'data' | 'positions'>, levels: readonly number[], restore: Restorer): Promise<RestorationMaps> {
  if (levels.length === 0) throw new RangeError('restorationMaps: no levels');
  const residual = new Float32Array(stack.data.length);
  let segmentation: Float32Array | null = null;
  for (const t of levels) {
    const { xhat, segmentation: seg } = await restore(stack.data, stack.positions, t);
    if (xhat.length !== stack.data.length) throw new RangeError(`restoration has ${xhat.length} values, the stack ${stack.data.length}`);
    for (let i = 0; i < residual.length; i++) residual[i] += Math.abs(stack.data[i]! - xhat[i]!);
    if (seg !== null) {
      segmentation ??= new Float32Array(stack.data.length);
      for (let i = 0; i < segmentation.length; i++) segmentation[i] += seg[i]!;
    }
  }
  const k = 1 / levels.length;
  for (let i = 0; i < residual.length; i++) residual[i] *= k;
  if (segmentation !== null) for (let i = 0; i < segmentation.length; i++) segmentation[i] *= k;
  return { residual, segmentation };
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
  maps: RestorationMaps,
  stack: Pick<SliceStack, 'data' | 'count' | 'height' | 'width' | 'zs' | 'positions'>,
  scoring: Pick<DisyreScoring, 'min' | 'avg' | 'mask' | 'reference' | 'referenceFloor' | 'zScale' | 'map'>,
  reference: ResidualReference | null = null,
): DisyreVolumeMap {
  const { residual, segmentation } = maps;
  const kind = scoring.map;
  if (kind !== 'residual' && segmentation === null) throw new RangeError(`map=${kind} needs a network with the segmentation head`);
  const smoothed = (m: Float32Array): Float32Array => {
    const out = smoothStack(m, stack.count, stack.height, stack.width, { min: scoring.min, avg: scoring.avg }, stackStride(stack.zs));
    for (let i = 0; i < out.length; i++) out[i] = Math.min(1, Math.max(0, out[i]!));
    return out;
  };
  let stackMap: Float32Array;
  let fromResidual: Float32Array | null = null;
  if (kind !== 'segmentation') {
    fromResidual = smoothed(residual);
    if (reference !== null && scoring.reference) {
      const at = referenceOnStack(reference, stack);
      fromResidual = standardisedMap(fromResidual, at.mean, at.sd, scoring.referenceFloor, scoring.zScale);
    }
  }
  if (kind === 'residual') {
    stackMap = fromResidual!;
  } else {
    stackMap = smoothed(segmentation!);
    if (fromResidual !== null) {
      for (let i = 0; i < stackMap.length; i++) stackMap[i] = kind === 'max' ? Math.max(stackMap[i]!, fromResidual[i]!) : 0.5 * (stackMap[i]! + fromResidual[i]!);
    }
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
