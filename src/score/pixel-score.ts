/**
 * Pixel score of latent space restoration: decode the S restored copies of each slice, weigh their
 * residuals, smooth, put the map back on the input grid and scale it into [0, 1].
 *
 * Space of the residuals: R_j = |X − X_j| with X the preprocessed slice exactly as the VQ-VAE sees it
 * (160×160, normalised: brain foreground z-scored, background 0; abdomen x·2 − 1) and X_j the decoded
 * restoration, as in the paper. Residuals are therefore in normalised units (brain: multiples of the
 * volume's foreground σ), which makes them comparable across scanners and intensity scalings; the
 * price is that the map is not in [0, 1] and needs the scaling below.
 *
 * Weights: w_j = softmax_j(k / mean|X − X_j|), k = 3 (restorations closer to the input count more);
 * AS = Σ_j w_j R_j.
 *
 * Smoothing, on the slice stack at model resolution (the stack seen as a [W, H, N] volume), as the
 * paper: min-pool 3×3×3 then average-pool 7×7×3. Along the stack axis the kernels count slices, so on
 * an every-8th stack a depth of 3 spans 17 voxels (z ± 8) of the volume, on an every-slice stack 3
 * voxels; pooling the stack rather than the 256³ volume is 20× cheaper and keeps the paper's kernels.
 *
 * Back onto the input grid: `stackToVolume`, which puts slice i exactly on its source z (no half-step
 * shift) and interpolates linearly between slices.
 *
 * Scaling into [0, 1]: score = AS / (AS + c), with c = `pixelScale` from the calibration (by default
 * the 99th percentile of the smoothed AS over the foreground of held-out normal volumes; 1 normalised
 * unit when uncalibrated). The map is strictly increasing, so ranks (AUROC, AP) are those of AS; it
 * never reaches 1, so abnormal voxels are not tied by clipping; a normal 99th-percentile voxel lands at
 * 0.5, where float16 still resolves steps of 2.4e−4.
 */
import { minPool3d, avgPool3d, type Kernel3 } from '../volume/pool3d.js';
import { stackToVolume } from '../volume/resample.js';
import type { SliceStack } from '../volume/slices.js';
import type { Shape3 } from '../volume/volume.js';
import type { LsrEngine } from '../methods/lsr/engine.js';
import { decodeDistinct } from './decode-distinct.js';
import { batches, latentGeometry } from '../methods/lsr/networks.js';
import { restoreCodes, type RestorationOptions, type RestorationStats } from './restoration.js';
import { restorationWeights, weightedResidualMap } from './residual-weights.js';

/** The paper's k in softmax(k / mean residual). */
export const RESIDUAL_TEMPERATURE = 3;

export interface SmoothingKernels {
  readonly min: Kernel3;
  readonly avg: Kernel3;
}

export const PAPER_SMOOTHING: SmoothingKernels = { min: [3, 3, 3], avg: [7, 7, 3] };

/**
 * Softmax-weighted residual of one slice (the paper's rule): `input` (H·W) against its `copies`
 * restorations (copies·H·W). Returns AS (H·W).
 */
export function weightedResidual(input: Float32Array, restorations: Float32Array, copies: number, k = RESIDUAL_TEMPERATURE): Float32Array {
  return weightedResidualMap(input, restorations, restorationWeights(input, restorations, copies, 'softmax', k));
}

export interface RestorationScoreTask {
  /** Normalised input slices at model resolution, count × S × S. */
  readonly images: Float32Array;
  /** Code maps of those slices (count × h × w). */
  readonly codes: Int32Array;
  readonly slicePositions: Float32Array;
  readonly restoration: RestorationOptions;
  /** Most maps per decoder call (default: the engine's `decodeBatch`, rounded to whole slices). */
  readonly decodeBatch?: number;
  readonly k?: number;
}

export interface RestorationScoreResult {
  /** AS per slice at model resolution, count × S × S (unsmoothed). */
  readonly scores: Float32Array;
  readonly stats: RestorationStats;
  readonly decodeSeconds: number;
  readonly residualSeconds: number;
  /** Maps run through the decoder (identical copies of a slice count once). */
  readonly decodedMaps: number;
}

/** Restoration → decoding → weighted residuals for a set of slices (what a worker runs on its chunk). */
export async function restorationScores(engine: LsrEngine, task: RestorationScoreTask): Promise<RestorationScoreResult> {
  const nets = engine.nets;
  const size = nets.vqvae.cfg.inputSize;
  const plane = size * size;
  const count = task.slicePositions.length;
  const copies = task.restoration.copies;
  const cells = latentGeometry(nets.prior).positions;
  if (task.images.length !== count * plane) throw new RangeError(`restorationScores: ${task.images.length} image values for ${count} slices of ${size}×${size}`);
  const { codes: restored, stats } = await restoreCodes(engine, task.codes, task.slicePositions, task.restoration);
  const scores = new Float32Array(count * plane);
  let decodeMs = 0;
  let residualMs = 0;
  let decodedMaps = 0;
  // Whole slices per decoder call: the residual weights need all copies of a slice.
  const slicesPerCall = Math.max(1, Math.floor((task.decodeBatch ?? engine.decodeBatch) / copies));
  for (const [a, b] of batches(count, slicesPerCall)) {
    const t0 = performance.now();
    const positions = new Float32Array((b - a) * copies);
    for (let i = a; i < b; i++) positions.fill(task.slicePositions[i], (i - a) * copies, (i - a + 1) * copies);
    const { images, decoded } = await decodeDistinct((c, p) => engine.decodeCodeMaps(c, p), restored.subarray(a * copies * cells, b * copies * cells), positions, cells, plane);
    decodedMaps += decoded;
    const t1 = performance.now();
    for (let i = a; i < b; i++) {
      const own = images.subarray((i - a) * copies * plane, (i - a + 1) * copies * plane);
      scores.set(weightedResidual(task.images.subarray(i * plane, (i + 1) * plane), own, copies, task.k ?? RESIDUAL_TEMPERATURE), i * plane);
    }
    decodeMs += t1 - t0;
    residualMs += performance.now() - t1;
  }
  return { scores, stats, decodeSeconds: decodeMs / 1000, residualSeconds: residualMs / 1000, decodedMaps };
}

/** Min-pool then average-pool of a score stack (count × H × W, seen as a [W, H, count] volume). */
export function smoothScoreStack(scores: Float32Array, count: number, height: number, width: number, kernels: SmoothingKernels = PAPER_SMOOTHING): Float32Array {
  const shape: Shape3 = [width, height, count];
  return avgPool3d(minPool3d(scores, shape, kernels.min), shape, kernels.avg);
}

/** score = v / (v + scale) for v ≥ 0 (negative and non-finite inputs give 0). In place; returns `values`. */
export function scaleIntoUnit(values: Float32Array, scale: number): Float32Array {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`pixel scale must be positive and finite, got ${scale}`);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    values[i] = v > 0 && Number.isFinite(v) ? v / (v + scale) : 0;
  }
  return values;
}

/** The smoothed stack on the volume grid (exact slice alignment), scaled into [0, 1]. */
export function stackScoresToVolume(smoothed: Float32Array, stack: Pick<SliceStack, 'count' | 'height' | 'width' | 'zs'>, shape: Shape3, scale: number): Float32Array {
  const volume = stackToVolume({ data: smoothed, count: stack.count, height: stack.height, width: stack.width, zs: stack.zs }, shape);
  return scaleIntoUnit(volume, scale);
}
