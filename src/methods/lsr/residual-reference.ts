/**
 * LSR's normal residual reference (src/score/residual-reference.ts), stored next to the weights as
 * `lsr-residual-reference.json/.bin` by `calibrate lsr --reference-data DIR --set reference=on`.
 */
import type { ReferenceFileName } from '../../score/code-nll-reference.js';
import { readResidualReference, writeResidualReference, type RecipeReader, type StoredResidualReference } from '../../score/residual-reference.js';
import type { LsrScoring } from './scoring.js';

export { recipeDifferences, standardisedResidual, ZERO_EXCESS_BAND } from '../../score/residual-reference.js';

export const LSR_RESIDUAL_REFERENCE_NAME = 'lsr-residual-reference';
export const LSR_RESIDUAL_REFERENCE_KIND = 'lsr-residual-reference';
export const LSR_RESIDUAL_REFERENCE_FILE: ReferenceFileName = Object.freeze({ name: LSR_RESIDUAL_REFERENCE_NAME, kind: LSR_RESIDUAL_REFERENCE_KIND });

/** What shaped the maps the reference averages (a map made otherwise is standardised only approximately). */
export interface ResidualMapRecipe {
  readonly lambdaP: number;
  readonly copies: number;
  readonly k: number;
  readonly weighting: LsrScoring['weighting'];
  readonly smoothing: LsrScoring['smoothing'] | null;
}

export type LsrResidualReference = StoredResidualReference<ResidualMapRecipe>;

const RECIPE: RecipeReader<ResidualMapRecipe> = {
  fields: 'lambdaP, copies, k, weighting and smoothing',
  parse(x) {
    const r = x as Partial<Omit<ResidualMapRecipe, 'lambdaP'>> & { lambdaP?: number | null } | null;
    const ok =
      r !== null && typeof r === 'object' && (typeof r.lambdaP === 'number' || r.lambdaP === null) && typeof r.copies === 'number' && typeof r.k === 'number' &&
      typeof r.weighting === 'string' && (r.smoothing === null || (typeof r.smoothing === 'object' && r.smoothing !== undefined));
    // λp = ∞ (no resampling) is null in JSON
    return ok ? ({ ...r, lambdaP: r.lambdaP ?? Infinity } as ResidualMapRecipe) : null;
  },
};

export function readLsrResidualReference(weightsDir: string): LsrResidualReference | null {
  return readResidualReference(weightsDir, LSR_RESIDUAL_REFERENCE_FILE, RECIPE);
}

export async function writeLsrResidualReference(weightsDir: string, record: LsrResidualReference): Promise<string> {
  return writeResidualReference(weightsDir, LSR_RESIDUAL_REFERENCE_FILE, record);
}
