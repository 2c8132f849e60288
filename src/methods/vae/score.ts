/**
 * Scores of the VAE baseline (Zimmerer et al., MICCAI 2019), per slice at model resolution, as plain
 * typed arrays (tensors live only inside tf.tidy).
 *
 * Every score uses z = μ and dropout off (the published evaluation runs the model in eval mode, where
 * z = μ), so scoring is deterministic.
 *
 * Sample terms per slice: KL and rec = Σ (x − x̂)² / (2σ²) (see src/methods/vae/vae.ts); ELBO = KL + rec
 * (the negative ELBO without its constant).
 *
 * Pixel maps (before the stack post-processing shared with LSR):
 *   rec       (x − x̂)² / (2σ²): the per-pixel Gaussian NLL less its constant (same ranks)
 *   elbograd  G(|∂(KL + rec)/∂x|)
 *   klgrad    G(|∂KL/∂x|)
 *   recgrad   G(|∂rec/∂x|)
 *   combi     G(minmax(|∂KL/∂x|)) · ((x − x̂)² / (2σ²) + log σ + ½ log 2π)
 * G: 2-D Gaussian smoothing of each slice, σ = 3 px, 7×7 kernel normalised to sum 1, zero padding
 * (the published smoothing: an even size 8 is reduced to 7). minmax: (v − min) / (max − min) over the
 * whole stack of the volume (the published code normalises over its evaluation batch). Combi
 * multiplies by the full per-pixel Gaussian NLL, constant included, as the published code does.
 * Input gradients are of the sum over the batch, so a slice's gradient does not depend on the batch
 * it was computed in (GroupNorm is per sample; nothing couples the slices).
 */
import * as tf from '@tensorflow/tfjs';
import { vaeTerms } from './vae.js';
import type { VaeConfig } from './config.js';
import type { ParamMap } from '../../models/params.js';

export interface VaeNetwork {
  readonly cfg: VaeConfig;
  readonly params: ParamMap;
}

export const VAE_PIXEL_MAPS = ['rec', 'elbograd', 'klgrad', 'recgrad', 'combi'] as const;
export type VaePixelMap = (typeof VAE_PIXEL_MAPS)[number];
export const VAE_SAMPLE_SCORES = ['elbo', 'kl', 'rec'] as const;
export type VaeSampleScore = (typeof VAE_SAMPLE_SCORES)[number];

/** The published smoothing of the gradient maps: σ = 3 px, 7 × 7. */
export const GRADIENT_SMOOTHING = { sigma: 3, size: 7 } as const;

function batches(count: number, size: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let start = 0; start < count; start += size) out.push([start, Math.min(count, start + size)]);
  return out;
}

function checkStack(net: VaeNetwork, images: Float32Array, positions: Float32Array): { size: number; plane: number; count: number } {
  const size = net.cfg.inputSize;
  const plane = size * size;
  const count = positions.length;
  if (images.length !== count * plane) throw new RangeError(`VAE scores: ${images.length} values for ${count} slices of ${size}×${size}`);
  return { size, plane, count };
}

function read(t: tf.Tensor): Float32Array {
  try {
    return Float32Array.from(t.dataSync() as Float32Array);
  } finally {
    t.dispose();
  }
}

export interface SliceTerms {
  /** KL per slice (nats). */
  readonly kl: Float32Array;
  /** Σ (x − x̂)² / (2σ²) per slice (nats, constant dropped). */
  readonly rec: Float32Array;
  /** Reconstructions x̂ (z = μ), count × S × S. */
  readonly xhat: Float32Array;
}

/** Forward pass (z = μ) of `count` normalised slices. */
export function vaeSliceTerms(net: VaeNetwork, images: Float32Array, positions: Float32Array, batchSize = 16): SliceTerms {
  const { size, plane, count } = checkStack(net, images, positions);
  const kl = new Float32Array(count);
  const rec = new Float32Array(count);
  const xhat = new Float32Array(count * plane);
  for (const [a, b] of batches(count, batchSize)) {
    const out = tf.tidy(() => {
      const x = tf.tensor4d(images.subarray(a * plane, b * plane), [b - a, size, size, 1]);
      const t = vaeTerms(net.params, net.cfg, x, tf.tensor1d(positions.subarray(a, b)), { training: false, sample: false });
      return [t.kl, t.rec, t.xhat];
    });
    kl.set(read(out[0]!), a);
    rec.set(read(out[1]!), a);
    xhat.set(read(out[2]!), a * plane);
  }
  return { kl, rec, xhat };
}

/** Signed ∂(Σ over slices of the term)/∂x, count × S × S (= each slice's own gradient). */
export function vaeInputGradient(net: VaeNetwork, images: Float32Array, positions: Float32Array, term: 'kl' | 'rec' | 'elbo', batchSize = 8): Float32Array {
  const { size, plane, count } = checkStack(net, images, positions);
  const out = new Float32Array(count * plane);
  for (const [a, b] of batches(count, batchSize)) {
    const g = tf.tidy(() => {
      const x = tf.tensor4d(images.subarray(a * plane, b * plane), [b - a, size, size, 1]);
      const pos = tf.tensor1d(positions.subarray(a, b));
      const f = (input: tf.Tensor): tf.Scalar => {
        const t = vaeTerms(net.params, net.cfg, input as tf.Tensor4D, pos, { training: false, sample: false });
        const value = term === 'kl' ? t.kl : term === 'rec' ? t.rec : tf.add(t.kl, t.rec);
        return tf.sum(value) as tf.Scalar;
      };
      return tf.grad(f)(x);
    });
    out.set(read(g), a * plane);
  }
  return out;
}

/** Normalised 1-D Gaussian taps (odd `size`, centred). */
export function gaussianTaps(sigma: number, size: number): Float64Array {
  if (size % 2 === 0) size -= 1;
  const half = (size - 1) / 2;
  const taps = Float64Array.from({ length: size }, (_, i) => Math.exp(-((i - half) ** 2) / (2 * sigma * sigma)));
  const total = taps.reduce((s, v) => s + v, 0);
  return taps.map((v) => v / total);
}

/**
 * 2-D Gaussian smoothing of every H × W slice of a stack with zero padding (values outside the slice
 * count as 0), as a separable filter: exactly the normalised 2-D kernel, which is the outer product of
 * the normalised 1-D taps.
 */
export function gaussianSmoothSlices(data: Float32Array, count: number, height: number, width: number, sigma = GRADIENT_SMOOTHING.sigma, size = GRADIENT_SMOOTHING.size): Float32Array {
  const taps = gaussianTaps(sigma, size);
  const half = (taps.length - 1) / 2;
  const plane = height * width;
  const out = new Float32Array(data.length);
  const rows = new Float64Array(plane);
  for (let s = 0; s < count; s++) {
    const base = s * plane;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let acc = 0;
        for (let k = 0; k < taps.length; k++) {
          const xx = x + k - half;
          if (xx >= 0 && xx < width) acc += taps[k]! * data[base + y * width + xx]!;
        }
        rows[y * width + x] = acc;
      }
    }
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let acc = 0;
        for (let k = 0; k < taps.length; k++) {
          const yy = y + k - half;
          if (yy >= 0 && yy < height) acc += taps[k]! * rows[yy * width + x]!;
        }
        out[base + y * width + x] = acc;
      }
    }
  }
  return out;
}

/** (v − min) / (max − min) over all values; all zeros when they are all equal. */
export function minMaxNormalise(values: Float32Array): Float32Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi - lo;
  return span > 0 ? values.map((v) => (v - lo) / span) : new Float32Array(values.length);
}

function absolute(values: Float32Array): Float32Array {
  return values.map(Math.abs);
}

/** Per-pixel (x − x̂)² / (2σ²). */
export function squaredErrorMap(images: Float32Array, xhat: Float32Array, recStd: number): Float32Array {
  const scale = 1 / (2 * recStd * recStd);
  return images.map((x, i) => (x - xhat[i]!) ** 2 * scale);
}

/** The log-normaliser per pixel of N(x̂, σ²): log σ + ½ log 2π. */
export function gaussianNllConstant(recStd: number): number {
  return Math.log(recStd) + 0.5 * Math.log(2 * Math.PI);
}

/** What the networks compute for a stack of slices; every value belongs to one slice (chunkable). */
export interface VaeStackPieces extends SliceTerms {
  /** Signed ∂KL/∂x, count × S × S, when asked for. */
  readonly gradKl?: Float32Array;
  /** Signed ∂rec/∂x, count × S × S, when asked for. */
  readonly gradRec?: Float32Array;
  readonly forwardSeconds: number;
  readonly gradientSeconds: number;
}

export interface PieceRequest {
  readonly gradKl: boolean;
  readonly gradRec: boolean;
}

/** The network inputs the maps need: KL gradient for klgrad / combi / elbograd, rec gradient for recgrad / elbograd. */
export function piecesFor(maps: readonly VaePixelMap[]): PieceRequest {
  const want = new Set(maps);
  return {
    gradKl: want.has('klgrad') || want.has('combi') || want.has('elbograd'),
    gradRec: want.has('recgrad') || want.has('elbograd'),
  };
}

/** One forward pass and at most one gradient of KL and one of rec (∂ELBO = ∂KL + ∂rec). */
export function vaeStackPieces(net: VaeNetwork, images: Float32Array, positions: Float32Array, request: PieceRequest): VaeStackPieces {
  const t0 = performance.now();
  const terms = vaeSliceTerms(net, images, positions);
  const t1 = performance.now();
  const gradKl = request.gradKl ? vaeInputGradient(net, images, positions, 'kl') : undefined;
  const gradRec = request.gradRec ? vaeInputGradient(net, images, positions, 'rec') : undefined;
  return {
    ...terms,
    ...(gradKl !== undefined ? { gradKl } : {}),
    ...(gradRec !== undefined ? { gradRec } : {}),
    forwardSeconds: (t1 - t0) / 1000,
    gradientSeconds: (performance.now() - t1) / 1000,
  };
}

/**
 * The requested pixel maps of a whole stack (count × size × size) from its pieces. Pure; the min–max
 * normalisation of Combi spans the whole stack, so this runs on the assembled stack, not on chunks.
 */
export function composeVaeMaps(
  images: Float32Array,
  pieces: Pick<VaeStackPieces, 'xhat' | 'gradKl' | 'gradRec'>,
  count: number,
  size: number,
  recStd: number,
  maps: readonly VaePixelMap[],
): Partial<Record<VaePixelMap, Float32Array>> {
  const want = new Set(maps);
  const need = piecesFor(maps);
  if ((need.gradKl && pieces.gradKl === undefined) || (need.gradRec && pieces.gradRec === undefined)) {
    throw new Error(`composeVaeMaps: the pieces lack a gradient that ${maps.join(', ')} need`);
  }
  const smooth = (v: Float32Array) => gaussianSmoothSlices(v, count, size, size);
  const gKl = pieces.gradKl!;
  const gRec = pieces.gradRec!;
  const out: Partial<Record<VaePixelMap, Float32Array>> = {};
  if (want.has('rec')) out.rec = squaredErrorMap(images, pieces.xhat, recStd);
  if (want.has('klgrad')) out.klgrad = smooth(absolute(gKl));
  if (want.has('recgrad')) out.recgrad = smooth(absolute(gRec));
  if (want.has('elbograd')) out.elbograd = smooth(gKl.map((g, i) => Math.abs(g + gRec[i]!)));
  if (want.has('combi')) {
    const weight = smooth(minMaxNormalise(absolute(gKl)));
    const constant = gaussianNllConstant(recStd);
    const nll = squaredErrorMap(images, pieces.xhat, recStd);
    out.combi = weight.map((w, i) => w * (nll[i]! + constant));
  }
  return out;
}

export interface VaeStackScores {
  /** Per-slice terms (z = μ). */
  readonly terms: SliceTerms;
  /** Requested pixel maps, count × S × S, before the stack post-processing. */
  readonly maps: Partial<Record<VaePixelMap, Float32Array>>;
  readonly forwardSeconds: number;
  readonly gradientSeconds: number;
}

/** Sample terms and pixel maps of a stack in this thread. */
export function vaeStackScores(net: VaeNetwork, images: Float32Array, positions: Float32Array, maps: readonly VaePixelMap[]): VaeStackScores {
  const { size, count } = checkStack(net, images, positions);
  const pieces = vaeStackPieces(net, images, positions, piecesFor(maps));
  return {
    terms: { kl: pieces.kl, rec: pieces.rec, xhat: pieces.xhat },
    maps: composeVaeMaps(images, pieces, count, size, net.cfg.recStd, maps),
    forwardSeconds: pieces.forwardSeconds,
    gradientSeconds: pieces.gradientSeconds,
  };
}

/** Raw sample scores of a volume: mean over its slices of KL + rec, KL, rec. */
export function rawVaeSampleScores(terms: Pick<SliceTerms, 'kl' | 'rec'>): Record<VaeSampleScore, number> {
  const n = terms.kl.length;
  let kl = 0;
  let rec = 0;
  for (let i = 0; i < n; i++) {
    kl += terms.kl[i]!;
    rec += terms.rec[i]!;
  }
  return { elbo: (kl + rec) / n, kl: kl / n, rec: rec / n };
}
