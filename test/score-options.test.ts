import { describe, expect, it } from 'vitest';
import { changedPixels, restorationWeights, weightedResidualMap } from '../src/score/residual-weights.js';
import { weightedResidual } from '../src/score/pixel-score.js';
import { slicesForExtent, stackKernel, parseVoxelKernel, stackStride } from '../src/score/smoothing.js';
import { bodyMask, applyMask } from '../src/volume/body-mask.js';
import { ReferenceAccumulator, referenceOnStack } from '../src/score/place-reference.js';
import { standardisedResidual, ZERO_EXCESS_BAND } from '../src/methods/lsr/residual-reference.js';
import { foregroundCodes, interiorCodes, interiorLocalMaxExcess, interiorReferenceExcess, localMaxExcess, topFractionMean, meanOfLargest } from '../src/score/sample-aggregates.js';
import { checkSettingKeys, collectSetting, parseSettingList, settingNumber } from '../src/score/settings.js';
import { applyLsrSettings, PAPER_LSR_SCORING } from '../src/methods/lsr/scoring.js';
import { parseEntry, commandLine } from '../eval/harness/runner.js';
import type { Shape3 } from '../src/volume/volume.js';

describe('residual weighting rules', () => {
  const input = Float32Array.from([1, 1, 1, 1]);
  // copy 0 restored the anomalous pixel 0 (large residual there), copy 1 kept it (residual 0 everywhere)
  const restorations = Float32Array.from([0, 1, 1, 1, 1, 1, 1, 1]);
  it('softmax equals the paper formula and favours the copy with the smaller mean residual', () => {
    const w = restorationWeights(input, restorations, 2, 'softmax', 3);
    const l0 = 3 / 0.25;
    const l1 = 3 / 1e-12;
    expect(w[1]).toBeCloseTo(1, 12);
    expect(w[0]).toBeCloseTo(Math.exp(l0 - l1), 12);
    expect(weightedResidual(input, restorations, 2, 3)).toEqual(weightedResidualMap(input, restorations, w));
  });
  it('mean weighs copies equally', () => {
    const w = restorationWeights(input, restorations, 2, 'mean', 3);
    expect(Array.from(w)).toEqual([0.5, 0.5]);
    expect(Array.from(weightedResidualMap(input, restorations, w))).toEqual([0.5, 0, 0, 0]);
  });
  it('outside ignores the pixels of the patches a copy changed', () => {
    const changed = [Uint8Array.from([1, 0, 0, 0]), Uint8Array.from([0, 0, 0, 0])];
    const w = restorationWeights(input, restorations, 2, 'outside', 3, changed);
    // both copies are perfect outside what they changed: equal weights
    expect(w[0]).toBeCloseTo(0.5, 12);
    expect(() => restorationWeights(input, restorations, 2, 'outside', 3)).toThrow(/changed-pixel mask/);
  });
  it('changedPixels marks the whole patch of a changed code', () => {
    const m = changedPixels(Int32Array.from([0, 1, 2, 3]), Int32Array.from([0, 9, 2, 3]), { size: 4, codeSide: 2 });
    expect(Array.from(m)).toEqual([0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  });
});

describe('smoothing kernels sized in voxels', () => {
  it('a z-extent in voxels becomes the slices within its reach', () => {
    expect(slicesForExtent(17, 8)).toBe(3); // the paper's 3 slices on an every-8th stack
    expect(slicesForExtent(17, 4)).toBe(5);
    expect(slicesForExtent(17, 1)).toBe(17);
    expect(slicesForExtent(9, 8)).toBe(1);
    expect(slicesForExtent(1, 8)).toBe(1);
    expect(stackKernel([3, 5, 17], 2)).toEqual([3, 5, 9]);
  });
  it('parses X,Y,Z and refuses even or missing sizes', () => {
    expect(parseVoxelKernel('3,3,17')).toEqual([3, 3, 17]);
    expect(() => parseVoxelKernel('3,4,17')).toThrow(/odd/);
    expect(() => parseVoxelKernel('3,3')).toThrow(/three/);
  });
  it('stride of a stack', () => {
    expect(stackStride([0, 8, 16])).toBe(8);
    expect(stackStride([0, 6, 12, 17, 23])).toBe(5.75); // a {count: n} selection: the mean spacing
    expect(slicesForExtent(17, 5.75)).toBe(3);
  });
});

describe('body mask', () => {
  const n = 24;
  const shape: Shape3 = [n, n, n];
  const idx = (x: number, y: number, z: number) => x + n * (y + n * z);
  function head(darkSphere: boolean): Float32Array {
    const data = new Float32Array(n * n * n);
    for (let z = 0; z < n; z++)
      for (let y = 0; y < n; y++)
        for (let x = 0; x < n; x++) {
          const r = Math.hypot(x - 12, y - 12, z - 12);
          if (r < 9) data[idx(x, y, z)] = 0.6;
          if (darkSphere && r < 4) data[idx(x, y, z)] = 0; // an anomaly shifted down to 0
        }
    return data;
  }
  it('keeps a dark sphere inside the body and drops the empty space', () => {
    const mask = bodyMask(head(true), shape, { margin: 0 });
    expect(mask[idx(12, 12, 12)]).toBe(1);
    expect(mask[idx(14, 12, 12)]).toBe(1);
    expect(mask[idx(0, 0, 0)]).toBe(0);
    expect(mask[idx(12, 12, 23)]).toBe(0);
  });
  it('grows the tissue by its margin', () => {
    const tight = bodyMask(head(false), shape, { margin: 0 });
    const grown = bodyMask(head(false), shape, { margin: 2 });
    expect(tight[idx(12, 12, 22)]).toBe(0);
    expect(grown[idx(12, 12, 22)]).toBe(1);
    const map = new Float32Array(n * n * n).fill(1);
    applyMask(map, tight);
    expect(map[idx(0, 0, 0)]).toBe(0);
    expect(map[idx(12, 12, 12)]).toBe(1);
  });
});

describe('sample aggregates', () => {
  it('localMaxExcess finds a compact cluster that a sum would rank below scattered values', () => {
    const shape: Shape3 = [8, 8, 4];
    const scattered = new Float32Array(256);
    for (let i = 0; i < 256; i += 7) scattered[i] = 6; // many isolated unlikely codes
    const compact = new Float32Array(256);
    for (const z of [1, 2]) for (const y of [3, 4, 5]) for (const x of [3, 4, 5]) compact[x + 8 * (y + 8 * z)] = 5;
    const sum = (a: Float32Array) => a.reduce((s, v) => s + v, 0);
    expect(sum(scattered)).toBeGreaterThan(sum(compact));
    expect(localMaxExcess(compact, shape, 0)).toBeGreaterThan(localMaxExcess(scattered, shape, 0));
  });
  it('localMaxExcess subtracts a per-position reference', () => {
    const v = Float32Array.from([1, 2, 3, 4]);
    expect(localMaxExcess(v, [4, 1, 1], v, [1, 1, 1])).toBe(0);
    expect(() => localMaxExcess(v, [4, 1, 1], new Float32Array(3))).toThrow(/reference/);
  });
  it('topFractionMean averages the largest values inside the mask', () => {
    const map = Float32Array.from([9, 1, 2, 3, 4, 5, 6, 7, 8, 0]);
    expect(topFractionMean(map, 0.2)).toBe(8.5);
    const mask = Uint8Array.from([0, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(topFractionMean(map, 0.2, mask)).toBe(7.5);
    expect(meanOfLargest(Float32Array.from([3, 1, 2]), 2)).toBe(2.5);
  });
  it('foregroundCodes flags the codes whose patch holds foreground', () => {
    const img = new Float32Array(16);
    img[15] = 0.3;
    expect(Array.from(foregroundCodes(img, 1, 4, 2, 0))).toEqual([0, 0, 0, 1]);
  });
  it('interiorCodes flags the codes whose whole patch is foreground', () => {
    const img = new Float32Array(16).fill(0.5);
    img[0] = 0; // one background pixel in the top-left patch
    img[10] = 0; // and one in the bottom-right patch
    expect(Array.from(interiorCodes(img, 1, 4, 2, 0))).toEqual([0, 1, 1, 0]);
    expect(() => interiorCodes(img, 2, 4, 2, 0)).toThrow(/16 values for 2 slices/);
  });
  it('interiorLocalMaxExcess ignores a large value on the boundary', () => {
    const values = Float32Array.from([9, 1, 2, 1]);
    const interior = Uint8Array.from([0, 1, 1, 1]);
    expect(localMaxExcess(values, [4, 1, 1], 1, [1, 1, 1])).toBe(8);
    expect(interiorLocalMaxExcess(values, [4, 1, 1], 1, interior, [1, 1, 1])).toBe(1);
    // with a per-position reference, boundary codes count as exactly normal (excess 0)
    const five = Float32Array.from([9, 1, 2, 3, 0]);
    expect(interiorLocalMaxExcess(five, [5, 1, 1], new Float32Array(5), Uint8Array.from([0, 1, 1, 1, 1]), [3, 1, 1])).toBe(2);
  });
  it('interior excess over a place reference: a place unlikely in every normal volume no longer outranks an anomaly', () => {
    // one 8×8 slice of body (no background pixel) encoded as 4×4 codes; NLL 1 everywhere
    const codes = { images: new Float32Array(64).fill(0.5), size: 8, positions: Float32Array.from([0]), codeSide: 4, background: 0 };
    const normalPlace = new Float32Array(16).fill(1);
    normalPlace[5] = 6; // a place every normal volume scores high
    const anomaly = normalPlace.slice();
    anomaly[10] = 4; // a case with an unlikely code elsewhere
    const box: [number, number, number] = [1, 1, 1];
    expect(localMaxExcess(anomaly, [4, 4, 1], 1, box)).toBe(5); // the raw maximum is the normal place
    expect(interiorReferenceExcess(anomaly, codes, normalPlace, box)).toBe(3); // against the reference: the anomaly
    expect(interiorReferenceExcess(normalPlace, codes, normalPlace, box)).toBe(0);
    expect(() => interiorReferenceExcess(new Float32Array(15), codes, normalPlace, box)).toThrow(/15 NLLs for 1 slices/);
  });
  it('standardisedResidual: excess over the reference above the band in its own order, the rest below it in raw order', () => {
    const stack = { count: 1, height: 2, width: 2, positions: Float32Array.from([0]) };
    const normal = Float32Array.from([0.1, 0.1, 0.5, 0.5]);
    const ref = new ReferenceAccumulator(2, 2, [2, 2, 1]).add(normal, stack).add(normal, stack).result(); // σ = 0
    const out = standardisedResidual(Float32Array.from([0.3, 0.05, 0.4, 0]), stack, ref, 0.1, 0.02);
    const u = (0.2 / 0.02) / 10;
    expect(out[0]).toBeCloseTo(ZERO_EXCESS_BAND + (1 - ZERO_EXCESS_BAND) * (u / (1 + u)), 6); // excess 0.2 over 0.1
    expect(out[1]).toBeCloseTo(ZERO_EXCESS_BAND * (0.05 / 0.15), 6); // below the reference: raw order, in the band
    expect(out[2]).toBeCloseTo(ZERO_EXCESS_BAND * (0.4 / 0.5), 6); // below its (larger) reference
    expect(out[3]).toBe(0);
    expect(out[2]).toBeLessThan(out[0]!);
  });
  it('the reference of normal NLL maps, read back at their own places, is their mean', () => {
    const geometry = { count: 2, height: 4, width: 4, positions: Float32Array.from([-0.25, 0.25]) };
    const a = Float32Array.from({ length: 32 }, (_, i) => (i % 7) + 1);
    const b = Float32Array.from({ length: 32 }, (_, i) => (i % 5) + 2);
    const ref = new ReferenceAccumulator(4, 4, [4, 4, 2]).add(a, geometry).add(b, geometry).result();
    const { mean } = referenceOnStack(ref, geometry);
    for (let i = 0; i < 32; i++) expect(mean[i]).toBeCloseTo((a[i]! + b[i]!) / 2, 5);
  });
});

describe('scoring option overrides', () => {
  it('collects key=value pairs and refuses repeats and bad forms', () => {
    expect(collectSetting('lambdaP=inf', { a: '1' })).toEqual({ a: '1', lambdaP: 'inf' });
    expect(() => collectSetting('lambdaP')).toThrow(/key=value/);
    expect(() => collectSetting('a=2', { a: '1' })).toThrow(/twice/);
    expect(parseSettingList('a=1, b=x')).toEqual({ a: '1', b: 'x' });
    expect(settingNumber('x', 'inf')).toBe(Infinity);
    expect(() => settingNumber('x', '')).toThrow(/number/);
  });
  it('refuses a key the method does not know, naming the known ones', () => {
    expect(() => checkSettingKeys({ bogus: '1' }, [{ key: 'lambdaP', help: '' }], 'lsr')).toThrow(/bogus: lsr has no such setting \(known: lambdaP\)/);
  });
  it('applies every lsr override with typed values', () => {
    const base = { lambdaS: 5, lambdaP: 3, copies: 15, k: 3, slices: { every: 8 } as const, scoring: PAPER_LSR_SCORING };
    const got = applyLsrSettings(base, {
      lambdaP: 'inf',
      lambdaS: '7.5',
      copies: '5',
      k: '1',
      every: '4',
      weighting: 'mean',
      minPool: '3,3,1',
      avgPool: '7,7,9',
      mask: 'body',
      sample: 'top',
      sampleTop: '0.001',
    });
    expect(got).toEqual({
      lambdaS: 7.5,
      lambdaP: Infinity,
      copies: 5,
      k: 1,
      slices: { every: 4 },
      scoring: { weighting: 'mean', smoothing: { min: [3, 3, 1], avg: [7, 7, 9] }, mask: 'body', sample: 'top', sampleTop: 0.001 },
    });
    expect(applyLsrSettings(base, {})).toEqual(base);
    expect(() => applyLsrSettings(base, { weighting: 'median' })).toThrow(/weighting: expected one of softmax, mean, outside/);
    expect(() => applyLsrSettings(base, { minPool: '2,3,3' })).toThrow(/minPool/);
    expect(() => applyLsrSettings(base, { sampleTop: '2' })).toThrow(/sampleTop/);
  });
  it('leaderboard entries carry their own settings to predict', () => {
    const e = parseEntry('lsr{lambdaP=inf,weighting=mean}@weights/x', 'method');
    expect(e).toEqual({ name: 'lsr{lambdaP=inf,weighting=mean}', kind: 'method', method: 'lsr', weights: 'weights/x', settings: { lambdaP: 'inf', weighting: 'mean' } });
    const { args } = commandLine(e, { inDir: 'i', outDir: 'o', task: 'pixel', region: 'brain', seed: 1 });
    expect(args.slice(-4)).toEqual(['--set', 'lambdaP=inf', '--set', 'weighting=mean']);
    expect(parseEntry('zscore@w', 'method')).toEqual({ name: 'zscore', kind: 'method', method: 'zscore', weights: 'w' });
  });
});

describe('thresholds over foreground codes', () => {
  it('takes the quantiles over the kept codes and the raw sums over all codes', async () => {
    const { nllThresholds } = await import('../src/score/held-out.js');
    // 90 background codes near 0 and 10 brain codes at 3…12 nats
    const nll = Float32Array.from([...new Array(90).fill(0.1), 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const fg = Uint8Array.from([...new Array(90).fill(0), ...new Array(10).fill(1)]);
    const all = nllThresholds([nll]);
    const brain = nllThresholds([nll], [fg]);
    expect(all.lambdaP).toBeCloseTo(3 * 0.1 + 0.1 * 0.9, 5); // between the last background and the first brain code
    expect(brain.lambdaP).toBeCloseTo(11.1, 5);
    expect(brain.lambdaS).toBeCloseTo(11.82, 5);
    expect(brain.raw[0]).toBeCloseTo(12, 5); // the sum runs over every code above λs
    expect(() => nllThresholds([nll], [new Uint8Array(3)])).toThrow(/one flag per code/);
  });
});
