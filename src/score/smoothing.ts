/**
 * Smoothing of anomaly maps computed on a stack of axial slices, with kernels given as physical
 * extents: in-plane in pixels of the stack (the network's grid), along z in VOXELS of the volume.
 * The stack holds every `stride`-th slice, so a z-extent of Z voxels (reach ±(Z − 1)/2) becomes the
 * largest odd number of slices that stays within that reach: 1 + 2·⌊((Z − 1)/2) / stride⌋.
 * The paper's min-pool 3³ then average-pool 7×7×3 on an every-8th stack reaches z ± 8, i.e. 17 voxels.
 */
import { avgPool3d, minPool3d, type Kernel3 } from '../volume/pool3d.js';
import type { Shape3 } from '../volume/volume.js';

/** [x, y] in stack pixels, z in volume voxels; all odd positive integers. */
export type VoxelKernel = readonly [x: number, y: number, zVoxels: number];

export interface VoxelSmoothing {
  readonly min: VoxelKernel;
  readonly avg: VoxelKernel;
}

/** The paper's kernels as they act on its every-8th brain stack (z ± 8 voxels). */
export const PAPER_VOXEL_SMOOTHING: VoxelSmoothing = Object.freeze({ min: [3, 3, 17] as const, avg: [7, 7, 17] as const });

export function isVoxelKernel(x: unknown): x is VoxelKernel {
  return Array.isArray(x) && x.length === 3 && x.every((k) => Number.isInteger(k) && k >= 1 && k % 2 === 1);
}

/** Parses "X,Y,Z" (odd positive integers). */
export function parseVoxelKernel(text: string): VoxelKernel {
  const parts = text.split(/[,x×]/).map((s) => Number(s.trim()));
  if (!isVoxelKernel(parts)) throw new RangeError(`a kernel is three odd positive integers "X,Y,Z" (z in voxels), got "${text}"`);
  return parts as unknown as VoxelKernel;
}

/** Slices of a stack with `stride` spanned by a z-extent of `zVoxels`. */
export function slicesForExtent(zVoxels: number, stride: number): number {
  if (!(stride >= 1)) throw new RangeError(`stride must be ≥ 1, got ${stride}`);
  return 1 + 2 * Math.floor((zVoxels - 1) / 2 / stride);
}

export function stackKernel(kernel: VoxelKernel, stride: number): Kernel3 {
  return [kernel[0], kernel[1], slicesForExtent(kernel[2], stride)];
}

/** Min-pool then average-pool of a score stack (count × H × W, seen as [W, H, count]) taken every `stride` slices. */
export function smoothStack(scores: Float32Array, count: number, height: number, width: number, smoothing: VoxelSmoothing, stride: number): Float32Array {
  const shape: Shape3 = [width, height, count];
  return avgPool3d(minPool3d(scores, shape, stackKernel(smoothing.min, stride)), shape, stackKernel(smoothing.avg, stride));
}

/** The z-stride of a stack from its slice indices: the mean spacing (1 for a single slice). */
export function stackStride(zs: readonly number[]): number {
  if (zs.length < 2) return 1;
  return (zs[zs.length - 1]! - zs[0]!) / (zs.length - 1);
}

/** The stack kernels of `smoothing` for a stack with slice indices `zs`. */
export function stackKernels(smoothing: VoxelSmoothing, zs: readonly number[]): { readonly min: Kernel3; readonly avg: Kernel3 } {
  const stride = stackStride(zs);
  return { min: stackKernel(smoothing.min, stride), avg: stackKernel(smoothing.avg, stride) };
}
