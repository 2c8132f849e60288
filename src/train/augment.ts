/**
 * Seeded 2-D augmentation of one normalised training slice (H × W, W fastest), as in the LSR paper:
 * elastic deformation, scale −15 … +10 %, rotation ±5°, horizontal flip, brightness / contrast ±15 %,
 * Gaussian blur and Gaussian noise. The paper gives the kinds and ranges; the probabilities and the
 * elastic / blur / noise strengths are ours (see `PAPER_AUGMENTATION`).
 *
 * Geometry: flip, scale, rotation and the elastic field are composed into ONE inverse mapping
 * output pixel → source position, sampled once with bilinear interpolation, so the slice is
 * interpolated a single time. With no geometric op drawn the pixels are copied unchanged; a draw of
 * exactly 0° / scale 1 / no elastic maps every pixel onto itself and is also an exact copy.
 *
 * Background: a source position outside the slice reads `background` (the value normalisation gives to
 * empty space: 0 for the brain z-score, −1 for the abdomen's x·2−1; see `normalisedBackground`).
 * With `preserveBackground` (default), pixels that are exactly `background` after the warp stay exactly
 * `background` through every intensity op, because at inference the brain background is a hard 0 (voxels
 * ≤ 0.05 are zeroed) and the model should never learn a noisy or shifted background. The intensity ops
 * then act on the other pixels only ("foreground") and their statistics come from those pixels.
 *
 * Intensity ops, in this order, after the warp:
 *   blur        Gaussian, σ ~ U(blur.min, blur.max) pixels, separable, edges clamped.
 *   contrast    v ← m + (v − m)·(1 + c), c ~ U(contrast.min, contrast.max), m = foreground mean.
 *   brightness  v ← v + b·s, b ~ U(brightness.min, brightness.max), s = foreground std
 *               (a shift of ±15 % of the intensity spread, so it means the same for both regions).
 *   noise       v ← v + σ·s·N(0, 1) per pixel, σ ~ U(noise.min, noise.max).
 *
 * Determinism: every random number comes from the `rng` passed in, drawn in a fixed order; the same rng
 * state gives the same output bytes.
 */
import type { Rng } from '../engine/random.js';
import { type Normalisation, type Region, normalisationFor } from '../volume/normalise.js';
import { normalisedBackground } from '../volume/preprocess.js';

/** An op that fires with probability `p` and then draws its strength uniformly from [min, max]. */
export interface RandomOp {
  readonly p: number;
  readonly min: number;
  readonly max: number;
}

export interface ElasticOp extends RandomOp {
  /**
   * Spacing in pixels of the control grid of the displacement field (cubic B-spline between control
   * points, so the field is smooth). `min`/`max` bound the std, in pixels, of the control-point
   * displacements (each of x and y drawn N(0, std²)); the B-spline averages neighbouring control
   * points, so the per-pixel displacement std is about half of that.
   */
  readonly gridSpacing: number;
}

export interface AugmentOptions {
  /** Value read outside the slice, and kept exactly where the warped slice has it (see file comment). */
  readonly background: number;
  readonly preserveBackground: boolean;
  readonly elastic: ElasticOp;
  /** Relative zoom: the content is scaled by 1 + U(min, max). */
  readonly scale: RandomOp;
  /** Rotation in degrees. */
  readonly rotation: RandomOp;
  /** Left–right mirror (flips the W axis). */
  readonly flip: { readonly p: number };
  readonly brightness: RandomOp;
  readonly contrast: RandomOp;
  /** Gaussian blur σ in pixels. */
  readonly blur: RandomOp;
  /** Noise σ relative to the foreground std. */
  readonly noise: RandomOp;
}

export type AugmentPreset = 'paper' | 'none';

const OFF: RandomOp = Object.freeze({ p: 0, min: 0, max: 0 });

/** The paper's kinds and ranges (ISBI 2021, §2.3); probabilities and unstated strengths are ours. */
export const PAPER_AUGMENTATION: AugmentOptions = Object.freeze({
  background: 0,
  preserveBackground: true,
  elastic: Object.freeze({ p: 0.5, min: 1, max: 4, gridSpacing: 20 }),
  scale: Object.freeze({ p: 0.5, min: -0.15, max: 0.1 }),
  rotation: Object.freeze({ p: 0.5, min: -5, max: 5 }),
  flip: Object.freeze({ p: 0.5 }),
  brightness: Object.freeze({ p: 0.5, min: -0.15, max: 0.15 }),
  contrast: Object.freeze({ p: 0.5, min: -0.15, max: 0.15 }),
  blur: Object.freeze({ p: 0.2, min: 0.5, max: 1 }),
  noise: Object.freeze({ p: 0.2, min: 0.01, max: 0.1 }),
});

/** Every op off: `augmentSlice` returns an exact copy and draws nothing from the rng. */
export const NO_AUGMENTATION: AugmentOptions = Object.freeze({
  background: 0,
  preserveBackground: true,
  elastic: Object.freeze({ ...OFF, gridSpacing: 20 }),
  scale: OFF,
  rotation: OFF,
  flip: Object.freeze({ p: 0 }),
  brightness: OFF,
  contrast: OFF,
  blur: OFF,
  noise: OFF,
});

/** A preset with the given background value (the value empty space has after normalisation). */
export function augmentOptions(preset: AugmentPreset, background = 0): AugmentOptions {
  const base = preset === 'paper' ? PAPER_AUGMENTATION : NO_AUGMENTATION;
  return { ...base, background };
}

/** A preset for a region's normalised data: background 0 for the brain, −1 for the abdomen. */
export function augmentOptionsFor(
  preset: AugmentPreset,
  region: Region,
  normalisation: Normalisation = normalisationFor(region),
): AugmentOptions {
  return augmentOptions(preset, normalisedBackground(normalisation));
}

/** The random parameters of one augmentation, drawn in a fixed order; `null` = op not applied. */
export interface AugmentDraw {
  readonly flip: boolean;
  readonly scale: number | null;
  readonly rotationDegrees: number | null;
  /** Control-point displacement std in pixels. */
  readonly elastic: number | null;
  readonly blurSigma: number | null;
  readonly contrast: number | null;
  readonly brightness: number | null;
  readonly noiseSigma: number | null;
}

function draw(op: RandomOp, rng: Rng): number | null {
  if (!(op.p > 0) || rng.next() >= op.p) return null;
  return rng.uniform(op.min, op.max);
}

/** Draws which ops fire and how strongly (the elastic control points are drawn later, inside the warp). */
export function drawAugmentation(rng: Rng, opts: AugmentOptions): AugmentDraw {
  const flip = opts.flip.p > 0 && rng.next() < opts.flip.p;
  const scale = draw(opts.scale, rng);
  const rotationDegrees = draw(opts.rotation, rng);
  const elastic = draw(opts.elastic, rng);
  const blurSigma = draw(opts.blur, rng);
  const contrast = draw(opts.contrast, rng);
  const brightness = draw(opts.brightness, rng);
  const noiseSigma = draw(opts.noise, rng);
  return { flip, scale, rotationDegrees, elastic, blurSigma, contrast, brightness, noiseSigma };
}

/** Augmented copy of `img` (h × w, W fastest). */
export function augmentSlice(img: Float32Array, h: number, w: number, rng: Rng, opts: AugmentOptions): Float32Array {
  const out = new Float32Array(h * w);
  augmentSliceInto(img, h, w, rng, opts, out);
  return out;
}

/** As `augmentSlice`, writing into `out` (h × w; may be a subarray view, must not overlap `img`). */
export function augmentSliceInto(
  img: Float32Array,
  h: number,
  w: number,
  rng: Rng,
  opts: AugmentOptions,
  out: Float32Array,
): void {
  const n = h * w;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) {
    throw new RangeError(`slice size must be positive integers, got ${h}×${w}`);
  }
  if (img.length !== n || out.length < n) {
    throw new RangeError(`slice of ${h}×${w} needs ${n} values, got input ${img.length}, output ${out.length}`);
  }
  const d = drawAugmentation(rng, opts);
  const geometric = d.flip || d.scale !== null || d.rotationDegrees !== null || d.elastic !== null;
  if (geometric) {
    const field = d.elastic !== null ? elasticField(h, w, opts.elastic.gridSpacing, d.elastic, rng) : null;
    warpBilinear(img, h, w, out, d, field, opts.background);
  } else {
    out.set(img);
  }
  applyIntensity(out.subarray(0, n), h, w, d, rng, opts);
}

interface DisplacementField {
  readonly dx: Float32Array;
  readonly dy: Float32Array;
}

/** Uniform cubic B-spline weights for fractional position t ∈ [0, 1). */
function bsplineWeights(t: number, into: Float64Array, at: number): void {
  const t2 = t * t;
  const t3 = t2 * t;
  into[at] = (1 - 3 * t + 3 * t2 - t3) / 6;
  into[at + 1] = (4 - 6 * t2 + 3 * t3) / 6;
  into[at + 2] = (1 + 3 * t + 3 * t2 - 3 * t3) / 6;
  into[at + 3] = t3 / 6;
}

/** For each of `size` pixels: the first of its 4 control points and their B-spline weights. */
function bsplineTaps(size: number, cells: number): { first: Int32Array; weights: Float64Array } {
  const first = new Int32Array(size);
  const weights = new Float64Array(size * 4);
  for (let p = 0; p < size; p++) {
    const u = ((p + 0.5) / size) * cells;
    const cell = Math.min(cells - 1, Math.floor(u));
    first[p] = cell;
    bsplineWeights(u - cell, weights, p * 4);
  }
  return { first, weights };
}

/**
 * A smooth random displacement field (pixels): control points every `gridSpacing` pixels with
 * N(0, std²) displacements, interpolated by a separable cubic B-spline.
 */
function elasticField(h: number, w: number, gridSpacing: number, std: number, rng: Rng): DisplacementField {
  const cellsX = Math.max(1, Math.round(w / gridSpacing));
  const cellsY = Math.max(1, Math.round(h / gridSpacing));
  const ctrlX = cellsX + 3;
  const ctrlY = cellsY + 3;
  const tapsX = bsplineTaps(w, cellsX);
  const tapsY = bsplineTaps(h, cellsY);
  const fields: Float32Array[] = [];
  for (let component = 0; component < 2; component++) {
    const ctrl = new Float64Array(ctrlX * ctrlY);
    for (let i = 0; i < ctrl.length; i++) ctrl[i] = std * rng.normal();
    // Along x for every control row, then along y for every pixel row.
    const rows = new Float64Array(ctrlY * w);
    for (let j = 0; j < ctrlY; j++) {
      for (let c = 0; c < w; c++) {
        const base = j * ctrlX + tapsX.first[c];
        const wt = c * 4;
        rows[j * w + c] =
          tapsX.weights[wt] * ctrl[base] +
          tapsX.weights[wt + 1] * ctrl[base + 1] +
          tapsX.weights[wt + 2] * ctrl[base + 2] +
          tapsX.weights[wt + 3] * ctrl[base + 3];
      }
    }
    const field = new Float32Array(h * w);
    for (let r = 0; r < h; r++) {
      const j = tapsY.first[r];
      const wt = r * 4;
      const w0 = tapsY.weights[wt];
      const w1 = tapsY.weights[wt + 1];
      const w2 = tapsY.weights[wt + 2];
      const w3 = tapsY.weights[wt + 3];
      const r0 = j * w;
      for (let c = 0; c < w; c++) {
        field[r * w + c] =
          w0 * rows[r0 + c] + w1 * rows[r0 + w + c] + w2 * rows[r0 + 2 * w + c] + w3 * rows[r0 + 3 * w + c];
      }
    }
    fields.push(field);
  }
  return { dx: fields[0], dy: fields[1] };
}

/**
 * out(r, c) = img(source(r, c)) with bilinear interpolation; taps outside the slice read `background`.
 * source: add the elastic displacement in output space, undo rotation and zoom about the slice centre,
 * then mirror x when flipping.
 */
function warpBilinear(
  img: Float32Array,
  h: number,
  w: number,
  out: Float32Array,
  d: AugmentDraw,
  field: DisplacementField | null,
  background: number,
): void {
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const zoom = 1 + (d.scale ?? 0);
  const theta = ((d.rotationDegrees ?? 0) * Math.PI) / 180;
  const cos = Math.cos(theta) / zoom;
  const sin = Math.sin(theta) / zoom;
  const mirror = d.flip ? -1 : 1;
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const i = r * w + c;
      let x = c - cx;
      let y = r - cy;
      if (field) {
        x += field.dx[i];
        y += field.dy[i];
      }
      const sx = mirror * (cos * x + sin * y) + cx;
      const sy = -sin * x + cos * y + cy;
      out[i] = sampleBilinear(img, h, w, sx, sy, background);
    }
  }
}

function sampleBilinear(img: Float32Array, h: number, w: number, sx: number, sy: number, background: number): number {
  const x0 = Math.floor(sx);
  const y0 = Math.floor(sy);
  const fx = sx - x0;
  const fy = sy - y0;
  if (x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h) {
    const a = y0 * w + x0;
    const top = img[a] * (1 - fx) + img[a + 1] * fx;
    const bottom = img[a + w] * (1 - fx) + img[a + w + 1] * fx;
    return top * (1 - fy) + bottom * fy;
  }
  if (x0 < -1 || y0 < -1 || x0 >= w || y0 >= h) return background;
  // On the border: taps outside read `background`; taps with zero weight are skipped so that an exact
  // integer position returns the pixel itself.
  const x1 = x0 + 1;
  const y1 = y0 + 1;
  const xIn0 = x0 >= 0;
  const xIn1 = x1 < w;
  const row0 = y0 >= 0 ? y0 * w : -1;
  const row1 = y1 < h ? y1 * w : -1;
  const v00 = row0 >= 0 && xIn0 ? img[row0 + x0] : background;
  const v01 = fx === 0 ? 0 : row0 >= 0 && xIn1 ? img[row0 + x1] : background;
  const top = fx === 0 ? v00 : v00 * (1 - fx) + v01 * fx;
  if (fy === 0) return top;
  const v10 = row1 >= 0 && xIn0 ? img[row1 + x0] : background;
  const v11 = fx === 0 ? 0 : row1 >= 0 && xIn1 ? img[row1 + x1] : background;
  const bottom = fx === 0 ? v10 : v10 * (1 - fx) + v11 * fx;
  return top * (1 - fy) + bottom * fy;
}

function applyIntensity(out: Float32Array, h: number, w: number, d: AugmentDraw, rng: Rng, opts: AugmentOptions): void {
  if (d.blurSigma === null && d.contrast === null && d.brightness === null && d.noiseSigma === null) return;
  const n = out.length;
  const background = opts.background;
  let foreground: Uint8Array | null = null;
  if (opts.preserveBackground) {
    foreground = new Uint8Array(n);
    for (let i = 0; i < n; i++) foreground[i] = out[i] !== background ? 1 : 0;
  }
  if (d.blurSigma !== null) gaussianBlurInPlace(out, h, w, d.blurSigma);
  if (foreground) restoreBackground(out, foreground, background);

  if (d.contrast !== null || d.brightness !== null || d.noiseSigma !== null) {
    const { mean, std, count } = statistics(out, foreground);
    if (count === 0) return;
    const spread = std > 0 ? std : 1;
    const gain = 1 + (d.contrast ?? 0);
    const shift = (d.brightness ?? 0) * spread;
    if (gain !== 1 || shift !== 0) {
      for (let i = 0; i < n; i++) {
        if (foreground === null || foreground[i]) out[i] = mean + (out[i] - mean) * gain + shift;
      }
    }
    if (d.noiseSigma !== null) {
      const sigma = d.noiseSigma * spread;
      for (let i = 0; i < n; i++) {
        if (foreground === null || foreground[i]) out[i] += sigma * rng.normal();
      }
    }
  }
}

function restoreBackground(out: Float32Array, foreground: Uint8Array, background: number): void {
  for (let i = 0; i < out.length; i++) if (!foreground[i]) out[i] = background;
}

function statistics(data: Float32Array, mask: Uint8Array | null): { mean: number; std: number; count: number } {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < data.length; i++) {
    if (mask === null || mask[i]) {
      sum += data[i];
      count++;
    }
  }
  if (count === 0) return { mean: 0, std: 0, count: 0 };
  const mean = sum / count;
  let squares = 0;
  for (let i = 0; i < data.length; i++) {
    if (mask === null || mask[i]) squares += (data[i] - mean) * (data[i] - mean);
  }
  return { mean, std: Math.sqrt(squares / count), count };
}

/** Normalised 1-D Gaussian kernel with radius ⌈3σ⌉. */
function gaussianKernel(sigma: number): Float64Array {
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const kernel = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let k = -radius; k <= radius; k++) {
    const v = Math.exp(-(k * k) / (2 * sigma * sigma));
    kernel[k + radius] = v;
    sum += v;
  }
  for (let k = 0; k < kernel.length; k++) kernel[k] /= sum;
  return kernel;
}

/** Separable Gaussian blur with clamped edges. */
export function gaussianBlurInPlace(img: Float32Array, h: number, w: number, sigma: number): void {
  if (!(sigma > 0)) return;
  const kernel = gaussianKernel(sigma);
  const radius = (kernel.length - 1) / 2;
  // Each line is copied into a buffer padded with its edge values, so the inner loop has no branches.
  const padded = new Float32Array(Math.max(h, w) + 2 * radius);
  for (let r = 0; r < h; r++) {
    const row = r * w;
    for (let c = 0; c < w; c++) padded[radius + c] = img[row + c];
    padEdges(padded, radius, w);
    for (let c = 0; c < w; c++) img[row + c] = convolveAt(padded, c, kernel);
  }
  for (let c = 0; c < w; c++) {
    for (let r = 0; r < h; r++) padded[radius + r] = img[r * w + c];
    padEdges(padded, radius, h);
    for (let r = 0; r < h; r++) img[r * w + c] = convolveAt(padded, r, kernel);
  }
}

function padEdges(padded: Float32Array, radius: number, length: number): void {
  const first = padded[radius];
  const last = padded[radius + length - 1];
  for (let k = 0; k < radius; k++) {
    padded[k] = first;
    padded[radius + length + k] = last;
  }
}

function convolveAt(padded: Float32Array, start: number, kernel: Float64Array): number {
  let acc = 0;
  for (let t = 0; t < kernel.length; t++) acc += kernel[t] * padded[start + t];
  return acc;
}
