/**
 * What a code-prior method's chosen scoring chain reads besides its networks (./reference-chain.ts): the
 * normal references and the sample calibration of the chosen aggregate, resolved when its predictor is
 * built, so that a missing one fails before any case is scored and a stale one (built with other networks
 * or another residual recipe) warns once.
 */
import { InputFileError } from '../errors.js';
import { manifestPath } from '../io/tensor-bundle.js';
import type { CodeNllReference, ReferenceFileName } from './code-nll-reference.js';
import type { SampleCalibration } from './calibration.js';
import type { ResidualReference } from './place-reference.js';
import { needsNllReference, sampleCalibrationFor, type SampleParts } from './reference-chain.js';
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
  /** The calibration file, named when it lacks what the chain needs. */
  readonly calibrationFile: string;
}

/** The chain a predictor runs, against what its calibration file holds. */
export interface ChosenChain<R extends object> {
  readonly sample: string;
  readonly reference: boolean;
  /** How this chain makes its residual maps, compared with the recipe the residual reference was built with. */
  readonly recipe: R;
  readonly calibration: { readonly sampleCalibration: SampleCalibration; readonly sampleParts?: SampleParts };
  /** The aggregate the stored `sampleCalibration` was fitted for. */
  readonly calibratedSample: string;
}

export interface LoadedChainReferences {
  /** The prior's per-place NLL reference, when the sample aggregate reads it. */
  readonly nll: ResidualReference | null;
  /** The residual reference, when the chain standardises the pixel map by it. */
  readonly residual: ResidualReference | null;
  /** The calibration the chosen sample aggregate's raw score goes through (reference-chain.ts sampleCalibrationFor). */
  readonly sampleCalibration: SampleCalibration;
  readonly warnings: readonly string[];
}

/** Loads the references the chain (`sample`, `reference`) reads and chooses its sample calibration. */
export function loadChainReferences<R extends object>(sources: ChainReferenceSources<R>, chain: ChosenChain<R>): LoadedChainReferences {
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
  const chosen = sampleCalibrationFor(chain.calibration, chain.sample, chain.calibratedSample, method, sources.calibrationFile);
  if (chosen.warning !== null) warnings.push(chosen.warning);
  return { nll, residual, sampleCalibration: chosen.sampleCalibration, warnings };
}
