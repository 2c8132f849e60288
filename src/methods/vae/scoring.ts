/**
 * The scoring choices of the `vae-*` methods after the network: smoothing, mask and sample aggregate.
 * Stored as `scoring` in vae-calibration.json (absent = the chain the methods always had, so older
 * calibrations score as before, byte for byte) and overridable at predict time with `--set`.
 *
 * Sample aggregates of a score's terms (`VAE_SAMPLE_AGGREGATES`):
 * - 'mean': the mean over slices of the score's per-slice term (KL, rec or both; the original);
 * - 'localmax': a spatial maximum for compact anomalies: for rec, the maximum over positions of the
 *   `VAE_LOCAL_BOX` box mean (./sample-aggregates.ts) of the per-pixel reconstruction NLL (x − x̂)² / 2σ² on the slice stack
 *   (about 3 × 3 codes of the VQ-VAE methods in-plane, 3 slices); for KL and ELBO, which the network
 *   gives per slice only, the maximum over slices of the mean of 3 neighbouring slices. A constant
 *   reference (a threshold) would shift every box mean alike, so none is subtracted: the ranking is
 *   the same, and the sample calibration is fitted on these values;
 * - 'top': the mean of the top `sampleTop` fraction of the method's pixel map on the volume grid
 *   (inside the mask): rec's own map for vae-rec, the gradient map of its term for vae-elbo
 *   (elbograd) and vae-kl (klgrad).
 */
import type { SettingSpec, Settings } from '../../score/settings.js';
import { applyChainSetting, chainFromSettings, chainSettingSpecs, CHAIN_KEYS, DEFAULT_SAMPLE_TOP, isScoringChain, type ScoringChain } from '../../score/scoring-chain.js';
import type { VaePixelMap, VaeSampleScore } from './score.js';

export const VAE_SAMPLE_AGGREGATES = ['mean', 'localmax', 'top'] as const;
export type VaeSampleAggregate = (typeof VAE_SAMPLE_AGGREGATES)[number];

export type VaeScoring = ScoringChain<VaeSampleAggregate>;

/** The chain of a calibration without `scoring`: the paper's kernels in slices, no body mask, the mean. */
export const ORIGINAL_VAE_SCORING: VaeScoring = Object.freeze({ mask: 'none', sample: 'mean', sampleTop: DEFAULT_SAMPLE_TOP });

/**
 * What `calibrate vae` stores unless told otherwise: the original chain with the body mask on the final
 * maps (docs/quality-lsgs-vae.md, development set: vae-combi pixel AP 0.002 → 0.010 and AUROC
 * 0.48 → 0.88, its KL-gradient weight times the NLL constant lights up the background; vae-rec
 * nominally +0.002 AP; labels lie inside the body, so the mask cannot lose a true voxel).
 */
export const DEFAULT_VAE_SCORING: VaeScoring = Object.freeze({ ...ORIGINAL_VAE_SCORING, mask: 'body' });

/** The pixel map a `top` sample aggregate averages, per sample score. */
export const VAE_TOP_MAP: Readonly<Record<VaeSampleScore, VaePixelMap>> = Object.freeze({ rec: 'rec', elbo: 'elbograd', kl: 'klgrad' });

export function isVaeScoring(x: unknown): x is VaeScoring {
  return isScoringChain(x, VAE_SAMPLE_AGGREGATES);
}

export const VAE_SETTINGS: readonly SettingSpec[] = Object.freeze(
  chainSettingSpecs(VAE_SAMPLE_AGGREGATES, 'mean over slices, local maximum of the rec map / of neighbouring slices, top fraction of the pixel map'),
);

/** `base` with `settings` applied; an unknown key or a bad value names its key. */
export function applyVaeSettings(base: VaeScoring, settings: Settings = {}): VaeScoring {
  let chain = base;
  for (const [key, value] of Object.entries(settings)) {
    const next = applyChainSetting(chain, key, value, VAE_SAMPLE_AGGREGATES);
    if (next === undefined) throw new Error(`--set ${key}: vae has no such setting (known: ${VAE_SETTINGS.map((s) => s.key).join(', ')})`);
    chain = next;
  }
  return chain;
}

export const VAE_SCORING_KEYS = CHAIN_KEYS;

/** For `calibrate vae --set`: the chain keys only. */
export function vaeScoringFromSettings(base: VaeScoring, settings: Settings): VaeScoring {
  return chainFromSettings(base, settings, VAE_SAMPLE_AGGREGATES, 'vae', 'the VAE has no thresholds to set');
}
