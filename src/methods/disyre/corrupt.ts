/**
 * DISYRE's generic corruption generator: pure functions over typed arrays, every random draw from
 * one seeded stream (src/engine/random.ts, seedrandom), so a seed fixes shapes, strengths and levels.
 *
 * One corruption of a clean square slice x (size × size, raw intensities in [0, 1]):
 *   1. level t ~ U(minLevel, 1): the corruption's strength;
 *   2. a random shape, centred on a tissue pixel, at a random size (radius fraction of the side):
 *      - blob: 1 − ‖p − c‖²/R² + β·n(p) > 0, n a smooth random field (a coarse grid of normal draws,
 *        bilinearly interpolated to the slice), so the outline is irregular;
 *      - box: a rotated rectangle with half-sides R·(a, b);
 *      - ellipse: a rotated ellipse with radii R·(a, b);
 *      the binary shape is blurred (Gaussian, σ ~ U(0.5, min(maxEdgeSigma, R/2))) into a soft mask
 *      m ∈ [0, 1] and kept to tissue
 *      (x > 0), so the network cannot rely on a sharp border;
 *   3. what happens inside the mask, at strengths whose maximum is t:
 *      - texture: a foreign patch d (another training slice, flipped and shifted at random) blended
 *        with α_tex: x ← (1 − α_tex·m)·x + α_tex·m·d;
 *      - bias: an intensity bias ±α_bias·biasScale added to the pixels of some of the slice's intensity
 *        clusters (foreground quantile bins; a random non-empty subset of them): x ← x + m·[cluster]·bias;
 *      one of the two at full strength t, the other at U(0, t) or off (each choice equally likely);
 *   4. optionally a blur of the corrupted region (x ← (1 − m)·x + m·G_σ x, probability blurProbability),
 *      then clipping to [0, 1].
 * The level given to the network is t. With no tissue in the slice nothing is corrupted and t = 0.
 *
 * Independence from the evaluation: this module (and everything it imports) imports nothing from
 * eval/ (test/disyre-corrupt.test.ts checks the import closure); its shapes are 2-D and its intensity
 * changes are blends and cluster biases, not the evaluation's sphere kinds.
 */
import type { Rng } from '../../engine/random.js';

export const SHAPE_KINDS = ['blob', 'box', 'ellipse'] as const;
export type ShapeKind = (typeof SHAPE_KINDS)[number];

export interface CorruptionOptions {
  /** Smallest level t drawn (the largest is 1). */
  readonly minLevel: number;
  /** Range of the shape's radius R as a fraction of the slice side. */
  readonly minRadius: number;
  readonly maxRadius: number;
  /** Largest σ (pixels) of the mask's edge blur (the smallest is 0.5; at most R/2). */
  readonly maxEdgeSigma: number;
  /** Intensity change of a bias at α_bias = 1 (raw intensity units). */
  readonly biasScale: number;
  /** Intensity clusters of the bias (quantile bins of the slice's tissue). */
  readonly clusters: number;
  /** Probability of blurring the corrupted region. */
  readonly blurProbability: number;
  /** Intensity above which a pixel is tissue. */
  readonly tissueThreshold: number;
}

export const DEFAULT_CORRUPTION: CorruptionOptions = Object.freeze({
  minLevel: 0.05,
  minRadius: 0.03,
  maxRadius: 0.2,
  maxEdgeSigma: 3,
  biasScale: 0.6,
  clusters: 4,
  blurProbability: 0.25,
  tissueThreshold: 0.02,
});

export interface Corruption {
  /** The corrupted slice. */
  readonly image: Float32Array;
  /** Level t ∈ [0, 1] (0: nothing was corrupted). */
  readonly level: number;
  /** Soft mask m of the corrupted region. */
  readonly mask: Float32Array;
  readonly shape: ShapeKind | null;
  readonly alphaTexture: number;
  readonly alphaBias: number;
  /** Signed bias at α_bias = 1 (±biasScale). */
  readonly bias: number;
  readonly blurSigma: number;
}

/** Separable Gaussian blur of a size × size image (taps to ±3σ, renormalised at the borders). */
export function gaussianBlur(image: Float32Array, size: number, sigma: number): Float32Array {
  if (!(sigma > 0)) return image.slice();
  const half = Math.max(1, Math.ceil(3 * sigma));
  const taps = Float64Array.from({ length: 2 * half + 1 }, (_, i) => Math.exp(-((i - half) ** 2) / (2 * sigma * sigma)));
  const pass = (src: Float32Array, horizontal: boolean): Float32Array => {
    const out = new Float32Array(src.length);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let acc = 0;
        let weight = 0;
        for (let k = -half; k <= half; k++) {
          const xx = horizontal ? x + k : x;
          const yy = horizontal ? y : y + k;
          if (xx < 0 || yy < 0 || xx >= size || yy >= size) continue;
          const w = taps[k + half]!;
          acc += w * src[yy * size + xx]!;
          weight += w;
        }
        out[y * size + x] = acc / weight;
      }
    }
    return out;
  };
  return pass(pass(image, true), false);
}

/** A smooth random field on size × size: a grid × grid of normal draws, bilinearly interpolated. */
export function smoothNoise(size: number, grid: number, rng: Rng): Float32Array {
  const g = Math.max(2, grid);
  const nodes = Float32Array.from({ length: g * g }, () => rng.normal());
  const out = new Float32Array(size * size);
  const scale = (g - 1) / Math.max(1, size - 1);
  for (let y = 0; y < size; y++) {
    const fy = y * scale;
    const y0 = Math.min(g - 2, Math.floor(fy));
    const wy = fy - y0;
    for (let x = 0; x < size; x++) {
      const fx = x * scale;
      const x0 = Math.min(g - 2, Math.floor(fx));
      const wx = fx - x0;
      const a = nodes[y0 * g + x0]! * (1 - wx) + nodes[y0 * g + x0 + 1]! * wx;
      const b = nodes[(y0 + 1) * g + x0]! * (1 - wx) + nodes[(y0 + 1) * g + x0 + 1]! * wx;
      out[y * size + x] = a * (1 - wy) + b * wy;
    }
  }
  return out;
}

/** Binary shape (0/1) of `kind` centred at (cx, cy) with radius r pixels; the rest of its draws from `rng`. */
export function drawShape(kind: ShapeKind, size: number, cx: number, cy: number, r: number, rng: Rng): Float32Array {
  const out = new Float32Array(size * size);
  const a = rng.uniform(0.6, 1.4);
  const b = rng.uniform(0.6, 1.4);
  const angle = rng.uniform(0, Math.PI);
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const noise = kind === 'blob' ? smoothNoise(size, 3 + rng.int(6), rng) : null;
  const roughness = kind === 'blob' ? rng.uniform(0.2, 0.8) : 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = x - cx;
      const dy = y - cy;
      const u = (dx * cos + dy * sin) / (r * a);
      const v = (-dx * sin + dy * cos) / (r * b);
      let inside: boolean;
      if (kind === 'box') inside = Math.abs(u) <= 1 && Math.abs(v) <= 1;
      else if (kind === 'ellipse') inside = u * u + v * v <= 1;
      else inside = 1 - (dx * dx + dy * dy) / (r * r) + roughness * noise![y * size + x]! > 0;
      if (inside) out[y * size + x] = 1;
    }
  }
  return out;
}

/** Upper bounds of `k` intensity clusters: the tissue's quantiles at 1/k … (k − 1)/k (k − 1 values). */
export function clusterBounds(image: Float32Array, k: number, threshold: number): number[] {
  const tissue = image.filter((v) => v > threshold).sort();
  if (tissue.length === 0) return [];
  return Array.from({ length: k - 1 }, (_, i) => tissue[Math.min(tissue.length - 1, Math.floor(((i + 1) * tissue.length) / k))]!);
}

/** Cluster index (0 … bounds.length) of a value. */
function clusterOf(v: number, bounds: readonly number[]): number {
  let c = 0;
  while (c < bounds.length && v > bounds[c]!) c++;
  return c;
}

/** A foreign patch from `donor`: flipped left–right and/or up–down and shifted by up to a quarter side (zeros enter). */
export function foreignPatch(donor: Float32Array, size: number, rng: Rng): Float32Array {
  const flipX = rng.next() < 0.5;
  const flipY = rng.next() < 0.5;
  const max = Math.floor(size / 4);
  const sx = rng.int(2 * max + 1) - max;
  const sy = rng.int(2 * max + 1) - max;
  const out = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    const yy = (flipY ? size - 1 - y : y) + sy;
    if (yy < 0 || yy >= size) continue;
    for (let x = 0; x < size; x++) {
      const xx = (flipX ? size - 1 - x : x) + sx;
      if (xx >= 0 && xx < size) out[y * size + x] = donor[yy * size + xx]!;
    }
  }
  return out;
}

/**
 * One corruption of `clean` (size × size). `donor` is the slice foreign patches are cut from (another
 * training slice; null: the slice itself, flipped and shifted). Every draw comes from `rng`.
 */
export function corruptSlice(clean: Float32Array, size: number, donor: Float32Array | null, rng: Rng, opts: CorruptionOptions = DEFAULT_CORRUPTION): Corruption {
  if (clean.length !== size * size) throw new RangeError(`corruptSlice: ${clean.length} values for a ${size}×${size} slice`);
  if (donor !== null && donor.length !== clean.length) throw new RangeError(`corruptSlice: donor has ${donor.length} values, the slice ${clean.length}`);
  const tissue: number[] = [];
  for (let i = 0; i < clean.length; i++) if (clean[i]! > opts.tissueThreshold) tissue.push(i);
  const none: Corruption = { image: clean.slice(), level: 0, mask: new Float32Array(clean.length), shape: null, alphaTexture: 0, alphaBias: 0, bias: 0, blurSigma: 0 };
  if (tissue.length === 0) return none;

  const level = rng.uniform(opts.minLevel, 1);
  const kind = SHAPE_KINDS[rng.int(SHAPE_KINDS.length)]!;
  const centre = tissue[rng.int(tissue.length)]!;
  const radius = Math.max(1, rng.uniform(opts.minRadius, opts.maxRadius) * size);
  const binary = drawShape(kind, size, centre % size, Math.floor(centre / size), radius, rng);
  const edge = gaussianBlur(binary, size, rng.uniform(0.5, Math.max(0.5, Math.min(opts.maxEdgeSigma, radius / 2))));
  const mask = edge.map((m, i) => (clean[i]! > opts.tissueThreshold ? m : 0));

  // Which parts and how strong: one at t, the other at U(0, t) or off.
  const mode = rng.int(3); // 0: texture at t, 1: bias at t, 2: both (one at t)
  const other = rng.next() < 0.5 ? rng.uniform(0, level) : 0;
  let alphaTexture = mode === 0 ? level : mode === 1 ? 0 : other;
  let alphaBias = mode === 1 ? level : mode === 0 ? 0 : other;
  if (mode === 2) {
    if (rng.next() < 0.5) alphaTexture = level;
    else alphaBias = level;
  }
  const bias = (rng.next() < 0.5 ? -1 : 1) * opts.biasScale;

  const image = clean.slice();
  if (alphaTexture > 0) {
    const patch = foreignPatch(donor ?? clean, size, rng);
    for (let i = 0; i < image.length; i++) {
      const a = alphaTexture * mask[i]!;
      image[i] = (1 - a) * image[i]! + a * patch[i]!;
    }
  }
  if (alphaBias > 0) {
    const bounds = clusterBounds(clean, opts.clusters, opts.tissueThreshold);
    const chosen = new Uint8Array(bounds.length + 1);
    while (!chosen.includes(1)) for (let c = 0; c < chosen.length; c++) chosen[c] = rng.next() < 0.5 ? 1 : 0;
    for (let i = 0; i < image.length; i++) {
      if (mask[i]! > 0 && chosen[clusterOf(clean[i]!, bounds)] === 1) image[i] = image[i]! + mask[i]! * alphaBias * bias;
    }
  }
  let blurSigma = 0;
  if (rng.next() < opts.blurProbability) {
    blurSigma = rng.uniform(0.5, 2);
    const blurred = gaussianBlur(image, size, blurSigma);
    for (let i = 0; i < image.length; i++) image[i] = (1 - mask[i]!) * image[i]! + mask[i]! * blurred[i]!;
  }
  for (let i = 0; i < image.length; i++) image[i] = Math.min(1, Math.max(0, image[i]!));
  return { image, level, mask, shape: kind, alphaTexture, alphaBias, bias, blurSigma };
}
