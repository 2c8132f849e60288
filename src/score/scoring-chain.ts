/**
 * The post-processing choices a network method shares after its per-slice maps: the smoothing
 * kernels (in voxels along z, src/score/smoothing.ts), a body mask on the final map
 * (src/volume/body-mask.ts), and the sample aggregate with the fraction `top` averages. Each method
 * names its own sample aggregates (its first is the paper's); lsgs and the vae scores store such a
 * chain as `scoring` in their calibration file (absent = the paper's chain).
 */
import { settingChoice, settingInteger, settingNumber, type SettingSpec } from './settings.js';
import type { SliceSelection } from '../volume/slices.js';
import { isVoxelKernel, PAPER_VOXEL_SMOOTHING, parseVoxelKernel, type VoxelSmoothing } from './smoothing.js';

export const CHAIN_MASKS = ['none', 'body'] as const;
export type ChainMask = (typeof CHAIN_MASKS)[number];

export interface ScoringChain<S extends string> {
  /** Kernels with a z-extent in voxels; absent = the paper's kernels counted in slices (3³ min, 7×7×3 mean). */
  readonly smoothing?: VoxelSmoothing;
  readonly mask: ChainMask;
  readonly sample: S;
  /** Fraction of the pixel map averaged by sample = 'top'. */
  readonly sampleTop: number;
}

/** The fraction of the final map averaged by a `top` sample aggregate unless set. */
export const DEFAULT_SAMPLE_TOP = 0.0005;

/** The keys of a chain, for `--set` and `calibrate --set`. */
export const CHAIN_KEYS: readonly string[] = Object.freeze(['minPool', 'avgPool', 'mask', 'sample', 'sampleTop']);

export function chainSettingSpecs(samples: readonly string[], sampleHelp: string): SettingSpec[] {
  return [
    { key: 'minPool', help: 'min-pool kernel "X,Y,Z": X, Y in model pixels, Z in volume voxels (default: the paper\'s 3×3×3 slices)' },
    { key: 'avgPool', help: 'average-pool kernel "X,Y,Z", as minPool (default: the paper\'s 7×7×3 slices)' },
    { key: 'mask', help: `final map mask: ${CHAIN_MASKS.join(', ')}` },
    { key: 'sample', help: `sample aggregate: ${samples.join(', ')} (${sampleHelp})` },
    { key: 'sampleTop', help: 'fraction of the pixel map averaged by sample=top' },
  ];
}

export function isScoringChain<S extends string>(x: unknown, samples: readonly S[]): x is ScoringChain<S> {
  const s = x as Partial<ScoringChain<S>>;
  return (
    s !== null &&
    typeof s === 'object' &&
    (s.smoothing === undefined || (typeof s.smoothing === 'object' && s.smoothing !== null && isVoxelKernel(s.smoothing.min) && isVoxelKernel(s.smoothing.avg))) &&
    (CHAIN_MASKS as readonly unknown[]).includes(s.mask) &&
    (samples as readonly unknown[]).includes(s.sample) &&
    typeof s.sampleTop === 'number' &&
    s.sampleTop > 0 &&
    s.sampleTop <= 1
  );
}

/** `chain` with one setting applied, or undefined when `key` is not a chain key; a bad value names its key. */
export function applyChainSetting<S extends string, C extends ScoringChain<S>>(chain: C, key: string, value: string, samples: readonly S[]): C | undefined {
  switch (key) {
    case 'minPool':
    case 'avgPool':
      try {
        return { ...chain, smoothing: { ...(chain.smoothing ?? PAPER_VOXEL_SMOOTHING), [key === 'minPool' ? 'min' : 'avg']: parseVoxelKernel(value) } };
      } catch (err) {
        throw new Error(`--set ${key}: ${(err as Error).message}`);
      }
    case 'mask':
      return { ...chain, mask: settingChoice(key, value, CHAIN_MASKS) };
    case 'sample':
      return { ...chain, sample: settingChoice(key, value, samples) };
    case 'sampleTop': {
      const f = settingNumber(key, value, 0);
      if (!(f > 0 && f <= 1)) throw new Error(`--set sampleTop: expected a fraction in (0, 1], got "${value}"`);
      return { ...chain, sampleTop: f };
    }
    default:
      return undefined;
  }
}

/** `base` with only chain keys applied (for `calibrate … --set`); other keys are refused with `why`. */
export function chainFromSettings<S extends string>(base: ScoringChain<S>, settings: Readonly<Record<string, string>>, samples: readonly S[], method: string, why: string): ScoringChain<S> {
  let chain = base;
  for (const [key, value] of Object.entries(settings)) {
    const next = CHAIN_KEYS.includes(key) ? applyChainSetting(chain, key, value, samples) : undefined;
    if (next === undefined) throw new Error(`--set ${key}: calibrate ${method} takes only the scoring keys (${CHAIN_KEYS.join(', ')}); ${why}`);
    chain = next;
  }
  return chain;
}

/** The numbers a restoration method's calibration holds that `--set` may override alike in lsr and lsgs. */
export interface RestorationNumbers {
  readonly lambdaS: number;
  readonly copies: number;
  readonly k: number;
  readonly slices: SliceSelection;
}

/** `numbers` with one of lambdaS, copies, k or every applied, or undefined for any other key; a bad value names its key. */
export function applyRestorationSetting<T extends RestorationNumbers>(numbers: T, key: string, value: string): T | undefined {
  switch (key) {
    case 'lambdaS':
      return { ...numbers, lambdaS: settingNumber(key, value) };
    case 'copies':
      return { ...numbers, copies: settingInteger(key, value, 1) };
    case 'k':
      return { ...numbers, k: settingNumber(key, value, 0) };
    case 'every':
      return { ...numbers, slices: { every: settingInteger(key, value, 1) } };
    default:
      return undefined;
  }
}
