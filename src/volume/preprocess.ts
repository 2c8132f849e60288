/**
 * The single entry point from a Volume to the model input: a stack of axial slices resized to
 * size × size and normalised, with each slice's conditioning position. Training and prediction both
 * call `preprocessForModel`, so the model sees identically prepared data in both.
 *
 * Steps: pick axial slices (`sliceIndices`), copy them (`extractAxialSlices`, which also sets
 * positions = slicePosition(z, nz)), bilinear-resize each to size × size (`resizeStack`), then apply the
 * region's normalisation (`normalise`). Thresholding happens after the resize, as in the paper.
 *
 * Brain z-score statistics are computed over the foreground (> threshold) voxels of the WHOLE volume at
 * its own resolution, not over the chosen slices: the intensities of a slice then do not depend on which
 * other slices were picked, so the random training slices and the every-8th inference slices of the same
 * volume get identical normalisation. (The paper took them over its 32 resized slices; the two agree
 * closely because every 8th slice samples the volume evenly.)
 */
import { type Normalisation, type Region, foregroundStatistics, normalisationFor, normalise } from './normalise.js';
import { resizeStack } from './resize.js';
import { type SliceSelection, type SliceStack, extractAxialSlices, sliceIndices, withSliceData } from './slices.js';
import type { Volume } from './volume.js';

/** In-plane size of the model input (the paper: 160 × 160). */
export const MODEL_SLICE_SIZE = 160;

/** The paper's slices at inference: brain every 8th (32 of 256), abdomen every 16th (32 of 512). */
export function inferenceSliceSelection(region: Region): SliceSelection {
  return region === 'brain' ? { every: 8 } : { every: 16 };
}

export interface PreprocessOptions {
  readonly region: Region;
  /** Which axial slices; default `inferenceSliceSelection(region)`. */
  readonly slices?: SliceSelection;
  /** Output height = width; default MODEL_SLICE_SIZE. */
  readonly size?: number;
  /** Default `normalisationFor(region)`; pass the one stored with the weights when it differs. */
  readonly normalisation?: Normalisation;
}

export function preprocessForModel(volume: Volume, options: PreprocessOptions): SliceStack {
  const zs = sliceIndices(volume.shape[2], options.slices ?? inferenceSliceSelection(options.region));
  return preprocessSlicesForModel(volume, zs, options);
}

/** `preprocessForModel` on explicit, strictly increasing z indices (e.g. the planes that hold foreground). */
export function preprocessSlicesForModel(volume: Volume, zs: readonly number[], options: Omit<PreprocessOptions, 'slices'>): SliceStack {
  const size = options.size ?? MODEL_SLICE_SIZE;
  const normalisation = options.normalisation ?? normalisationFor(options.region);
  const resized = resizeStack(extractAxialSlices(volume, zs), size, size);
  const statistics =
    normalisation.kind === 'foreground-zscore' ? foregroundStatistics(volume.data, normalisation.threshold) : undefined;
  return withSliceData(resized, normalise(resized.data, normalisation, statistics));
}

/** The value empty space (input 0) has after normalisation: 0 for the brain z-score, the offset for linear. */
export function normalisedBackground(normalisation: Normalisation): number {
  return normalisation.kind === 'linear' ? normalisation.offset : 0;
}
