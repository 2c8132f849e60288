/**
 * The scoring choices of `lsgs` after the networks: smoothing, mask and sample aggregate. Stored as
 * `scoring` in lsgs-calibration.json (absent = the chain the method always had, so older calibrations
 * score as before, byte for byte) and overridable at predict time with `--set`, together with the
 * calibration's numbers (λs, λ, copies, rounds, k, slice stride, the stack's foreground mask).
 */
import { settingChoice, settingInteger, settingNumber, type SettingSpec, type Settings } from '../../score/settings.js';
import { applyChainSetting, applyRestorationSetting, type RestorationNumbers, chainSettingSpecs, CHAIN_KEYS, DEFAULT_SAMPLE_TOP, isScoringChain, type ScoringChain } from '../../score/scoring-chain.js';
import { applyReferenceSetting, isReferenceScoring, REFERENCE_KEYS, REFERENCE_SAMPLE_AGGREGATES, referenceSettingSpecs, type ReferenceScoring } from '../../score/reference-chain.js';

/**
 * Sample aggregates: 'sum' (Σ NLL above λs over every code, the original), 'localmax' (max over code
 * positions of the 3×3×3 mean of NLL − λs), 'top' (mean of the top `sampleTop` fraction of the pixel
 * map, inside the mask; costs a full restoration), 'interior' and 'sum+interior' (the excess over the
 * normals' per-place NLL, and the larger calibrated score of it and the sum; they need
 * lsgs-nll-reference.json, `calibrate lsgs --reference-data DIR`; src/score/reference-chain.ts).
 */
export const LSGS_SAMPLE_AGGREGATES = ['sum', 'localmax', 'top', ...REFERENCE_SAMPLE_AGGREGATES] as const;
export type LsgsSampleAggregate = (typeof LSGS_SAMPLE_AGGREGATES)[number];

/** `reference`: the residual standardisation by lsgs-residual-reference.json (src/score/reference-chain.ts). */
export type LsgsScoring = ScoringChain<LsgsSampleAggregate> & ReferenceScoring;

/** The chain of a calibration without `scoring`: the paper's kernels in slices, no body mask, the sum. */
export const ORIGINAL_LSGS_SCORING: LsgsScoring = Object.freeze({ mask: 'none', sample: 'sum', sampleTop: DEFAULT_SAMPLE_TOP });

/** What `calibrate lsgs` stores unless told otherwise (docs/quality-lsgs-vae.md: chosen on the development set). */
export const DEFAULT_LSGS_SCORING: LsgsScoring = ORIGINAL_LSGS_SCORING;

export function isLsgsScoring(x: unknown): x is LsgsScoring {
  return isScoringChain(x, LSGS_SAMPLE_AGGREGATES) && isReferenceScoring(x);
}

export const LSGS_SETTINGS: readonly SettingSpec[] = Object.freeze([
  { key: 'lambdaS', help: 'λs in nats: the sum counts codes above it; localmax measures the excess over it' },
  { key: 'lambda', help: 'LSGS\'s λ in nats (the calibration\'s lambdaP): codes above it are resampled' },
  { key: 'copies', help: 'restorations per slice (S)' },
  { key: 'rounds', help: 'most parallel resampling rounds' },
  { key: 'k', help: 'temperature of the softmax weights' },
  { key: 'every', help: 'score every n-th axial slice' },
  { key: 'foregroundMask', help: 'zero the residual outside the input foreground before smoothing: true or false' },
  ...chainSettingSpecs(LSGS_SAMPLE_AGGREGATES, 'sum of NLL above λs, local maximum of NLL − λs, top fraction of the pixel map, excess over the normals\' NLL, the larger of sum and interior'),
  ...referenceSettingSpecs('lsgs-residual-reference.json'),
]);

/** What the overrides act on (the fields of a calibration). */
export interface LsgsScoringParameters extends RestorationNumbers {
  readonly lambdaP: number;
  readonly rounds: number;
  readonly foregroundMask: boolean;
  readonly scoring: LsgsScoring;
}

/** `base` with `settings` applied; a bad value or an unknown key names its key. */
export function applyLsgsSettings<T extends LsgsScoringParameters>(base: T, settings: Settings = {}): T {
  let out: T = base;
  let scoring: LsgsScoring = base.scoring;
  for (const [key, value] of Object.entries(settings)) {
    const numbers = applyRestorationSetting(out, key, value);
    if (numbers !== undefined) {
      out = numbers;
      continue;
    }
    switch (key) {
      case 'lambda': {
        const v = settingNumber(key, value);
        // Without resampling every copy is X̂ itself and the residual is 0 everywhere.
        if (!Number.isFinite(v)) throw new Error(`--set lambda: expected a finite number of nats (LSGS compares restorations with the plain reconstruction), got "${value}"`);
        out = { ...out, lambdaP: v };
        break;
      }
      case 'rounds':
        out = { ...out, rounds: settingInteger(key, value, 0) };
        break;
      case 'foregroundMask':
        out = { ...out, foregroundMask: settingChoice(key, value, ['true', 'false'] as const) === 'true' };
        break;
      default: {
        const next = applyReferenceSetting(scoring, key, value) ?? applyChainSetting(scoring, key, value, LSGS_SAMPLE_AGGREGATES);
        if (next === undefined) throw new Error(`--set ${key}: lsgs has no such setting (known: ${LSGS_SETTINGS.map((s) => s.key).join(', ')})`);
        scoring = next;
      }
    }
  }
  return { ...out, scoring };
}

/** The keys `calibrate lsgs --set` takes (the others are numbers the calibration measures, or have their own options). */
export const LSGS_SCORING_KEYS: readonly string[] = Object.freeze([...CHAIN_KEYS, ...REFERENCE_KEYS]);

/** The chain `base` with `settings` applied; only the scoring keys are accepted (for `calibrate lsgs --set`). */
export function lsgsScoringFromSettings(base: LsgsScoring, settings: Settings): LsgsScoring {
  let scoring = base;
  for (const [key, value] of Object.entries(settings)) {
    const next = LSGS_SCORING_KEYS.includes(key) ? (applyReferenceSetting(scoring, key, value) ?? applyChainSetting(scoring, key, value, LSGS_SAMPLE_AGGREGATES)) : undefined;
    if (next === undefined) throw new Error(`--set ${key}: calibrate lsgs takes only the scoring keys (${LSGS_SCORING_KEYS.join(', ')}); λs and λ are measured; copies, rounds and slices have their own options`);
    scoring = next;
  }
  return scoring;
}
