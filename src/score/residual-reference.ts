/**
 * A restoration method's normal residual reference: the per-place mean and spread of the smoothed
 * restoration residual over normal volumes (./place-reference.ts on the slice plane), stored next to
 * the weights by the method's `calibrate … --reference-data DIR --set reference=on`. The VQ-VAE
 * reconstructs edges, sulci and the skull imperfectly in every case; standardising by what it gets
 * wrong on normal anatomy at each place leaves the anomalies' excess (as DISYRE's map does).
 * The method records how its maps were made (`recipe`) and which networks made them.
 */
import { InputFileError } from '../errors.js';
import type { SliceStack } from '../volume/slices.js';
import { referenceOnStack, standardisedMap, type ResidualReference } from './place-reference.js';
import { readPlaceReference, writePlaceReference } from './place-reference-file.js';
import type { ReferenceFileName } from './code-nll-reference.js';
import { DEFAULT_RESIDUAL_REFERENCE_FLOOR, RESIDUAL_Z_SCALE } from './reference-chain.js';

export interface StoredResidualReference<R> {
  readonly reference: ResidualReference;
  /** What shaped the maps the reference averages (a map made otherwise is standardised only approximately). */
  readonly recipe: R;
  /** The fingerprints of the networks the residuals came from. */
  readonly networks: string;
  readonly files: readonly string[];
}

/** How a method reads its recipe back: the typed recipe, or null when malformed (then `fields` names what it must hold). */
export interface RecipeReader<R> {
  readonly parse: (raw: unknown) => R | null;
  readonly fields: string;
}

export function readResidualReference<R>(weightsDir: string, file: ReferenceFileName, recipe: RecipeReader<R>): StoredResidualReference<R> | null {
  const stored = readPlaceReference(weightsDir, file.name, file.kind);
  if (stored === null) return null;
  const { networks, files } = stored.config;
  const parsed = recipe.parse(stored.config.recipe);
  if (parsed === null) throw new InputFileError(stored.file, `config.recipe must hold ${recipe.fields} (the maps the reference averages)`);
  return { reference: stored.reference, recipe: parsed, networks: typeof networks === 'string' ? networks : '', files: Array.isArray(files) ? (files as string[]) : [] };
}

export async function writeResidualReference<R>(weightsDir: string, file: ReferenceFileName, record: StoredResidualReference<R>): Promise<string> {
  return writePlaceReference(weightsDir, file.name, file.kind, record.reference, { recipe: record.recipe, networks: record.networks, files: record.files });
}

/** The names of the recipe's fields where `a` and `b` differ. */
export function recipeDifferences<R extends object>(a: R, b: R): string[] {
  return (Object.keys(a) as (keyof R & string)[]).filter((key) => JSON.stringify(a[key]) !== JSON.stringify(b[key]));
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
