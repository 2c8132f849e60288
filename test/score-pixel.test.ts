import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { quantile } from '../src/methods/lsr/calibrate.js';
import { inProcessRunner, pixelScoreStack, type PixelRunParameters } from '../src/methods/lsr/model.js';
import { tfjsEngine, type LsrEngine } from '../src/methods/lsr/engine.js';
import { codeNlls, disposeLsrNetworks, type LsrNetworks } from '../src/methods/lsr/networks.js';
import { restorationScores, scaleIntoUnit, smoothScoreStack, stackScoresToVolume, weightedResidual } from '../src/score/pixel-score.js';
import { encodeVolume } from '../src/score/sample-score.js';
import { voxelCount } from '../src/volume/volume.js';
import { tinyBrain, tinyNetworks } from './helpers/score-fixtures.js';

let nets: LsrNetworks;
let engine: LsrEngine;
let lambdaP: number;
const volume = tinyBrain([20, 18, 24], 3, true);

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: () => undefined });
  nets = tinyNetworks(8);
  engine = tfjsEngine(nets);
  const encoded = await encodeVolume(engine, volume, 'brain', { every: 4 });
  lambdaP = quantile(codeNlls(nets.prior, encoded.codes, encoded.stack.positions), 0.6);
});

afterAll(() => disposeLsrNetworks(nets));

function params(seed: number): PixelRunParameters {
  return { region: 'brain', slices: { every: 4 }, copies: 4, lambdaP, k: 3, seed, chunks: 1 };
}

describe('weightedResidual', () => {
  it('is Σ_j softmax_j(k / mean|X − X_j|) |X − X_j|', () => {
    const rng = createRng(1);
    const plane = 12;
    const copies = 3;
    const x = Float32Array.from({ length: plane }, () => rng.normal());
    const restorations = Float32Array.from({ length: copies * plane }, () => rng.normal());
    const got = weightedResidual(x, restorations, copies, 3);
    const means = [0, 1, 2].map((j) => x.reduce((a, v, i) => a + Math.abs(v - restorations[j * plane + i]), 0) / plane);
    const e = means.map((m) => Math.exp(3 / m));
    const w = e.map((v) => v / e.reduce((a, b) => a + b, 0));
    for (let i = 0; i < plane; i++) {
      const expected = [0, 1, 2].reduce((a, j) => a + w[j] * Math.abs(x[i] - restorations[j * plane + i]), 0);
      expect(got[i]).toBeCloseTo(expected, 5);
    }
  });

  it('gives all weight to a perfect restoration without NaN', () => {
    const x = Float32Array.from([1, 2, 3]);
    const got = weightedResidual(x, Float32Array.from([1, 2, 3, 0, 0, 0]), 2);
    expect(Array.from(got)).toEqual([0, 0, 0]);
  });
});

describe('scaling and smoothing', () => {
  it('v / (v + c) is increasing, in [0, 1), 0.5 at c', () => {
    const v = scaleIntoUnit(Float32Array.from([-1, 0, 0.5, 2, 1e6, NaN]), 2);
    expect(v[0]).toBe(0);
    expect(v[1]).toBe(0);
    expect(v[3]).toBeCloseTo(0.5, 6);
    expect(v[2]).toBeLessThan(v[3]);
    expect(v[4]).toBeLessThan(1);
    expect(v[5]).toBe(0);
    expect(() => scaleIntoUnit(new Float32Array(1), 0)).toThrow(/pixel scale/);
  });

  it('min-pool 3 removes a single hot pixel; a 3×3×3 block survives', () => {
    const [n, h, w] = [5, 9, 9];
    const single = new Float32Array(n * h * w);
    single[2 * h * w + 4 * w + 4] = 1;
    expect(Math.max(...smoothScoreStack(single, n, h, w))).toBe(0);
    const block = new Float32Array(n * h * w);
    for (let z = 1; z <= 3; z++) for (let y = 3; y <= 5; y++) for (let x = 3; x <= 5; x++) block[z * h * w + y * w + x] = 1;
    expect(Math.max(...smoothScoreStack(block, n, h, w))).toBeGreaterThan(0);
  });
});

describe('pixel score by restoration', () => {
  it('covers the volume, in [0, 1], deterministic per seed', async () => {
    const run = inProcessRunner(engine);
    const a = await pixelScoreStack(engine, volume, params(1), run);
    expect(a.stats.changed).toBeGreaterThan(0);
    expect(a.smoothed.length).toBe(6 * 16 * 16);
    expect(a.smoothed.every((v) => Number.isFinite(v) && v >= 0)).toBe(true);
    const map = stackScoresToVolume(a.smoothed, a.encoded.stack, volume.shape, 1);
    expect(map.length).toBe(voxelCount(volume.shape));
    expect(map.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(Math.max(...map)).toBeGreaterThan(0);
    const b = await pixelScoreStack(engine, volume, params(1), run);
    const c = await pixelScoreStack(engine, volume, params(2), run);
    expect(Array.from(b.smoothed)).toEqual(Array.from(a.smoothed));
    expect(Array.from(c.smoothed)).not.toEqual(Array.from(a.smoothed));
  });

  it('chunking the slices changes nothing', async () => {
    const run = inProcessRunner(engine);
    const one = await pixelScoreStack(engine, volume, params(6), run);
    const three = await pixelScoreStack(engine, volume, { ...params(6), chunks: 3 }, run);
    expect(Array.from(three.smoothed)).toEqual(Array.from(one.smoothed));
    expect(three.stats.changed).toBe(one.stats.changed);
  });

  it('every slice, or a count of slices, also covers the whole volume', async () => {
    const run = inProcessRunner(engine);
    for (const slices of ['all', { count: 5 }] as const) {
      const r = await pixelScoreStack(engine, volume, { ...params(1), slices }, run);
      expect(r.encoded.stack.count).toBe(slices === 'all' ? 24 : 5);
      const map = stackScoresToVolume(r.smoothed, r.encoded.stack, volume.shape, 1);
      expect(map.length).toBe(voxelCount(volume.shape));
    }
  });

  it('leaks no tensors over a full restoration + decoding', async () => {
    const encoded = await encodeVolume(engine, volume, 'brain', { every: 4 });
    const task = {
      images: encoded.stack.data,
      codes: encoded.codes,
      slicePositions: encoded.stack.positions,
      restoration: { copies: 3, lambdaP, seed: 1, sliceKeys: [...encoded.stack.zs] },
    };
    await restorationScores(engine, task);
    const before = tf.memory().numTensors;
    await restorationScores(engine, task);
    expect(tf.memory().numTensors).toBe(before);
  });
});
