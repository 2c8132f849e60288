import type { Shape3 } from '../../src/volume/volume.js';
import { heatColor, LABEL_OUTLINE_RGB } from './colormap.js';
import { encodePng, pngDataUri } from './png.js';
import type { SliceView } from './types.js';

/** A ground-truth mask in Volume layout: 0/1 bytes, or floats read from NIfTI (≥ 0.5 is foreground). */
export type LabelArray = Uint8Array | Float32Array;

function checkLength(what: string, length: number, shape: Shape3): void {
  const n = shape[0] * shape[1] * shape[2];
  if (length !== n) throw new RangeError(`${what} has ${length} voxels, shape ${shape.join('×')} needs ${n}`);
}

/**
 * The axial slice to show for a case: the one with the largest label area; when there is no
 * label (or it is empty), the one with the highest total score. Ties go to the lowest z.
 * Arrays are in Volume layout (x fastest: idx = x + nx*(y + ny*z)).
 */
export function chooseOverlaySlice(label: LabelArray | null, score: Float32Array, shape: Shape3): number {
  const [nx, ny, nz] = shape;
  const perSlice = nx * ny;
  checkLength('score', score.length, shape);
  if (label) {
    checkLength('label', label.length, shape);
    let bestZ = -1;
    let bestArea = 0;
    for (let z = 0; z < nz; z++) {
      let area = 0;
      const end = (z + 1) * perSlice;
      for (let i = z * perSlice; i < end; i++) if (label[i] >= 0.5) area++;
      if (area > bestArea) {
        bestArea = area;
        bestZ = z;
      }
    }
    if (bestZ >= 0) return bestZ;
  }
  let bestZ = 0;
  let bestSum = -Infinity;
  for (let z = 0; z < nz; z++) {
    let sum = 0;
    const end = (z + 1) * perSlice;
    for (let i = z * perSlice; i < end; i++) {
      const s = score[i];
      if (Number.isFinite(s)) sum += s;
    }
    if (sum > bestSum) {
      bestSum = sum;
      bestZ = z;
    }
  }
  return bestZ;
}

export interface ExtractOptions {
  /**
   * Put the largest y on the top row (default true). With RAS-oriented volumes this shows
   * anterior at the top, the usual way of looking at an axial slice; false keeps y = 0 on top.
   */
  readonly flipRows?: boolean;
}

/**
 * Cut axial slice `z` out of Volume-layout image, label and score arrays: columns are x,
 * rows are y (flipped so anatomy is upright unless `flipRows: false`).
 */
export function extractOverlay(
  image: Float32Array,
  label: LabelArray | null,
  score: Float32Array,
  shape: Shape3,
  z: number,
  options: ExtractOptions = {},
): SliceView {
  const [nx, ny, nz] = shape;
  checkLength('image', image.length, shape);
  checkLength('score', score.length, shape);
  if (label) checkLength('label', label.length, shape);
  if (!Number.isInteger(z) || z < 0 || z >= nz) throw new RangeError(`slice z=${z} is outside 0..${nz - 1}`);
  const flip = options.flipRows ?? true;
  const outImage = new Float32Array(nx * ny);
  const outScore = new Float32Array(nx * ny);
  const outLabel = label ? new Uint8Array(nx * ny) : null;
  for (let y = 0; y < ny; y++) {
    const row = flip ? ny - 1 - y : y;
    const src = nx * (y + ny * z);
    const dst = nx * row;
    for (let x = 0; x < nx; x++) {
      outImage[dst + x] = image[src + x];
      outScore[dst + x] = score[src + x];
      if (outLabel && label) outLabel[dst + x] = label[src + x] >= 0.5 ? 1 : 0;
    }
  }
  return { z, width: nx, height: ny, image: outImage, label: outLabel, score: outScore };
}

/** Low and high display window of an image: its 0.5th and 99.5th percentiles of finite values. */
export function displayWindow(image: Float32Array): readonly [number, number] {
  const finite = image.filter((v) => Number.isFinite(v)).sort();
  if (finite.length === 0) return [0, 1];
  const lo = finite[Math.floor(0.005 * (finite.length - 1))];
  const hi = finite[Math.ceil(0.995 * (finite.length - 1))];
  return hi > lo ? [lo, hi] : [lo, lo + 1];
}

export interface RenderOptions {
  /** Displayed scores are mapped from this range to the heat ramp (default [0, 1], the MOOD range). */
  readonly scoreRange?: readonly [number, number];
  /** Slices are upscaled by a whole factor until their longer side reaches this many pixels (default 160). */
  readonly targetSize?: number;
}

/** The three pictures of a slice as PNG data URIs, all of the same (upscaled) size. */
export interface OverlayImages {
  readonly width: number;
  readonly height: number;
  /** Grey image alone. */
  readonly image: string;
  /** Grey image with the ground-truth outline; null without a label. */
  readonly label: string | null;
  /** Grey image with the score heatmap (transparent where scores are low) and the label outline. */
  readonly score: string;
}

interface Layers {
  readonly heat: boolean;
  readonly outline: boolean;
}

function upscaleFactor(slice: SliceView, targetSize: number): number {
  const longer = Math.max(slice.width, slice.height);
  return Math.max(1, Math.min(16, Math.ceil(targetSize / longer)));
}

function rasterize(slice: SliceView, factor: number, layers: Layers, scoreRange: readonly [number, number]): Buffer {
  const { width, height, image, label, score } = slice;
  const outW = width * factor;
  const outH = height * factor;
  const [lo, hi] = displayWindow(image);
  const [sLo, sHi] = scoreRange;
  const sSpan = sHi > sLo ? sHi - sLo : 1;
  const rgb = new Uint8Array(outW * outH * 3);
  const labelAt = (X: number, Y: number): number => {
    if (X < 0 || Y < 0 || X >= outW || Y >= outH || !label) return 0;
    return label[Math.floor(X / factor) + width * Math.floor(Y / factor)];
  };
  for (let Y = 0; Y < outH; Y++) {
    for (let X = 0; X < outW; X++) {
      const src = Math.floor(X / factor) + width * Math.floor(Y / factor);
      const v = image[src];
      const grey = Number.isFinite(v) ? Math.min(1, Math.max(0, (v - lo) / (hi - lo))) * 255 : 0;
      let r = grey;
      let g = grey;
      let b = grey;
      if (layers.heat) {
        const s = score[src];
        const t = Number.isFinite(s) ? Math.min(1, Math.max(0, (s - sLo) / sSpan)) : 0;
        if (t > 0.02) {
          // Opacity grows with the score so that low-level noise stays faint and hot spots stand out.
          const alpha = 0.88 * Math.min(1, t / 0.6);
          const [hr, hg, hb] = heatColor(t);
          r = r * (1 - alpha) + hr * alpha;
          g = g * (1 - alpha) + hg * alpha;
          b = b * (1 - alpha) + hb * alpha;
        }
      }
      if (layers.outline && labelAt(X, Y) === 1) {
        const edge = !labelAt(X - 1, Y) || !labelAt(X + 1, Y) || !labelAt(X, Y - 1) || !labelAt(X, Y + 1);
        if (edge) [r, g, b] = LABEL_OUTLINE_RGB;
      }
      const o = 3 * (X + outW * Y);
      rgb[o] = Math.round(r);
      rgb[o + 1] = Math.round(g);
      rgb[o + 2] = Math.round(b);
    }
  }
  return encodePng(outW, outH, rgb, 3);
}

/** Which picture of a slice to draw. */
export type OverlayLayer = 'image' | 'label' | 'score';

function checkSlice(slice: SliceView): void {
  const n = slice.width * slice.height;
  if (slice.image.length !== n || slice.score.length !== n || (slice.label && slice.label.length !== n)) {
    throw new RangeError(`slice arrays do not match its size ${slice.width}×${slice.height}`);
  }
}

/** Size in pixels of the rendered pictures of a slice (whole-factor upscaled). */
export function overlaySize(slice: SliceView, options: RenderOptions = {}): { width: number; height: number } {
  const factor = upscaleFactor(slice, options.targetSize ?? 160);
  return { width: slice.width * factor, height: slice.height * factor };
}

/**
 * One picture of a slice as a PNG data URI: the grey image, the image with the ground-truth
 * outline, or the image with the score heatmap (plus the outline when there is a label).
 */
export function renderOverlayLayer(slice: SliceView, layer: OverlayLayer, options: RenderOptions = {}): string {
  checkSlice(slice);
  const factor = upscaleFactor(slice, options.targetSize ?? 160);
  const range = options.scoreRange ?? [0, 1];
  const layers: Layers = {
    heat: layer === 'score',
    outline: slice.label !== null && (layer === 'label' || layer === 'score'),
  };
  return pngDataUri(rasterize(slice, factor, layers, range));
}

/** Render a slice as the image, label-outline and score-heatmap pictures. */
export function renderOverlayImages(slice: SliceView, options: RenderOptions = {}): OverlayImages {
  const { width, height } = overlaySize(slice, options);
  return {
    width,
    height,
    image: renderOverlayLayer(slice, 'image', options),
    label: slice.label ? renderOverlayLayer(slice, 'label', options) : null,
    score: renderOverlayLayer(slice, 'score', options),
  };
}
