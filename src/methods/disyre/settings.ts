/**
 * DISYRE's scoring choices (what `predict --set key=value` and `leaderboard --method 'disyre{k=v}@DIR'`
 * can change) with their defaults, parsed from text. Light module: the method's index.ts imports it.
 */
import type { SettingSpec } from '../../score/settings.js';
import { settingInteger, settingNumber } from '../../score/settings.js';
import { parseVoxelKernel, type VoxelKernel } from '../../score/smoothing.js';

export interface DisyreScoring {
  /** Corruption levels t the input is restored at; the map is the mean |x − x̂| over them. */
  readonly levels: readonly number[];
  /** Every how many axial slices the network runs (the rest is interpolated). */
  readonly every: number;
  /** Min-pool then average-pool kernels (in-plane pixels of the network's grid, z in voxels). */
  readonly min: VoxelKernel;
  readonly avg: VoxelKernel;
  /** Zero the map outside the hole-filled body mask. */
  readonly mask: boolean;
  /** Sample score = mean of this top fraction of the masked map's voxels. */
  readonly fraction: number;
  /** Standardise the map by the weights' normal residual reference (./reference.ts) when they have one. */
  readonly reference: boolean;
  /** σ floor of that standardisation, in map units (the map is a mean |x − x̂| of [0, 1] intensities). */
  readonly referenceFloor: number;
  /** z ↦ u / (1 + u), u = z / zScale: the standardised map into [0, 1). */
  readonly zScale: number;
  /** Which map scores: the restoration residual, the segmentation head's probabilities, or their mean or maximum (both in [0, 1)). */
  readonly map: DisyreMapKind;
}

export const DISYRE_MAP_KINDS = ['residual', 'segmentation', 'mean', 'max'] as const;
export type DisyreMapKind = (typeof DISYRE_MAP_KINDS)[number];

export const DEFAULT_DISYRE_SCORING: DisyreScoring = Object.freeze({
  levels: Object.freeze([0.25, 0.5, 0.75, 1]),
  every: 3,
  min: [3, 3, 1] as const,
  avg: [5, 5, 7] as const,
  mask: true,
  fraction: 0.001,
  reference: true,
  referenceFloor: 0.002,
  zScale: 10,
  map: 'residual',
});

export const DISYRE_SETTINGS: readonly SettingSpec[] = [
  { key: 'levels', help: 'corruption levels t the input is restored at, e.g. 0.25;0.5;0.75;1 (";"- or space-separated, each in (0, 1]; default 4 levels)' },
  { key: 'every', help: 'run the network on every N-th axial slice, interpolate between (integer ≥ 1, default 3)' },
  { key: 'min', help: 'min-pool kernel "X,Y,Z" (odd; x, y in network pixels, z in voxels; default 3,3,1)' },
  { key: 'avg', help: 'average-pool kernel "X,Y,Z" (default 5,5,7)' },
  { key: 'mask', help: 'on or off: zero the map outside the body mask (default on)' },
  { key: 'fraction', help: 'sample score = mean of the top fraction of the masked map (0 < f ≤ 1, default 0.001)' },
  { key: 'reference', help: 'on or off: standardise the map by the normal residual reference of the weights, when they have one (default on)' },
  { key: 'referenceFloor', help: 'σ floor of that standardisation (> 0, default 0.002)' },
  { key: 'zScale', help: 'the standardised map z goes into [0, 1) as u / (1 + u), u = z / zScale (> 0, default 10)' },
  { key: 'map', help: `which map scores: ${DISYRE_MAP_KINDS.join(', ')} (segmentation, mean and max need a network with the segmentation head; default residual)` },
];

/** Parses a list of levels separated by ';', '/', or whitespace (',' separates leaderboard settings). */
export function parseLevels(key: string, text: string): number[] {
  const parts = text.split(/[;/\s]+/).filter((p) => p.length > 0);
  if (parts.length === 0) throw new Error(`--set ${key}: expected at least one level in (0, 1], got "${text}"`);
  return parts.map((p) => {
    const v = Number(p);
    if (!(v > 0 && v <= 1)) throw new Error(`--set ${key}: every level must be in (0, 1], got "${p}"`);
    return v;
  });
}

/** `base` with the overrides applied; a bad value names its key. */
export function disyreScoring(base: DisyreScoring, overrides: Readonly<Record<string, string>>): DisyreScoring {
  let out: DisyreScoring = base;
  for (const [key, value] of Object.entries(overrides)) {
    switch (key) {
      case 'levels':
        out = { ...out, levels: parseLevels(key, value) };
        break;
      case 'every':
        out = { ...out, every: settingInteger(key, value, 1) };
        break;
      case 'min':
      case 'avg':
        try {
          out = { ...out, [key]: parseVoxelKernel(value) };
        } catch (err) {
          throw new Error(`--set ${key}: ${(err as Error).message}`);
        }
        break;
      case 'mask':
      case 'reference':
        if (value !== 'on' && value !== 'off') throw new Error(`--set ${key}: expected on or off, got "${value}"`);
        out = { ...out, [key]: value === 'on' };
        break;
      case 'referenceFloor':
      case 'zScale': {
        const v = settingNumber(key, value, 0);
        if (!(v > 0)) throw new Error(`--set ${key}: expected a number > 0, got "${value}"`);
        out = { ...out, [key]: v };
        break;
      }
      case 'map':
        if (!(DISYRE_MAP_KINDS as readonly string[]).includes(value)) throw new Error(`--set map: expected one of ${DISYRE_MAP_KINDS.join(', ')}, got "${value}"`);
        out = { ...out, map: value as DisyreMapKind };
        break;
      case 'fraction': {
        const f = settingNumber(key, value, 0);
        if (!(f > 0 && f <= 1)) throw new Error(`--set fraction: expected a number in (0, 1], got "${value}"`);
        out = { ...out, fraction: f };
        break;
      }
      default:
        throw new Error(`--set ${key}: disyre has no such setting (known: ${DISYRE_SETTINGS.map((s) => s.key).join(', ')})`);
    }
  }
  return out;
}

/** A stored scoring with the fields added since it was written filled from the defaults (their behaviour then: no reference, the residual map). */
export function completeDisyreScoring(x: unknown): unknown {
  if (x === null || typeof x !== 'object') return x;
  const s = x as Partial<DisyreScoring>;
  return { ...s, reference: s.reference ?? false, referenceFloor: s.referenceFloor ?? DEFAULT_DISYRE_SCORING.referenceFloor, zScale: s.zScale ?? DEFAULT_DISYRE_SCORING.zScale, map: s.map ?? 'residual' };
}

/** Whether a stored value is a valid DisyreScoring (calibration files keep the scoring they were fitted with). */
export function isDisyreScoring(x: unknown): x is DisyreScoring {
  const s = x as Partial<DisyreScoring>;
  const kernel = (k: unknown) => Array.isArray(k) && k.length === 3 && k.every((v) => Number.isInteger(v) && v >= 1 && v % 2 === 1);
  return (
    s !== null && typeof s === 'object' && Array.isArray(s.levels) && s.levels.length > 0 && s.levels.every((v) => typeof v === 'number' && v > 0 && v <= 1) &&
    typeof s.every === 'number' && Number.isInteger(s.every) && s.every >= 1 && kernel(s.min) && kernel(s.avg) && typeof s.mask === 'boolean' &&
    typeof s.fraction === 'number' && s.fraction > 0 && s.fraction <= 1 &&
    typeof s.reference === 'boolean' && typeof s.referenceFloor === 'number' && s.referenceFloor > 0 && typeof s.zScale === 'number' && s.zScale > 0 &&
    (DISYRE_MAP_KINDS as readonly string[]).includes(s.map as string)
  );
}
