/**
 * Training batches as in the paper: B = volumesPerBatch × slicesPerVolume slices (8 × 8 = 64), i.e.
 * several random slices from each of several volumes, each slice augmented independently.
 *
 * Slice positions: each image carries the conditioning position stored in its stack
 * (slicePosition(z, nz) of the volume slice it came from), the same function inference uses, so a
 * training slice and an inference slice at the same z get the same position. Training stacks usually
 * hold more slices than the every-8th inference stack (see `trainingSliceSelection` in dataset.ts).
 */
import type { Rng } from '../engine/random.js';
import type { SliceStack } from '../volume/slices.js';
import { type AugmentOptions, augmentSliceInto } from './augment.js';

export interface Batch {
  /** count × height × width, W fastest. */
  readonly images: Float32Array;
  /** Conditioning position of each image. */
  readonly positions: Float32Array;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  /** Index of the stack each image came from. */
  readonly stackIndex: Int32Array;
  /** Index of the slice within that stack. */
  readonly sliceIndex: Int32Array;
}

export interface BatchOptions {
  /** Default 8. */
  readonly volumesPerBatch?: number;
  /** Default 8. */
  readonly slicesPerVolume?: number;
  readonly rng: Rng;
  readonly augment: AugmentOptions;
  /**
   * The stacks to draw from (e.g. one group of `epochVolumeGroups`); default: volumesPerBatch drawn at
   * random, distinct while there are enough stacks.
   */
  readonly volumes?: readonly number[];
}

export const DEFAULT_VOLUMES_PER_BATCH = 8;
export const DEFAULT_SLICES_PER_VOLUME = 8;

/**
 * `k` indices from 0 … n−1: distinct when k ≤ n (partial Fisher–Yates), otherwise whole shuffles
 * back to back so every index is used as evenly as possible.
 */
export function pickIndices(n: number, k: number, rng: Rng): number[] {
  if (n < 1) throw new RangeError('cannot pick from an empty set');
  const picked: number[] = [];
  while (picked.length < k) {
    const pool = Array.from({ length: n }, (_, i) => i);
    const take = Math.min(n, k - picked.length);
    for (let i = 0; i < take; i++) {
      const j = i + rng.int(n - i);
      [pool[i], pool[j]] = [pool[j], pool[i]];
      picked.push(pool[i]);
    }
  }
  return picked;
}

/**
 * One epoch: every volume once, in shuffled order, in groups of `volumesPerBatch`. A last, short group
 * is topped up with other volumes drawn at random so that every batch has the same size.
 */
export function epochVolumeGroups(volumeCount: number, volumesPerBatch: number, rng: Rng): number[][] {
  assertPositiveInteger(volumesPerBatch, 'volumesPerBatch');
  const order = pickIndices(volumeCount, volumeCount, rng);
  const groups: number[][] = [];
  for (let start = 0; start < order.length; start += volumesPerBatch) {
    const group = order.slice(start, start + volumesPerBatch);
    if (group.length < volumesPerBatch) {
      const others = order.filter((v) => !group.includes(v));
      const extra = others.length > 0 ? pickIndices(others.length, volumesPerBatch - group.length, rng) : [];
      group.push(...extra.map((i) => others[i]));
      while (group.length < volumesPerBatch) group.push(group[rng.int(group.length)]);
    }
    groups.push(group);
  }
  return groups;
}

export function sampleBatch(stacks: readonly SliceStack[], options: BatchOptions): Batch {
  if (stacks.length === 0) throw new RangeError('no slice stacks to sample a batch from');
  const slicesPerVolume = options.slicesPerVolume ?? DEFAULT_SLICES_PER_VOLUME;
  assertPositiveInteger(slicesPerVolume, 'slicesPerVolume');
  const { rng } = options;
  const volumes =
    options.volumes ?? pickIndices(stacks.length, options.volumesPerBatch ?? DEFAULT_VOLUMES_PER_BATCH, rng);
  if (volumes.length === 0) throw new RangeError('a batch needs at least one volume');
  const { height, width } = stacks[volumes[0]] ?? stacks[0];
  const plane = height * width;
  const count = volumes.length * slicesPerVolume;
  const images = new Float32Array(count * plane);
  const positions = new Float32Array(count);
  const stackIndex = new Int32Array(count);
  const sliceIndex = new Int32Array(count);
  let b = 0;
  for (const v of volumes) {
    const stack = stacks[v];
    if (!stack) throw new RangeError(`volume index ${v} is outside 0…${stacks.length - 1}`);
    if (stack.height !== height || stack.width !== width) {
      throw new RangeError(`slice stacks differ in size: ${stack.height}×${stack.width} vs ${height}×${width}`);
    }
    for (const s of pickIndices(stack.count, slicesPerVolume, rng)) {
      const source = stack.data.subarray(s * plane, (s + 1) * plane);
      augmentSliceInto(source, height, width, rng, options.augment, images.subarray(b * plane, (b + 1) * plane));
      positions[b] = stack.positions[s];
      stackIndex[b] = v;
      sliceIndex[b] = s;
      b++;
    }
  }
  return { images, positions, count, height, width, stackIndex, sliceIndex };
}

function assertPositiveInteger(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${what} must be a positive integer, got ${value}`);
}
