import { describe, expect, it } from 'vitest';
import { applyLsgsSettings, isLsgsScoring, LSGS_SETTINGS, lsgsScoringFromSettings, ORIGINAL_LSGS_SCORING } from '../src/methods/lsgs/scoring.js';
import { applyVaeSettings, isVaeScoring, ORIGINAL_VAE_SCORING, VAE_SETTINGS, vaeScoringFromSettings } from '../src/methods/vae/scoring.js';
import { localMaxVaeSampleScores } from '../src/methods/vae/sample-aggregates.js';
import { checkSettingKeys } from '../src/score/settings.js';
import { findScore } from '../src/methods/index.js';

describe('lsgs scoring overrides', () => {
  const base = { lambdaS: 5.7, lambdaP: 4.5, copies: 15, rounds: 3, k: 3, slices: { every: 8 } as const, foregroundMask: true, scoring: ORIGINAL_LSGS_SCORING };

  it('applies every key with typed values', () => {
    const got = applyLsgsSettings(base, {
      lambdaS: '6.5',
      lambda: '5.25',
      copies: '4',
      rounds: '2',
      k: '1.5',
      every: '4',
      foregroundMask: 'false',
      minPool: '3,3,1',
      avgPool: '7,7,9',
      mask: 'body',
      sample: 'localmax',
      sampleTop: '0.002',
    });
    expect(got).toEqual({
      lambdaS: 6.5,
      lambdaP: 5.25,
      copies: 4,
      rounds: 2,
      k: 1.5,
      slices: { every: 4 },
      foregroundMask: false,
      scoring: { smoothing: { min: [3, 3, 1], avg: [7, 7, 9] }, mask: 'body', sample: 'localmax', sampleTop: 0.002 },
    });
    expect(isLsgsScoring(got.scoring)).toBe(true);
    expect(applyLsgsSettings(base, {})).toEqual(base);
    // one kernel set: the other keeps the paper's extent in voxels
    expect(applyLsgsSettings(base, { minPool: '3,3,1' }).scoring.smoothing).toEqual({ min: [3, 3, 1], avg: [7, 7, 17] });
  });

  it('refuses unknown keys and bad values, naming the key', () => {
    expect(() => applyLsgsSettings(base, { lambdaP: '3' })).toThrow(/lambdaP: lsgs has no such setting/);
    expect(() => checkSettingKeys({ weighting: 'mean' }, LSGS_SETTINGS, 'lsgs')).toThrow(/weighting: lsgs has no such setting/);
    expect(() => applyLsgsSettings(base, { lambda: 'inf' })).toThrow(/lambda: expected a finite number/);
    expect(() => applyLsgsSettings(base, { rounds: '1.5' })).toThrow(/rounds: expected an integer/);
    expect(() => applyLsgsSettings(base, { foregroundMask: 'yes' })).toThrow(/foregroundMask: expected one of true, false/);
    expect(() => applyLsgsSettings(base, { sample: 'mean' })).toThrow(/sample: expected one of sum, localmax, top/);
    expect(() => applyLsgsSettings(base, { avgPool: '7,7' })).toThrow(/avgPool/);
  });

  it('calibrate takes only the chain keys', () => {
    expect(lsgsScoringFromSettings(ORIGINAL_LSGS_SCORING, { sample: 'localmax', mask: 'body' })).toEqual({ mask: 'body', sample: 'localmax', sampleTop: 0.0005 });
    expect(() => lsgsScoringFromSettings(ORIGINAL_LSGS_SCORING, { lambda: '3' })).toThrow(/lambda: calibrate lsgs takes only the scoring keys/);
  });
});

describe('vae scoring overrides', () => {
  it('applies every key with typed values and refuses the rest', () => {
    const got = applyVaeSettings(ORIGINAL_VAE_SCORING, { minPool: '3,3,1', avgPool: '7,7,1', mask: 'body', sample: 'top', sampleTop: '0.01' });
    expect(got).toEqual({ smoothing: { min: [3, 3, 1], avg: [7, 7, 1] }, mask: 'body', sample: 'top', sampleTop: 0.01 });
    expect(isVaeScoring(got)).toBe(true);
    expect(applyVaeSettings(ORIGINAL_VAE_SCORING, {})).toBe(ORIGINAL_VAE_SCORING);
    expect(() => applyVaeSettings(ORIGINAL_VAE_SCORING, { lambda: '3' })).toThrow(/lambda: vae has no such setting \(known: minPool, avgPool, mask, sample, sampleTop\)/);
    expect(() => applyVaeSettings(ORIGINAL_VAE_SCORING, { sample: 'sum' })).toThrow(/sample: expected one of mean, localmax, top/);
    expect(() => applyVaeSettings(ORIGINAL_VAE_SCORING, { sampleTop: '0' })).toThrow(/sampleTop/);
    expect(() => applyVaeSettings(ORIGINAL_VAE_SCORING, { mask: 'brain' })).toThrow(/mask: expected one of none, body/);
    expect(() => vaeScoringFromSettings(ORIGINAL_VAE_SCORING, { copies: '3' })).toThrow(/copies: calibrate vae takes only the scoring keys/);
    expect(isVaeScoring({ ...ORIGINAL_VAE_SCORING, smoothing: { min: [3, 3, 2], avg: [7, 7, 1] } })).toBe(false);
  });

  it('the registry lists the keys for predict --set and leaderboard entries', () => {
    expect(findScore('vae-combi')?.method.settings?.map((s) => s.key)).toEqual(VAE_SETTINGS.map((s) => s.key));
    expect(findScore('lsgs')?.method.settings?.map((s) => s.key)).toContain('lambda');
  });

  it('localmax finds a compact reconstruction error that the mean over slices ranks below a diffuse one', () => {
    const size = 32;
    const count = 4;
    const plane = size * size;
    const images = new Float32Array(count * plane);
    const diffuse = Float32Array.from(images, () => 0.3); // small error everywhere
    const compact = images.slice();
    for (const s of [1, 2]) for (let y = 10; y < 20; y++) for (let x = 10; x < 20; x++) compact[s * plane + y * size + x] = 1; // one bright blob
    const terms = (xhat: Float32Array) => {
      const rec = new Float32Array(count);
      for (let s = 0; s < count; s++) for (let p = 0; p < plane; p++) rec[s] += xhat[s * plane + p]! ** 2 / 2;
      return { kl: Float32Array.from([1, 1, 5, 1]), rec, xhat };
    };
    const sum = (a: Float32Array) => a.reduce((x, v) => x + v, 0);
    expect(sum(terms(diffuse).rec)).toBeGreaterThan(sum(terms(compact).rec));
    const a = localMaxVaeSampleScores(terms(compact), images, size, 1);
    const b = localMaxVaeSampleScores(terms(diffuse), images, size, 1);
    expect(a.rec).toBeGreaterThan(b.rec);
    // KL per slice [1, 1, 5, 1]: the best mean of up to 3 neighbouring slices; at the last slice the
    // window holds 2 (the pool leaves out what lies beyond the stack): (5 + 1) / 2
    expect(a.kl).toBeCloseTo(3, 6);
    expect(localMaxVaeSampleScores({ ...terms(compact), kl: Float32Array.from([1, 6, 1, 1]) }, images, size, 1).kl).toBeCloseTo(3.5, 6);
  });
});
