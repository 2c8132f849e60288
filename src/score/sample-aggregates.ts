/**
 * Sample scores that aggregate a per-position score spatially, for compact anomalies. Summing every
 * NLL above λs over the volume lets the scattered unlikely codes of a normal volume outweigh one compact
 * anomaly; these aggregates look for the most anomalous neighbourhood instead.
 *
 * - `localMaxExcess`: the maximum over positions of a box mean of (value − reference), where the
 *   reference is the value's mean at that position on held-out normal volumes (or one number);
 * - `topFractionMean`: the mean of the largest `fraction` of a map's values (inside a mask).
 */
import { avgPool3d, type Kernel3 } from '../volume/pool3d.js';
import type { Shape3 } from '../volume/volume.js';

/** 1 for each code of a slice stack whose image patch holds any foreground pixel (≠ `background`). */
export function foregroundCodes(images: Float32Array, count: number, size: number, codeSide: number, background: number): Uint8Array {
  if (images.length !== count * size * size) throw new RangeError(`foregroundCodes: ${images.length} values for ${count} slices of ${size}×${size}`);
  const cells = codeSide * codeSide;
  const out = new Uint8Array(count * cells);
  for (let n = 0; n < count; n++) {
    const base = n * size * size;
    for (let y = 0; y < size; y++) {
      const cy = Math.min(codeSide - 1, Math.floor((y * codeSide) / size));
      for (let x = 0; x < size; x++) {
        if (images[base + y * size + x] !== background) out[n * cells + cy * codeSide + Math.min(codeSide - 1, Math.floor((x * codeSide) / size))] = 1;
      }
    }
  }
  return out;
}

/**
 * 1 for each code whose whole image patch is foreground (no pixel equal to `background`): the interior
 * of the body. Codes on its boundary carry the largest NLLs of normal volumes (misregistration, partial
 * volume), and so drown a local anomaly's signal in the sample aggregates.
 */
export function interiorCodes(images: Float32Array, count: number, size: number, codeSide: number, background: number): Uint8Array {
  if (images.length !== count * size * size) throw new RangeError(`interiorCodes: ${images.length} values for ${count} slices of ${size}×${size}`);
  const cells = codeSide * codeSide;
  const out = new Uint8Array(count * cells).fill(1);
  for (let n = 0; n < count; n++) {
    const base = n * size * size;
    for (let y = 0; y < size; y++) {
      const cy = Math.min(codeSide - 1, Math.floor((y * codeSide) / size));
      for (let x = 0; x < size; x++) {
        if (images[base + y * size + x] === background) out[n * cells + cy * codeSide + Math.min(codeSide - 1, Math.floor((x * codeSide) / size))] = 0;
      }
    }
  }
  return out;
}

/**
 * `localMaxExcess` over the interior codes only: every other code's excess counts as 0, so a box on
 * the boundary is scored by the interior codes it holds.
 */
export function interiorLocalMaxExcess(values: Float32Array, shape: Shape3, reference: Float32Array | number, interior: Uint8Array, box: Kernel3 = [3, 3, 3]): number {
  if (interior.length !== values.length) throw new RangeError(`interiorLocalMaxExcess: ${values.length} values, ${interior.length} flags`);
  const masked = Float32Array.from(values, (v, i) => (interior[i] === 1 ? v : typeof reference === 'number' ? reference : reference[i]!));
  return localMaxExcess(masked, shape, reference, box);
}

/** Values where `keep` is 1 (all of them without `keep`). */
export function selected(values: Float32Array, keep?: Uint8Array): Float32Array {
  if (keep === undefined) return values;
  if (keep.length !== values.length) throw new RangeError(`selected: ${values.length} values, ${keep.length} flags`);
  let n = 0;
  for (let i = 0; i < keep.length; i++) if (keep[i] === 1) n++;
  const out = new Float32Array(n);
  let at = 0;
  for (let i = 0; i < values.length; i++) if (keep[i] === 1) out[at++] = values[i]!;
  return out;
}

/** Max over positions of the `box` mean of (values − reference); `shape` is [w, h, count]. */
export function localMaxExcess(values: Float32Array, shape: Shape3, reference: Float32Array | number, box: Kernel3 = [3, 3, 3]): number {
  if (typeof reference !== 'number' && reference.length !== values.length) {
    throw new RangeError(`localMaxExcess: ${values.length} values, ${reference.length} reference values (the reference was fitted on another slice layout)`);
  }
  const excess = Float32Array.from(values, (v, i) => v - (typeof reference === 'number' ? reference : reference[i]!));
  const pooled = avgPool3d(excess, shape, box);
  let max = -Infinity;
  for (const v of pooled) if (v > max) max = v;
  return max;
}

/** Mean of the largest ⌈fraction · n⌉ values of `map` (n: the voxels inside `mask`, or all). */
export function topFractionMean(map: Float32Array, fraction: number, mask?: Uint8Array): number {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`fraction must be in (0, 1], got ${fraction}`);
  const values = selected(map, mask);
  if (values.length === 0) return 0;
  return meanOfLargest(values, Math.max(1, Math.ceil(values.length * fraction)));
}

/**
 * Mean of the k largest values without sorting everything: a histogram pass finds the value range
 * holding the top k, and only that range is sorted.
 */
export function meanOfLargest(values: Float32Array, k: number): number {
  if (k <= 0 || values.length === 0) throw new RangeError('need k ≥ 1 and a non-empty array');
  k = Math.min(k, values.length);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (hi === lo) return hi;
  const bins = 4096;
  const counts = new Uint32Array(bins);
  const scale = (bins - 1) / (hi - lo);
  for (const v of values) counts[Math.floor((v - lo) * scale)]!++;
  let above = 0;
  let bin = bins - 1;
  while (bin > 0 && above + counts[bin]! < k) above += counts[bin--]!;
  const candidates: number[] = [];
  for (const v of values) if (Math.floor((v - lo) * scale) >= bin) candidates.push(v);
  candidates.sort((a, b) => b - a);
  let sum = 0;
  for (let i = 0; i < k; i++) sum += candidates[i]!;
  return sum / k;
}

/** The box of the `interior` sample aggregate, in codes [x, y, slices] (docs/quality.md: 5×5×3 was best of 1–5). */
export const INTERIOR_BOX: Kernel3 = [5, 5, 3];

/** What `interiorReferenceExcess` needs of the encoded stack and the code grid. */
export interface CodeStack {
  /** Normalised slices [count, size, size] at the encoder's input size, and their positions. */
  readonly images: Float32Array;
  readonly size: number;
  readonly positions: Float32Array;
  /** Code grid side (the prior's latent width = height). */
  readonly codeSide: number;
  /** Normalised intensity of the background. */
  readonly background: number;
}

/**
 * The `interior` sample aggregate: the maximum over positions of the `box` mean of (NLL − the mean NLL
 * that normal volumes have at that place), over the codes whose patch is all body. `meanAtCodes` is the
 * reference's mean on this stack's code grid (`referenceOnStack`). Places where every normal volume
 * holds unlikely codes no longer outrank a compact anomaly elsewhere.
 */
export function interiorReferenceExcess(nll: Float32Array, codes: CodeStack, meanAtCodes: Float32Array, box: Kernel3 = INTERIOR_BOX): number {
  const count = codes.positions.length;
  if (nll.length !== count * codes.codeSide * codes.codeSide) throw new RangeError(`interiorReferenceExcess: ${nll.length} NLLs for ${count} slices of ${codes.codeSide}² codes`);
  const interior = interiorCodes(codes.images, count, codes.size, codes.codeSide, codes.background);
  return interiorLocalMaxExcess(nll, [codes.codeSide, codes.codeSide, count], meanAtCodes, interior, box);
}
