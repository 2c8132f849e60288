/**
 * LSGS's normal references, built by `calibrate lsgs --reference-data DIR` and stored next to the
 * weights: the transformer's code NLL per place (`lsgs-nll-reference.json/.bin`, for the `interior`
 * sample aggregates; src/score/code-nll-reference.ts) and, with `--set reference=on`, the smoothed
 * parallel-restoration residual per place (`lsgs-residual-reference.json/.bin`;
 * src/score/residual-reference.ts).
 */
import { networkFingerprint, readCodeNllReference, writeCodeNllReference, type CodeNllReference, type ReferenceFileName } from '../../score/code-nll-reference.js';
import { readResidualReference, writeResidualReference, type RecipeReader, type StoredResidualReference } from '../../score/residual-reference.js';
import { LSGS_VQVAE_NAME, TRANSFORMER_NAME } from './networks.js';
import type { LsgsScoring } from './scoring.js';

export const LSGS_NLL_REFERENCE: ReferenceFileName = Object.freeze({ name: 'lsgs-nll-reference', kind: 'lsgs-nll-reference' });
export const LSGS_RESIDUAL_REFERENCE: ReferenceFileName = Object.freeze({ name: 'lsgs-residual-reference', kind: 'lsgs-residual-reference' });

/** The transformer's fingerprint (what the NLLs depend on). */
export function transformerFingerprint(weightsDir: string): string {
  return networkFingerprint(weightsDir, TRANSFORMER_NAME);
}

/** Both networks' fingerprints (what a restoration residual depends on). */
export function lsgsNetworksFingerprint(weightsDir: string): string {
  return `${networkFingerprint(weightsDir, LSGS_VQVAE_NAME)}+${transformerFingerprint(weightsDir)}`;
}

export function readLsgsNllReference(weightsDir: string): CodeNllReference | null {
  return readCodeNllReference(weightsDir, LSGS_NLL_REFERENCE);
}

export async function writeLsgsNllReference(weightsDir: string, record: CodeNllReference): Promise<string> {
  return writeCodeNllReference(weightsDir, LSGS_NLL_REFERENCE, record);
}

/** What shaped the residual maps the reference averages. */
export interface LsgsResidualRecipe {
  readonly lambdaP: number;
  readonly copies: number;
  readonly rounds: number;
  readonly k: number;
  readonly foregroundMask: boolean;
  readonly smoothing: LsgsScoring['smoothing'] | null;
}

export type LsgsResidualReference = StoredResidualReference<LsgsResidualRecipe>;

const RECIPE: RecipeReader<LsgsResidualRecipe> = {
  fields: 'lambdaP, copies, rounds, k, foregroundMask and smoothing',
  parse(x) {
    const r = x as Partial<LsgsResidualRecipe> | null;
    const ok =
      r !== null && typeof r === 'object' && typeof r.lambdaP === 'number' && typeof r.copies === 'number' && typeof r.rounds === 'number' && typeof r.k === 'number' &&
      typeof r.foregroundMask === 'boolean' && (r.smoothing === null || (typeof r.smoothing === 'object' && r.smoothing !== undefined));
    return ok ? (r as LsgsResidualRecipe) : null;
  },
};

export function readLsgsResidualReference(weightsDir: string): LsgsResidualReference | null {
  return readResidualReference(weightsDir, LSGS_RESIDUAL_REFERENCE, RECIPE);
}

export async function writeLsgsResidualReference(weightsDir: string, record: LsgsResidualReference): Promise<string> {
  return writeResidualReference(weightsDir, LSGS_RESIDUAL_REFERENCE, record);
}
