/**
 * The DISYRE trainer's samples, kept free of any engine so that other producers (the GPU trainer's
 * batch processes, scripts/gpu/) draw exactly the same batches: the usable slices of a volume stack,
 * and batches of corrupted slices with their clean targets, soft masks, levels and positions.
 */
import { createRng, type Rng } from '../../engine/random.js';
import { InputFileError } from '../../errors.js';
import type { VolumeEntry } from '../../train/dataset.js';
import type { DisyreBatch } from './batch.js';
import { corruptSlice, type CorruptionOptions } from './corrupt.js';

/** Which slices the trainer sees: at most this many per volume (evenly spread), each with at least `minTissue` of its pixels above the tissue threshold. */
export const DISYRE_SLICE_RULES = Object.freeze({ slicesPerVolume: 128, minTissue: 0.05 });

/** Indices of the slices of a stack with at least `minTissue` of their pixels above `threshold`. */
export function usableSlices(entry: VolumeEntry, threshold: number, minTissue: number): number[] {
  const { stack } = entry;
  const plane = stack.height * stack.width;
  const out: number[] = [];
  for (let i = 0; i < stack.count; i++) {
    let n = 0;
    for (let p = i * plane; p < (i + 1) * plane; p++) if (stack.data[p]! > threshold) n++;
    if (n >= minTissue * plane) out.push(i);
  }
  return out;
}

export interface SliceSource {
  readonly entries: readonly VolumeEntry[];
  readonly usable: readonly (readonly number[])[];
}

export function sourceOf(entries: readonly VolumeEntry[], corruption: CorruptionOptions, minTissue: number): SliceSource {
  const usable = entries.map((e) => usableSlices(e, corruption.tissueThreshold, minTissue));
  const empty = entries.filter((_, i) => usable[i]!.length === 0).map((e) => e.file);
  if (empty.length === entries.length) throw new InputFileError(empty.join(', '), `no slice has ${minTissue * 100} % tissue`);
  return { entries: entries.filter((_, i) => usable[i]!.length > 0), usable: usable.filter((u) => u.length > 0) };
}

function sliceOf(entry: VolumeEntry, index: number, flip: boolean): Float32Array {
  const { stack } = entry;
  const plane = stack.height * stack.width;
  const src = stack.data.subarray(index * plane, (index + 1) * plane);
  if (!flip) return src.slice();
  const out = new Float32Array(plane);
  const w = stack.width;
  for (let y = 0; y < stack.height; y++) for (let x = 0; x < w; x++) out[y * w + x] = src[y * w + (w - 1 - x)]!;
  return out;
}

/** One batch of `count` corrupted samples drawn from `source` with `rng`. */
export function drawBatch(source: SliceSource, size: number, count: number, rng: Rng, corruption: CorruptionOptions): DisyreBatch {
  const plane = size * size;
  const images = new Float32Array(count * plane);
  const targets = new Float32Array(count * plane);
  const masks = new Float32Array(count * plane);
  const levels = new Float32Array(count);
  const positions = new Float32Array(count);
  const n = source.entries.length;
  for (let b = 0; b < count; b++) {
    const v = rng.int(n);
    const entry = source.entries[v]!;
    const s = source.usable[v]![rng.int(source.usable[v]!.length)]!;
    const clean = sliceOf(entry, s, rng.next() < 0.5);
    const dv = n > 1 ? (v + 1 + rng.int(n - 1)) % n : v;
    const donor = sliceOf(source.entries[dv]!, source.usable[dv]![rng.int(source.usable[dv]!.length)]!, false);
    const c = corruptSlice(clean, size, donor, createRng(rng.seed()), corruption);
    images.set(c.image, b * plane);
    targets.set(clean, b * plane);
    for (let p = 0; p < plane; p++) masks[b * plane + p] = c.mask[p]! * c.level;
    levels[b] = c.level;
    positions[b] = entry.stack.positions[s]!;
  }
  return { kind: 'images', images, targets, masks, levels, positions, count, size };
}

