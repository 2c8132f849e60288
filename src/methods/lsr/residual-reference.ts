/**
 * LSR's normal residual reference: the per-place mean and spread of the smoothed restoration residual
 * over normal volumes (src/score/place-reference.ts on the slice plane), stored next to the weights as
 * `lsr-residual-reference.json/.bin` by `calibrate lsr --reference-data DIR --set reference=on`. The
 * VQ-VAE reconstructs edges, sulci and the skull imperfectly in every case; standardising by what it
 * gets wrong on normal anatomy at each place leaves the anomalies' excess (as DISYRE's map does).
 */
import { referenceOnStack, standardisedMap, type ResidualReference } from '../../score/place-reference.js';
import { readPlaceReference, writePlaceReference } from '../../score/place-reference-file.js';
import { InputFileError } from '../../errors.js';
import type { SliceStack } from '../../volume/slices.js';
import { DEFAULT_RESIDUAL_REFERENCE_FLOOR, RESIDUAL_Z_SCALE, type LsrScoring } from './scoring.js';

export const LSR_RESIDUAL_REFERENCE_NAME = 'lsr-residual-reference';
export const LSR_RESIDUAL_REFERENCE_KIND = 'lsr-residual-reference';

/** What shaped the maps the reference averages (a map made otherwise is standardised only approximately). */
export interface ResidualMapRecipe {
  readonly lambdaP: number;
  readonly copies: number;
  readonly k: number;
  readonly weighting: LsrScoring['weighting'];
  readonly smoothing: LsrScoring['smoothing'] | null;
}

export interface LsrResidualReference {
  readonly reference: ResidualReference;
  readonly recipe: ResidualMapRecipe;
  /** binarySha256 of the prior and of the VQ-VAE the residuals came from. */
  readonly networks: string;
  readonly files: readonly string[];
}

export function readLsrResidualReference(weightsDir: string): LsrResidualReference | null {
  const stored = readPlaceReference(weightsDir, LSR_RESIDUAL_REFERENCE_NAME, LSR_RESIDUAL_REFERENCE_KIND);
  if (stored === null) return null;
  const { recipe, networks, files } = stored.config;
  if (!isRecipe(recipe)) throw new InputFileError(stored.file, 'config.recipe must hold lambdaP, copies, k, weighting and smoothing (the maps the reference averages)');
  return {
    reference: stored.reference,
    // λp = ∞ (no resampling) is null in JSON
    recipe: { ...recipe, lambdaP: recipe.lambdaP ?? Infinity },
    networks: typeof networks === 'string' ? networks : '',
    files: Array.isArray(files) ? (files as string[]) : [],
  };
}

function isRecipe(x: unknown): x is ResidualMapRecipe {
  const r = x as Partial<ResidualMapRecipe> | null;
  return (
    r !== null && typeof r === 'object' && (typeof r.lambdaP === 'number' || r.lambdaP === null) && typeof r.copies === 'number' && typeof r.k === 'number' &&
    typeof r.weighting === 'string' && (r.smoothing === null || (typeof r.smoothing === 'object' && r.smoothing !== undefined))
  );
}

export async function writeLsrResidualReference(weightsDir: string, record: LsrResidualReference): Promise<string> {
  return writePlaceReference(weightsDir, LSR_RESIDUAL_REFERENCE_NAME, LSR_RESIDUAL_REFERENCE_KIND, record.reference, {
    recipe: record.recipe,
    networks: record.networks,
    files: record.files,
  });
}

/** The names of the recipe's fields where `a` and `b` differ. */
export function recipeDifferences(a: ResidualMapRecipe, b: ResidualMapRecipe): string[] {
  return (Object.keys(a) as (keyof ResidualMapRecipe)[]).filter((key) => JSON.stringify(a[key]) !== JSON.stringify(b[key]));
}

/** The band [0, ZERO_EXCESS_BAND) holds the places with no excess over the reference, ordered by their raw residual. */
export const ZERO_EXCESS_BAND = 0.01;

/**
 * The smoothed stack map standardised by the reference at each of the stack's places, in [0, 1).
 * Places with an excess over the reference map affinely into [ZERO_EXCESS_BAND, 1) (their order is the
 * standardised one); the rest, about nine in ten voxels of a normal brain, would all tie at 0, so they
 * keep the order of their raw residual v / (v + pixelScale) inside [0, ZERO_EXCESS_BAND).
 */
export function standardisedResidual(
  smoothed: Float32Array,
  stack: Pick<SliceStack, 'count' | 'height' | 'width' | 'positions'>,
  reference: ResidualReference,
  pixelScale: number,
  floor = DEFAULT_RESIDUAL_REFERENCE_FLOOR,
): Float32Array {
  const at = referenceOnStack(reference, stack);
  const z = standardisedMap(smoothed, at.mean, at.sd, floor, RESIDUAL_Z_SCALE);
  for (let i = 0; i < z.length; i++) {
    const v = smoothed[i]!;
    z[i] = z[i]! > 0 ? ZERO_EXCESS_BAND + (1 - ZERO_EXCESS_BAND) * z[i]! : v > 0 ? (ZERO_EXCESS_BAND * v) / (v + pixelScale) : 0;
  }
  return z;
}
