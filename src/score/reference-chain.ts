/**
 * The links to normal anatomy that a code-prior method (lsr, lsgs) adds to its scoring chain:
 * - the `interior` sample aggregate (the 5×5×3 box maximum of the code NLL minus the normals' mean NLL
 *   at that place, over the codes whose patch is all body) and the combined `sum+interior` (the larger of
 *   the two calibrated scores, each part through its own calibration, `sampleParts`);
 * - `reference=on`: the smoothed restoration residual standardised per place by the normals' residuals
 *   (./residual-reference.ts), with a σ floor `referenceFloor`.
 * Both references are built from normal volumes by the method's `calibrate … --reference-data DIR`.
 */
import { InputFileError } from '../errors.js';
import { applySampleCalibration, fitSampleCalibration, isSampleCalibration, type SampleCalibration } from './calibration.js';
import { settingNumber, type SettingSpec } from './settings.js';

/** The aggregates every code-prior method adds to its own: they read the prior's NLL reference. */
export const REFERENCE_SAMPLE_AGGREGATES = ['interior', 'sum+interior'] as const;
export type ReferenceSampleAggregate = (typeof REFERENCE_SAMPLE_AGGREGATES)[number];

const COMBINED_PARTS: Readonly<Record<string, readonly string[]>> = Object.freeze({ 'sum+interior': Object.freeze(['sum', 'interior']) });

/** The parts of a combined aggregate (its raw score is the largest calibrated part), or undefined for a plain one. */
export function samplePartsOf(sample: string): readonly string[] | undefined {
  return COMBINED_PARTS[sample];
}

/** Aggregates that read the prior's per-place NLL reference. */
export function needsNllReference(sample: string): boolean {
  return sample === 'interior' || sample === 'sum+interior';
}

/** The residual standardisation a chain may hold (absent = off). */
export interface ReferenceScoring {
  /**
   * Standardise the smoothed map by the normal residual reference of the weights folder:
   * z = max(0, (m − μ) / (σ + referenceFloor)) per place, into [0, 1) as u / (1 + u), u = z / 10.
   */
  readonly reference?: boolean;
  /** σ floor of that standardisation, in residual units of normalised intensity (default 0.02). */
  readonly referenceFloor?: number;
}

export const DEFAULT_RESIDUAL_REFERENCE_FLOOR = 0.02;
/** z ↦ u / (1 + u), u = z / scale (monotone: ranks are those of z; DISYRE's default). */
export const RESIDUAL_Z_SCALE = 10;

export const REFERENCE_KEYS: readonly string[] = Object.freeze(['reference', 'referenceFloor']);

export function referenceSettingSpecs(residualFile: string): SettingSpec[] {
  return [
    { key: 'reference', help: `on or off: standardise the pixel map by the normal residual reference of the weights (${residualFile}; default off)` },
    { key: 'referenceFloor', help: `σ floor of that standardisation (> 0, default ${DEFAULT_RESIDUAL_REFERENCE_FLOOR})` },
  ];
}

export function isReferenceScoring(x: unknown): boolean {
  const s = x as ReferenceScoring;
  return (
    (s.reference === undefined || typeof s.reference === 'boolean') &&
    (s.referenceFloor === undefined || (typeof s.referenceFloor === 'number' && s.referenceFloor > 0 && Number.isFinite(s.referenceFloor)))
  );
}

/** `scoring` with `reference` or `referenceFloor` applied, or undefined for any other key; a bad value names its key. */
export function applyReferenceSetting<C extends ReferenceScoring>(scoring: C, key: string, value: string): C | undefined {
  if (key === 'reference') {
    if (value !== 'on' && value !== 'off') throw new Error(`--set reference: expected on or off, got "${value}"`);
    return { ...scoring, reference: value === 'on' };
  }
  if (key === 'referenceFloor') {
    const floor = settingNumber(key, value, 0);
    if (!(floor > 0 && Number.isFinite(floor))) throw new Error(`--set referenceFloor: expected a positive finite number, got "${value}"`);
    return { ...scoring, referenceFloor: floor };
  }
  return undefined;
}

/** Each part's calibration on the same held-out normals, by aggregate name. */
export type SampleParts = Readonly<Record<string, SampleCalibration>>;

/** The first problem of a calibration's `sampleParts` for its aggregate `sample`, or null. */
export function samplePartsProblem(sampleParts: unknown, sample: string | undefined): string | null {
  if (sampleParts !== undefined && (sampleParts === null || typeof sampleParts !== 'object' || !Object.values(sampleParts).every(isSampleCalibration))) {
    return 'sampleParts must map aggregate names to sample calibrations';
  }
  const parts = sample !== undefined ? samplePartsOf(sample) : undefined;
  const stored = sampleParts as SampleParts | undefined;
  if (parts !== undefined && !parts.every((p) => stored?.[p] !== undefined)) return `sample=${sample} needs sampleParts for ${parts.join(' and ')}`;
  return null;
}

/** The raw score of a combined aggregate: the largest of its parts' calibrated scores. */
export function combinedSampleRaw(parts: readonly (readonly [string, number])[], sampleParts: SampleParts | undefined, method: string): number {
  let best = -Infinity;
  for (const [name, raw] of parts) {
    const partCalibration = sampleParts?.[name];
    if (partCalibration === undefined) throw new Error(`the calibration has no sampleParts.${name}: recalibrate with calibrate ${method} --set sample=${parts.map(([n]) => n).join('+')}`);
    best = Math.max(best, applySampleCalibration(partCalibration, raw));
  }
  return best;
}

/**
 * Fits the sample calibration of `aggregate` from the held-out raw scores of each plain aggregate
 * (`rawOf`): a combined aggregate gets its parts' calibrations and the raw scores of the combination.
 */
export function heldOutSampleRaws(aggregate: string, rawOf: (part: string) => number[], method: string): { raw: number[]; sampleParts?: SampleParts } {
  const partNames = samplePartsOf(aggregate);
  if (partNames === undefined) return { raw: rawOf(aggregate) };
  const partRaws = partNames.map((part) => rawOf(part));
  const sampleParts: SampleParts = Object.fromEntries(partNames.map((part, j) => [part, fitSampleCalibration(partRaws[j]!)]));
  const count = partRaws[0]!.length;
  const raw = Array.from({ length: count }, (_, i) => combinedSampleRaw(partNames.map((part, j) => [part, partRaws[j]![i]!]), sampleParts, method));
  return { raw, sampleParts };
}

/**
 * The calibration a predictor applies to the raw score of `sample`: the stored one for the calibrated
 * aggregate, else that aggregate's part calibration when the file holds one, else the stored one with a
 * warning. A combined `sample` whose parts the file lacks is refused, naming `calibrationFile`.
 */
export function sampleCalibrationFor(
  cal: { readonly sampleCalibration: SampleCalibration; readonly sampleParts?: SampleParts },
  sample: string,
  calibratedSample: string,
  method: string,
  calibrationFile: string,
): { sampleCalibration: SampleCalibration; warning: string | null } {
  const missing = (samplePartsOf(sample) ?? []).filter((p) => cal.sampleParts?.[p] === undefined);
  if (missing.length > 0) throw new InputFileError(calibrationFile, `sample=${sample} needs sampleParts.${missing.join(', sampleParts.')}: recalibrate with calibrate ${method} --set sample=${sample}`);
  if (sample === calibratedSample) return { sampleCalibration: cal.sampleCalibration, warning: null };
  const part = cal.sampleParts?.[sample];
  if (part !== undefined) return { sampleCalibration: part, warning: null };
  return {
    sampleCalibration: cal.sampleCalibration,
    warning: `warning: sample=${sample} is scored with the calibration of sample=${calibratedSample} (ranks hold, the [0, 1] values do not): recalibrate with calibrate ${method} --set sample=${sample}`,
  };
}
