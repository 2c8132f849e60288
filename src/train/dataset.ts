/**
 * Training data from folders of NIfTI volumes.
 *
 * `openVolumeFolder` lists the .nii / .nii.gz files of the given folders (sorted by path), reads them
 * one at a time, and keeps only each volume's preprocessed slice stack at model resolution (the full
 * volume, up to 512³ floats, is dropped as soon as its stack is made). A file is skipped, with one
 * warning line naming it and the reason, when it cannot be read, has non-finite voxels, has no brain
 * foreground (brain region), or has a shape other than the most common one among the readable files.
 * When nothing usable is left the call throws an InputFileError naming the folders.
 *
 * Which slices are kept for training: up to `maxSlicesPerVolume` (default 64) axial slices evenly
 * spread from the first to the last (all of them when the volume has fewer). That is twice the
 * inference density (every 8th of 256 = 32 slices) and half the intermediate z positions, at
 * 64 × 160 × 160 floats = 6.6 MB per volume. Each slice carries slicePosition(z, nz), the same
 * conditioning value inference computes for that z, and goes through the same `preprocessForModel`
 * as inference.
 *
 * `sliceRule: 'foreground'` instead keeps every axial plane whose foreground (raw voxels > 0.05, the brain
 * threshold; the abdomen's background is 0 too) covers at least `minForegroundFraction` of the plane
 * (default 1 %: Colin27 variants keep ~170 of 256 planes; the every-64 rule kept ~16 empty ones of 64).
 * `maxSlicesPerVolume`, when given, then caps that list by even subsampling.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createRng, shuffled } from '../engine/random.js';
import { InputFileError, describeError } from '../errors.js';
import { countNonFinite, isNiftiFileName, readNifti } from '../io/nifti.js';
import { type Normalisation, type Region, foregroundStatistics, normalisationFor } from '../volume/normalise.js';
import { preprocessForModel, preprocessSlicesForModel } from '../volume/preprocess.js';
import type { SliceSelection, SliceStack } from '../volume/slices.js';
import type { Shape3 } from '../volume/volume.js';
import { readCachedStack, stackCacheKey, writeCachedStack } from './stack-cache.js';

export const DEFAULT_MAX_TRAINING_SLICES = 64;

/** How a training volume's slices are chosen: `even` (up to maxSlicesPerVolume evenly spread) or `foreground`. */
export type TrainingSliceRule = 'even' | 'foreground';
export const TRAINING_SLICE_RULES: readonly TrainingSliceRule[] = ['even', 'foreground'];
/** Raw intensity above which a voxel counts as foreground for slice selection. */
export const FOREGROUND_SLICE_THRESHOLD = 0.05;
/** Default minimum fraction of a plane's voxels that must be foreground. */
export const DEFAULT_MIN_FOREGROUND_FRACTION = 0.01;

/**
 * The z indices (increasing) of the axial planes of a volume (x fastest, then y, then z) in which at
 * least `minFraction` of the voxels exceed `threshold`.
 */
export function foregroundSliceIndices(
  data: Float32Array,
  shape: Shape3,
  minFraction: number = DEFAULT_MIN_FOREGROUND_FRACTION,
  threshold: number = FOREGROUND_SLICE_THRESHOLD,
): number[] {
  if (!(minFraction >= 0 && minFraction <= 1)) throw new RangeError(`minFraction must be in [0, 1], got ${minFraction}`);
  const [nx, ny, nz] = shape;
  const plane = nx * ny;
  if (data.length !== plane * nz) throw new RangeError(`data holds ${data.length} values, shape ${shape.join('×')} needs ${plane * nz}`);
  const need = Math.max(1, Math.ceil(minFraction * plane));
  const zs: number[] = [];
  for (let z = 0; z < nz; z++) {
    let count = 0;
    const end = (z + 1) * plane;
    for (let i = z * plane; i < end; i++) if (data[i]! > threshold) count++;
    if (count >= need) zs.push(z);
  }
  return zs;
}

/** Up to `max` of `zs`, evenly spread (all of them when there are at most `max`). */
export function capSlices(zs: readonly number[], max: number | undefined): number[] {
  if (max === undefined || zs.length <= max) return [...zs];
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxSlicesPerVolume must be a positive integer, got ${max}`);
  if (max === 1) return [zs[Math.floor((zs.length - 1) / 2)]!];
  return Array.from({ length: max }, (_, i) => zs[Math.round((i * (zs.length - 1)) / (max - 1))]!);
}

export interface VolumeEntry {
  readonly file: string;
  /** Shape of the volume on disk. */
  readonly shape: Shape3;
  /** The preprocessed slices (model resolution, normalised, with positions). */
  readonly stack: SliceStack;
}

export interface SkippedFile {
  readonly file: string;
  readonly reason: string;
}

export interface VolumeFolder {
  readonly files: VolumeEntry[];
  readonly skipped: SkippedFile[];
  /** The shape every kept volume has. */
  readonly shape: Shape3;
}

export interface OpenVolumeFolderOptions {
  readonly region: Region;
  /** One line per skipped file; default: console.warn. */
  readonly log?: (line: string) => void;
  /** Called after each file (read or skipped). */
  readonly onProgress?: (done: number, total: number, file: string) => void;
  /** Slices kept per volume; default `trainingSliceSelection(nz)`. */
  readonly slices?: SliceSelection;
  readonly maxSlicesPerVolume?: number;
  /** Default 'even' (ignored when `slices` is given). */
  readonly sliceRule?: TrainingSliceRule;
  /** For sliceRule 'foreground'; default DEFAULT_MIN_FOREGROUND_FRACTION. */
  readonly minForegroundFraction?: number;
  /** Folder of cached preprocessed stacks (./stack-cache.ts): read when present, written after preprocessing. */
  readonly cacheDir?: string;
  /** In-plane size of the stacks; default MODEL_SLICE_SIZE (160). */
  readonly size?: number;
  readonly normalisation?: Normalisation;
}

/** Up to `maxSlices` slices evenly spread over all nz (all of them when nz ≤ maxSlices). */
export function trainingSliceSelection(nz: number, maxSlices = DEFAULT_MAX_TRAINING_SLICES): SliceSelection {
  return nz <= maxSlices ? 'all' : { count: maxSlices };
}

/**
 * The NIfTI files in `paths` (folders, not recursive; a path that is itself a NIfTI file is taken as
 * is), without duplicates, sorted by path. A missing path or a non-NIfTI file throws InputFileError.
 */
export async function listNiftiFiles(paths: readonly string[]): Promise<string[]> {
  const files = new Set<string>();
  for (const path of paths) {
    let info;
    try {
      info = await stat(path);
    } catch {
      throw new InputFileError(path, 'no such folder or file');
    }
    if (info.isDirectory()) {
      const names = await readdir(path, { withFileTypes: true });
      for (const entry of names) {
        if (isNiftiFileName(entry.name) && !entry.isDirectory()) files.add(join(path, entry.name));
      }
    } else if (isNiftiFileName(path)) {
      files.add(path);
    } else {
      throw new InputFileError(path, 'neither a folder nor a NIfTI file (.nii, .nii.gz)');
    }
  }
  return [...files].sort(byCodeUnits);
}

export async function openVolumeFolder(
  dirs: readonly string[],
  options: OpenVolumeFolderOptions,
): Promise<VolumeFolder> {
  const log = options.log ?? ((line: string) => console.warn(line));
  const where = dirs.join(', ') || '(no folder given)';
  const files = await listNiftiFiles(dirs);
  if (files.length === 0) throw new InputFileError(where, 'no NIfTI files (.nii, .nii.gz) found');

  const normalisation = options.normalisation ?? normalisationFor(options.region);
  const skipped: SkippedFile[] = [];
  const skip = (file: string, reason: string): void => {
    skipped.push({ file, reason });
    log(`skipping ${file}: ${reason}`);
  };

  const readable: VolumeEntry[] = [];
  for (const [done, file] of files.entries()) {
    const result = await readEntry(file, options, normalisation);
    if ('reason' in result) skip(file, result.reason);
    else readable.push(result);
    options.onProgress?.(done + 1, files.length, file);
  }

  const shape = majorityShape(readable.map((e) => e.shape));
  const kept: VolumeEntry[] = [];
  for (const entry of readable) {
    if (shape && sameShape(entry.shape, shape)) kept.push(entry);
    else skip(entry.file, `shape ${formatShape(entry.shape)} differs from the other volumes' ${formatShape(shape!)}`);
  }
  if (kept.length === 0 || !shape) {
    const reasons = skipped
      .slice(0, 3)
      .map((s) => `${s.file}: ${s.reason}`)
      .join('; ');
    const more = skipped.length > 3 ? `; and ${skipped.length - 3} more` : '';
    throw new InputFileError(where, `none of the ${files.length} NIfTI files is usable (${reasons}${more})`);
  }
  return { files: kept, skipped, shape };
}

async function readEntry(
  file: string,
  options: OpenVolumeFolderOptions,
  normalisation: Normalisation,
): Promise<VolumeEntry | SkippedFile> {
  let key: string | null = null;
  if (options.cacheDir !== undefined) {
    const preparation = {
      region: options.region,
      size: options.size ?? null,
      normalisation,
      slices: options.slices ?? null,
      rule: options.sliceRule ?? 'even',
      minForegroundFraction: options.minForegroundFraction ?? null,
      maxSlicesPerVolume: options.maxSlicesPerVolume ?? null,
    };
    try {
      key = stackCacheKey(file, preparation);
    } catch {
      key = null; // unreadable: readNifti below names the reason
    }
    const hit = key === null ? null : readCachedStack(options.cacheDir, key);
    if (hit !== null) return { file, shape: hit.shape, stack: hit.stack };
  }
  const entry = await prepareEntry(file, options, normalisation);
  if (key !== null && !('reason' in entry)) await writeCachedStack(options.cacheDir!, key, entry.shape, entry.stack);
  return entry;
}

async function prepareEntry(
  file: string,
  options: OpenVolumeFolderOptions,
  normalisation: Normalisation,
): Promise<VolumeEntry | SkippedFile> {
  let volume;
  try {
    ({ volume } = await readNifti(file));
  } catch (err) {
    const reason = err instanceof InputFileError ? err.reason : describeError(err);
    return { file, reason: `unreadable: ${reason}` };
  }
  const nonFinite = countNonFinite(volume.data);
  if (nonFinite > 0) return { file, reason: `${nonFinite} NaN or infinite voxels` };
  if (normalisation.kind === 'foreground-zscore') {
    if (foregroundStatistics(volume.data, normalisation.threshold).count === 0) {
      return { file, reason: `no foreground voxel (every value ≤ ${normalisation.threshold})` };
    }
  }
  const foreground = options.slices === undefined && options.sliceRule === 'foreground';
  let zs: number[] | null = null;
  if (foreground) {
    const fraction = options.minForegroundFraction ?? DEFAULT_MIN_FOREGROUND_FRACTION;
    zs = capSlices(foregroundSliceIndices(volume.data, volume.shape, fraction), options.maxSlicesPerVolume);
    if (zs.length === 0) return { file, reason: `no axial plane with ≥ ${(fraction * 100).toFixed(1)} % foreground (voxels > ${FOREGROUND_SLICE_THRESHOLD})` };
  }
  const slices = options.slices ?? trainingSliceSelection(volume.shape[2], options.maxSlicesPerVolume);
  try {
    const stack =
      zs !== null
        ? preprocessSlicesForModel(volume, zs, { region: options.region, size: options.size, normalisation })
        : preprocessForModel(volume, { region: options.region, slices, size: options.size, normalisation });
    return { file, shape: volume.shape, stack };
  } catch (err) {
    return { file, reason: describeError(err) };
  }
}

/** The most frequent shape; ties go to the one seen first. */
function majorityShape(shapes: readonly Shape3[]): Shape3 | null {
  const counts = new Map<string, { shape: Shape3; count: number }>();
  for (const shape of shapes) {
    const key = formatShape(shape);
    const seen = counts.get(key);
    if (seen) seen.count++;
    else counts.set(key, { shape, count: 1 });
  }
  let best: { shape: Shape3; count: number } | null = null;
  for (const candidate of counts.values()) if (!best || candidate.count > best.count) best = candidate;
  return best?.shape ?? null;
}

function sameShape(a: Shape3, b: Shape3): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2];
}

function formatShape(shape: Shape3): string {
  return shape.join('×');
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface SplitOptions {
  /** Fraction of the volumes held out (rounded, at least 1 when > 0). Give this or holdoutCount. */
  readonly holdoutFraction?: number;
  readonly holdoutCount?: number;
  readonly seed: number | string;
}

/**
 * A deterministic split into training and held-out volumes: the entries are ordered by file, shuffled
 * with `seed`, and the first k are held out. Same entries + same seed = same split, whatever the input
 * order. Both parts come back ordered by file; at least one volume always stays in training.
 */
export function splitVolumes<T extends { readonly file: string }>(
  entries: readonly T[],
  options: SplitOptions,
): { train: T[]; holdout: T[] } {
  const n = entries.length;
  const k = holdoutSize(n, options);
  const ordered = [...entries].sort((a, b) => byCodeUnits(a.file, b.file));
  const order = shuffled(
    ordered.map((_, i) => i),
    createRng(options.seed),
  );
  const held = new Set(order.slice(0, k));
  return {
    train: ordered.filter((_, i) => !held.has(i)),
    holdout: ordered.filter((_, i) => held.has(i)),
  };
}

function holdoutSize(n: number, options: SplitOptions): number {
  const { holdoutFraction, holdoutCount } = options;
  if ((holdoutFraction === undefined) === (holdoutCount === undefined)) {
    throw new RangeError('give exactly one of holdoutFraction and holdoutCount');
  }
  let k: number;
  if (holdoutCount !== undefined) {
    if (!Number.isInteger(holdoutCount) || holdoutCount < 0) {
      throw new RangeError(`holdoutCount must be a non-negative integer, got ${holdoutCount}`);
    }
    k = holdoutCount;
  } else {
    if (!(holdoutFraction! >= 0 && holdoutFraction! < 1)) {
      throw new RangeError(`holdoutFraction must be in [0, 1), got ${holdoutFraction}`);
    }
    k = holdoutFraction! > 0 ? Math.max(1, Math.round(holdoutFraction! * n)) : 0;
  }
  if (k > 0 && k >= n) {
    throw new RangeError(`cannot hold out ${k} of ${n} volumes and still train on at least one`);
  }
  return k;
}
