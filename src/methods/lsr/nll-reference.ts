/**
 * LSR's normal NLL reference (src/score/code-nll-reference.ts): the prior's code NLL per place over
 * normal volumes, stored next to the weights as `lsr-nll-reference.json/.bin` by
 * `calibrate lsr --reference-data DIR`, for the `interior` sample aggregates.
 */
import { networkFingerprint, readCodeNllReference, writeCodeNllReference, type CodeNllReference, type ReferenceFileName } from '../../score/code-nll-reference.js';
import { PRIOR_NAME, VQVAE_NAME } from './networks.js';

export { interiorSampleRaw, networkFingerprint } from '../../score/code-nll-reference.js';

export const LSR_NLL_REFERENCE_NAME = 'lsr-nll-reference';
export const LSR_NLL_REFERENCE_KIND = 'lsr-nll-reference';
export const LSR_NLL_REFERENCE_FILE: ReferenceFileName = Object.freeze({ name: LSR_NLL_REFERENCE_NAME, kind: LSR_NLL_REFERENCE_KIND });

export type LsrNllReference = CodeNllReference;

/** The prior's fingerprint (what the NLLs depend on). */
export function priorFingerprint(weightsDir: string): string {
  return networkFingerprint(weightsDir, PRIOR_NAME);
}

/** Both networks' fingerprints (what a restoration residual depends on). */
export function networksFingerprint(weightsDir: string): string {
  return `${networkFingerprint(weightsDir, VQVAE_NAME)}+${priorFingerprint(weightsDir)}`;
}

export function readLsrNllReference(weightsDir: string): LsrNllReference | null {
  return readCodeNllReference(weightsDir, LSR_NLL_REFERENCE_FILE);
}

export async function writeLsrNllReference(weightsDir: string, record: LsrNllReference): Promise<string> {
  return writeCodeNllReference(weightsDir, LSR_NLL_REFERENCE_FILE, record);
}
