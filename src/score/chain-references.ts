/**
 * The normal references a code-prior method's chosen scoring chain reads (./reference-chain.ts), loaded
 * when its predictor is built, so that a missing one fails before any case is scored and a stale one
 * (built with other networks or another residual recipe) warns once.
 */
import { InputFileError } from '../errors.js';
import { manifestPath } from '../io/tensor-bundle.js';
import type { CodeNllReference, ReferenceFileName } from './code-nll-reference.js';
import type { ResidualReference } from './place-reference.js';
import { needsNllReference } from './reference-chain.js';
import { recipeDifferences, type StoredResidualReference } from './residual-reference.js';

/** Where a method keeps its references and what it checks them against. */
export interface ChainReferenceSources<R extends object> {
  /** The method's name in messages and in the command that rebuilds the references (`calibrate <method>`). */
  readonly method: string;
  readonly weightsDir: string;
  readonly nllFile: ReferenceFileName;
  readonly readNll: (weightsDir: string) => CodeNllReference | null;
  /** What the method calls the network whose NLLs the reference holds (prior, transformer). */
  readonly priorName: string;
  readonly priorFingerprint: (weightsDir: string) => string;
  readonly residualFile: ReferenceFileName;
  readonly readResidual: (weightsDir: string) => StoredResidualReference<R> | null;
  readonly networksFingerprint: (weightsDir: string) => string;
}

export interface LoadedChainReferences {
  /** The prior's per-place NLL reference, when the sample aggregate reads it. */
  readonly nll: ResidualReference | null;
  /** The residual reference, when the chain standardises the pixel map by it. */
  readonly residual: ResidualReference | null;
  readonly warnings: readonly string[];
}

/**
 * Loads what the chain (`sample`, `reference`) reads; `recipe` is how this chain makes its residual maps,
 * compared with the recipe the residual reference was built with.
 */
export function loadChainReferences<R extends object>(sources: ChainReferenceSources<R>, chain: { readonly sample: string; readonly reference: boolean; readonly recipe: R }): LoadedChainReferences {
  const { method, weightsDir: dir } = sources;
  const warnings: string[] = [];
  let nll: ResidualReference | null = null;
  if (needsNllReference(chain.sample)) {
    const file = manifestPath(dir, sources.nllFile.name);
    const record = sources.readNll(dir);
    if (record === null) throw new InputFileError(file, `${method} sample=${chain.sample} needs it: build it with calibrate ${method} --reference-data DIR`);
    if (record.prior !== sources.priorFingerprint(dir)) {
      warnings.push(`warning: ${file} was built with another ${sources.priorName}; rebuild it (calibrate ${method} --reference-data DIR)`);
    }
    nll = record.reference;
  }
  let residual: ResidualReference | null = null;
  if (chain.reference) {
    const file = manifestPath(dir, sources.residualFile.name);
    const record = sources.readResidual(dir);
    const rebuild = `calibrate ${method} --reference-data DIR --set reference=on`;
    if (record === null) throw new InputFileError(file, `${method} reference=on needs it: build it with ${rebuild}`);
    const differs = recipeDifferences(record.recipe, chain.recipe);
    if (record.networks !== sources.networksFingerprint(dir)) differs.push('networks');
    if (differs.length > 0) warnings.push(`warning: ${file} was built with other ${differs.join(', ')}; its standardisation is approximate (rebuild it: ${rebuild})`);
    residual = record.reference;
  }
  return { nll, residual, warnings };
}
