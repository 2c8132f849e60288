/**
 * The fixed held-out batches of the image trainers (VQ-VAE, VAE, aggregate codebook): evenly spread,
 * unaugmented slices of each held-out volume. Engine-free, so that the GPU batch producer
 * (scripts/gpu/lsr-batches.ts) bundles it without a tensor library.
 */
import type { SliceStack } from '../volume/slices.js';
import type { ImageBatch } from './loop-worker.js';

/** Held-out slices per held-out volume, evenly spread, evaluated every epoch without augmentation. */
export const HOLDOUT_SLICES_PER_VOLUME = 8;

/** Up to `count` indices evenly spread over 0 … n − 1. */
export function evenIndices(n: number, count: number): number[] {
  if (count >= n) return Array.from({ length: n }, (_, i) => i);
  if (count === 1) return [Math.floor((n - 1) / 2)];
  return Array.from({ length: count }, (_, i) => Math.round((i * (n - 1)) / (count - 1)));
}

/** Fixed held-out batches: evenly spread slices of each held-out volume, unaugmented. */
export function holdoutImageBatches(stacks: readonly SliceStack[], perVolume: number, batch: number, background?: number): ImageBatch[] {
  const images: Float32Array[] = [];
  const positions: number[] = [];
  for (const stack of stacks) {
    const plane = stack.height * stack.width;
    for (const s of evenIndices(stack.count, perVolume)) {
      images.push(stack.data.subarray(s * plane, (s + 1) * plane));
      positions.push(stack.positions[s]!);
    }
  }
  const out: ImageBatch[] = [];
  const size = stacks[0]?.height ?? 0;
  for (let start = 0; start < images.length; start += batch) {
    const chunk = images.slice(start, start + batch);
    const data = new Float32Array(chunk.length * size * size);
    chunk.forEach((img, i) => data.set(img, i * size * size));
    out.push({ kind: 'images', images: data, positions: Float32Array.from(positions.slice(start, start + batch)), count: chunk.length, size, ...(background !== undefined ? { background } : {}) });
  }
  return out;
}
