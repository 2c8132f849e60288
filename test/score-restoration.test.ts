import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { tfjsEngine, type LsrEngine } from '../src/methods/lsr/engine.js';
import { codeNlls, disposeLsrNetworks, latentGeometry, type LsrNetworks } from '../src/methods/lsr/networks.js';
import { quantile } from '../src/methods/lsr/calibrate.js';
import { nllOfCode, restoreCodes, restorationUniforms, sampleCode, type RestorationOptions } from '../src/score/restoration.js';
import { randomCodes, tinyNetworks } from './helpers/score-fixtures.js';

let nets: LsrNetworks;
let engine: LsrEngine;
const SLICES = 3;
const COPIES = 5;
let codes: Int32Array;
let positions: Float32Array;
let lambdaP: number;

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: () => undefined });
  nets = tinyNetworks(3);
  engine = tfjsEngine(nets);
  const { positions: cells, codes: k } = latentGeometry(nets.prior);
  codes = randomCodes(SLICES, cells, k, 7);
  positions = Float32Array.from([-0.4, 0.1, 0.45]);
  // The median NLL of the input codes: about half of the codes get resampled.
  lambdaP = quantile(codeNlls(nets.prior, codes, positions), 0.5);
});

afterAll(() => disposeLsrNetworks(nets));

function options(seed: number, extra: Partial<RestorationOptions> = {}): RestorationOptions {
  return { copies: COPIES, lambdaP, seed, sliceKeys: [0, 8, 16], ...extra };
}

describe('JS softmax helpers', () => {
  it('nllOfCode is −log softmax', () => {
    const row = Float32Array.from([0.5, -1, 2, 0.25]);
    const z = row.reduce((a, v) => a + Math.exp(v), 0);
    for (let c = 0; c < 4; c++) expect(nllOfCode(row, 0, 4, c)).toBeCloseTo(-Math.log(Math.exp(row[c]) / z), 10);
  });

  it('sampleCode inverts the CDF', () => {
    const row = Float32Array.from([0, Math.log(2), -Infinity, Math.log(3)]);
    // probabilities 1/6, 2/6, 0, 3/6: CDF 1/6, 3/6, 3/6, 1
    expect(sampleCode(row, 0, 4, 0)).toBe(0);
    expect(sampleCode(row, 0, 4, 0.16)).toBe(0);
    expect(sampleCode(row, 0, 4, 0.17)).toBe(1);
    expect(sampleCode(row, 0, 4, 0.49)).toBe(1);
    expect(sampleCode(row, 0, 4, 0.51)).toBe(3);
    expect(sampleCode(row, 0, 4, 0.999999)).toBe(3);
  });

  it('uniform streams depend on the slice key, not on the other slices', () => {
    const both = restorationUniforms(5, [0, 8], 2, 4);
    const alone = restorationUniforms(5, [8], 2, 4);
    expect(Array.from(both.subarray(8))).toEqual(Array.from(alone));
    expect(Array.from(both.subarray(0, 8))).not.toEqual(Array.from(alone));
  });
});

describe('restoreCodes', () => {
  it('the exact shortcut gives the codes of the naive loop with fewer prior passes', async () => {
    const naive = await restoreCodes(engine, codes, positions, options(11, { mode: 'naive', maxBatch: 4 }));
    const fast = await restoreCodes(engine, codes, positions, options(11));
    expect(naive.stats.changed).toBeGreaterThan(0);
    expect(Array.from(fast.codes)).toEqual(Array.from(naive.codes));
    expect(fast.stats.resampled).toBe(naive.stats.resampled);
    expect(fast.stats.changed).toBe(naive.stats.changed);
    expect(naive.stats.mapPasses).toBe(naive.stats.naiveCopyPasses);
    expect(naive.stats.naiveCopyPasses).toBe(16 * SLICES * COPIES);
    expect(fast.stats.mapPasses).toBeLessThan(naive.stats.mapPasses);
    // At most one pass per change, plus the one initial pass per slice.
    expect(fast.stats.mapPasses).toBeLessThanOrEqual(fast.stats.changed + SLICES);
  });

  it('copies of a slice diverge from each other and from the input', async () => {
    const { codes: out } = await restoreCodes(engine, codes, positions, options(2));
    const cells = 16;
    const copiesOfSlice0 = Array.from({ length: COPIES }, (_, j) => Array.from(out.subarray(j * cells, (j + 1) * cells)).join(','));
    expect(new Set(copiesOfSlice0).size).toBeGreaterThan(1);
    expect(copiesOfSlice0).not.toContain(Array.from(codes.subarray(0, cells)).join(','));
  });

  it('the same seed gives identical codes, another seed different ones', async () => {
    const a = await restoreCodes(engine, codes, positions, options(4));
    const b = await restoreCodes(engine, codes, positions, options(4));
    const c = await restoreCodes(engine, codes, positions, options(5));
    expect(Array.from(a.codes)).toEqual(Array.from(b.codes));
    expect(Array.from(a.codes)).not.toEqual(Array.from(c.codes));
  });

  it('restoring a slice alone gives the same codes as restoring it with others', async () => {
    const cells = 16;
    const all = await restoreCodes(engine, codes, positions, options(9));
    const alone = await restoreCodes(engine, codes.slice(cells, 2 * cells), positions.slice(1, 2), {
      ...options(9),
      sliceKeys: [8],
    });
    expect(Array.from(alone.codes)).toEqual(Array.from(all.codes.subarray(COPIES * cells, 2 * COPIES * cells)));
  });

  it('λp above every NLL leaves the codes alone after one pass per slice', async () => {
    const { codes: out, stats } = await restoreCodes(engine, codes, positions, options(1, { lambdaP: 1e9 }));
    for (let n = 0; n < SLICES; n++) {
      for (let j = 0; j < COPIES; j++) {
        expect(Array.from(out.subarray((n * COPIES + j) * 16, (n * COPIES + j + 1) * 16))).toEqual(Array.from(codes.subarray(n * 16, (n + 1) * 16)));
      }
    }
    expect(stats.mapPasses).toBe(SLICES);
    expect(stats.resampled).toBe(0);
  });

  it('leaks no tensors across the position loop', async () => {
    await restoreCodes(engine, codes, positions, options(3));
    const before = tf.memory().numTensors;
    await restoreCodes(engine, codes, positions, options(3));
    await restoreCodes(engine, codes, positions, options(3, { mode: 'naive' }));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects codes outside the codebook', async () => {
    const bad = codes.slice();
    bad[3] = 99;
    await expect(restoreCodes(engine, bad, positions, options(1))).rejects.toThrow(/code 99/);
  });
});
