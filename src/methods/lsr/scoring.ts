/**
 * The scoring choices of `lsr` after the networks: how restorations are weighed, the smoothing, the
 * mask and the sample aggregate. Stored as `scoring` in lsr-calibration.json (absent = the paper's
 * chain, so older calibrations score as before) and overridable at predict time with `--set`.
 */
import { isWeightingRule, WEIGHTING_RULES, type WeightingRule } from '../../score/residual-weights.js';
import { settingChoice, settingNumber, type SettingSpec, type Settings } from '../../score/settings.js';
import { applyChainSetting, applyRestorationSetting, type RestorationNumbers, CHAIN_MASKS, DEFAULT_SAMPLE_TOP, isScoringChain, type ChainMask, type ScoringChain } from '../../score/scoring-chain.js';
import { applyReferenceSetting, isReferenceScoring, REFERENCE_KEYS, REFERENCE_SAMPLE_AGGREGATES, referenceSettingSpecs, type ReferenceScoring } from '../../score/reference-chain.js';

export { DEFAULT_RESIDUAL_REFERENCE_FLOOR, needsNllReference, RESIDUAL_Z_SCALE } from '../../score/reference-chain.js';

export const LSR_MASKS = CHAIN_MASKS;
export type LsrMask = ChainMask;
/**
 * Sample aggregates: 'sum' (the paper: Σ NLL above λs), 'localmax' (max over positions of the 3×3×3
 * mean of NLL − λs over the code grid), 'top' (mean of the top `sampleTop` fraction of the pixel map,
 * inside the mask; costs a full pixel score), 'interior' (max over positions of the 5×5×3 mean of
 * NLL − the normal volumes' mean NLL at that place, over the codes whose patch is all body; needs the
 * NLL reference, `calibrate lsr --reference-data`), 'sum+interior' (the larger of the two, each
 * through its own calibration on the held-out normals: the sum sees shifted and intensity-changed
 * spheres, the interior excess reflected and noisy ones).
 */
export const LSR_SAMPLE_AGGREGATES = ['sum', 'localmax', 'top', ...REFERENCE_SAMPLE_AGGREGATES] as const;
export type LsrSampleAggregate = (typeof LSR_SAMPLE_AGGREGATES)[number];

/** The shared chain (smoothing in voxels, mask, sample aggregate) plus how the restorations are weighed. */
/** `reference`: the residual standardisation by lsr-residual-reference.json (src/score/reference-chain.ts). */
export interface LsrScoring extends ScoringChain<LsrSampleAggregate>, ReferenceScoring {
  readonly weighting: WeightingRule;
}

export const PAPER_LSR_SCORING: LsrScoring = Object.freeze({
  weighting: 'softmax',
  mask: 'none',
  sample: 'sum',
  sampleTop: DEFAULT_SAMPLE_TOP,
});

/**
 * What `calibrate lsr` stores unless told otherwise: the paper's pixel chain and the local maximum of
 * the NLL excess as the sample aggregate (docs/quality.md: AUROC 0.72 vs 0.40 for the sum on the
 * development set).
 */
export const DEFAULT_LSR_SCORING: LsrScoring = Object.freeze({ ...PAPER_LSR_SCORING, sample: 'localmax' });

export function isLsrScoring(x: unknown): x is LsrScoring {
  const s = x as Partial<LsrScoring>;
  return isScoringChain(x, LSR_SAMPLE_AGGREGATES) && isWeightingRule(s.weighting) && isReferenceScoring(x);
}

export const LSR_SETTINGS: readonly SettingSpec[] = Object.freeze([
  { key: 'lambdaS', help: 'λs in nats: codes above it count in the sample sum' },
  { key: 'lambdaP', help: 'λp in nats: codes above it are resampled; inf = plain reconstruction' },
  { key: 'copies', help: 'restorations per slice (S)' },
  { key: 'k', help: 'temperature of the softmax weights' },
  { key: 'every', help: 'score every n-th axial slice' },
  { key: 'weighting', help: `residual weights: ${WEIGHTING_RULES.join(', ')}` },
  { key: 'minPool', help: 'min-pool kernel "X,Y,Z": X, Y in model pixels, Z in volume voxels' },
  { key: 'avgPool', help: 'average-pool kernel "X,Y,Z", as minPool' },
  { key: 'mask', help: `final map mask: ${LSR_MASKS.join(', ')}` },
  { key: 'sample', help: `sample aggregate: ${LSR_SAMPLE_AGGREGATES.join(', ')}` },
  { key: 'sampleTop', help: 'fraction of the pixel map averaged by sample=top' },
  ...referenceSettingSpecs('lsr-residual-reference.json'),
]);

/** What the overrides act on (the fields of a calibration). */
export interface LsrScoringParameters extends RestorationNumbers {
  readonly lambdaP: number;
  readonly scoring: LsrScoring;
}

/** `base` with `settings` applied; a bad value names its key. Keys were checked against LSR_SETTINGS. */
export function applyLsrSettings<T extends LsrScoringParameters>(base: T, settings: Settings = {}): T {
  let out: T = base;
  let scoring: LsrScoring = base.scoring;
  for (const [key, value] of Object.entries(settings)) {
    const numbers = applyRestorationSetting(out, key, value);
    if (numbers !== undefined) {
      out = numbers;
      continue;
    }
    if (key === 'lambdaP') {
      out = { ...out, lambdaP: settingNumber(key, value) };
      continue;
    }
    if (key === 'weighting') {
      scoring = { ...scoring, weighting: settingChoice(key, value, WEIGHTING_RULES) };
      continue;
    }
    const next = applyReferenceSetting(scoring, key, value) ?? applyChainSetting(scoring, key, value, LSR_SAMPLE_AGGREGATES);
    if (next === undefined) throw new Error(`--set ${key}: lsr has no such setting (known: ${LSR_SETTINGS.map((s) => s.key).join(', ')})`);
    scoring = next;
  }
  return { ...out, scoring };
}

/** The keys of LSR_SETTINGS that choose the scoring chain (the others are numbers the calibration measures). */
export const LSR_SCORING_KEYS: readonly string[] = Object.freeze(['weighting', 'minPool', 'avgPool', 'mask', 'sample', 'sampleTop', ...REFERENCE_KEYS]);

/** The scoring chain `base` with `settings` applied; only the scoring keys are accepted (for `calibrate lsr --set`). */
export function lsrScoringFromSettings(base: LsrScoring, settings: Settings): LsrScoring {
  for (const key of Object.keys(settings)) {
    if (!LSR_SCORING_KEYS.includes(key)) {
      throw new Error(`--set ${key}: calibrate lsr takes only the scoring keys (${LSR_SCORING_KEYS.join(', ')}); λs and λp are measured, copies and slices have their own options`);
    }
  }
  const dummy = { lambdaS: 0, lambdaP: 0, copies: 1, k: 1, slices: { every: 1 }, scoring: base };
  return applyLsrSettings(dummy, settings).scoring;
}
