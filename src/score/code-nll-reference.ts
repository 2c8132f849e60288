/**
 * A code prior's normal NLL reference: the mean (and spread) of the prior's code NLL per place over
 * normal volumes (./place-reference.ts on the code grid), stored next to the weights by the method's
 * `calibrate … --reference-data DIR`. The `interior` sample aggregate subtracts it, so places where
 * every normal volume holds unlikely codes (the cerebellum's folds, the ventricles' edges) stop
 * outranking a compact anomaly.
 */
import { readFileSync } from 'node:fs';
import { manifestPath } from '../io/tensor-bundle.js';
import type { SliceStack } from '../volume/slices.js';
import { referenceOnStack, type ResidualReference } from './place-reference.js';
import { readPlaceReference, writePlaceReference } from './place-reference-file.js';
import { interiorReferenceExcess } from './sample-aggregates.js';

export interface CodeNllReference {
  readonly reference: ResidualReference;
  /** binarySha256 of the prior the NLLs came from (a reference of another prior does not apply). */
  readonly prior: string;
  readonly files: readonly string[];
}

/** Where a method keeps its NLL reference: the bundle's file name and kind. */
export interface ReferenceFileName {
  readonly name: string;
  readonly kind: string;
}

/** A network's fingerprint: the SHA-256 its manifest records for its binary ('' when it records none). */
export function networkFingerprint(weightsDir: string, name: string): string {
  const manifest = JSON.parse(readFileSync(manifestPath(weightsDir, name), 'utf8')) as { binarySha256?: unknown };
  return typeof manifest.binarySha256 === 'string' ? manifest.binarySha256 : '';
}

export function readCodeNllReference(weightsDir: string, file: ReferenceFileName): CodeNllReference | null {
  const stored = readPlaceReference(weightsDir, file.name, file.kind);
  if (stored === null) return null;
  const { prior, files } = stored.config;
  return { reference: stored.reference, prior: typeof prior === 'string' ? prior : '', files: Array.isArray(files) ? (files as string[]) : [] };
}

export async function writeCodeNllReference(weightsDir: string, file: ReferenceFileName, record: CodeNllReference): Promise<string> {
  return writePlaceReference(weightsDir, file.name, file.kind, record.reference, { prior: record.prior, files: record.files });
}

/**
 * The raw `interior` sample score of one encoded volume: NLL − the reference's mean at each code
 * (trilinear on the code grid at the stack's slice positions), boxed over the interior codes.
 */
export function interiorSampleRaw(nll: Float32Array, stack: Pick<SliceStack, 'data' | 'width' | 'count' | 'positions'>, codeSide: number, background: number, reference: ResidualReference): number {
  const { mean } = referenceOnStack(reference, { count: stack.count, height: codeSide, width: codeSide, positions: stack.positions });
  return interiorReferenceExcess(nll, { images: stack.data, size: stack.width, positions: stack.positions, codeSide, background }, mean);
}
