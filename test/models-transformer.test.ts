import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { disposeParams } from '../src/models/params.js';
import {
  initTransformer,
  matMulExplicitGrad,
  transformerLogits,
  transformerPreset,
  transformerRepairLoss,
  validateTransformerConfig,
  type TransformerConfig,
} from '../src/methods/lsgs/transformer.js';
import { loadModel, saveModel } from '../src/models/weights.js';
import { repairLossWeights, tamperCodes, tamperCount } from '../src/methods/lsgs/tamper.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TINY: TransformerConfig = {
  codebookSize: 6,
  height: 3,
  width: 4,
  dim: 8,
  layers: 2,
  heads: 2,
  mlpDim: 12,
  dropout: 0.1,
  condChannels: 1,
  causal: false,
};

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: () => undefined });
});

function logitsOf(cfg: TransformerConfig, params: ReturnType<typeof initTransformer>, codes: Int32Array, pos = 0.1): Float32Array {
  const t = tf.tidy(() => transformerLogits(params, cfg, tf.tensor3d(codes, [1, cfg.height, cfg.width], 'int32'), tf.tensor1d([pos])));
  const out = Float32Array.from(t.dataSync());
  t.dispose();
  return out;
}

/** Positions whose logits change when the code at `at` changes. */
function affectedPositions(cfg: TransformerConfig, at: number): number[] {
  const params = initTransformer(cfg, 5);
  try {
    const rng = createRng(9);
    const n = cfg.height * cfg.width;
    const codes = Int32Array.from({ length: n }, () => rng.int(cfg.codebookSize));
    const changed = codes.slice();
    changed[at] = (codes[at]! + 1) % cfg.codebookSize;
    const a = logitsOf(cfg, params, codes);
    const b = logitsOf(cfg, params, changed);
    const k = cfg.codebookSize;
    const out: number[] = [];
    for (let p = 0; p < n; p++) {
      let diff = 0;
      for (let c = 0; c < k; c++) diff = Math.max(diff, Math.abs(a[p * k + c]! - b[p * k + c]!));
      if (diff > 1e-6) out.push(p);
    }
    return out;
  } finally {
    disposeParams(params);
  }
}

describe('transformer prior', () => {
  it('full attention: changing one code changes the predictions before, at and after it', () => {
    const n = TINY.height * TINY.width;
    expect(affectedPositions(TINY, 5)).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it('causal: changing code j changes only the predictions after j', () => {
    const cfg = { ...TINY, causal: true };
    const n = cfg.height * cfg.width;
    expect(affectedPositions(cfg, 5)).toEqual(Array.from({ length: n - 6 }, (_, i) => i + 6));
    expect(affectedPositions(cfg, n - 1)).toEqual([]);
    expect(affectedPositions(cfg, 0)).toEqual(Array.from({ length: n - 1 }, (_, i) => i + 1));
  });

  it('the slice position conditions the output', () => {
    const params = initTransformer(TINY, 2);
    // Not a constant vector: LayerNorm removes a shift along (1, …, 1).
    params['embed.cond.w']!.assign(tf.linspace(-1, 1, TINY.dim));
    const codes = new Int32Array(12).fill(3);
    const a = logitsOf(TINY, params, codes, -0.4);
    const b = logitsOf(TINY, params, codes, 0.4);
    expect(a.some((v, i) => Math.abs(v - b[i]!) > 1e-5)).toBe(true);
    disposeParams(params);
  });

  it('the explicit-transpose matMul gradient equals the stock one (2-D and batched)', () => {
    for (const [sa, sb] of [[[5, 3], [3, 4]], [[2, 5, 3], [2, 3, 4]]] as const) {
      const a = tf.randomNormal([...sa], 0, 1, 'float32', 1);
      const b = tf.randomNormal([...sb], 0, 1, 'float32', 2);
      const r = tf.randomNormal([...sa.slice(0, -1), 4], 0, 1, 'float32', 3);
      const ours = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(matMulExplicitGrad(x, y), r)))([a, b]);
      const stock = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x as tf.Tensor3D, y as tf.Tensor3D), r)))([a, b]);
      for (let i = 0; i < 2; i++) {
        const d = ours[i]!.dataSync();
        const e = stock[i]!.dataSync();
        expect(d.length).toBe(e.length);
        d.forEach((v, j) => expect(v).toBeCloseTo(e[j]!, 4));
      }
      tf.dispose([a, b, r, ...ours, ...stock]);
    }
  });

  it('validates configs, and saves/loads through the weights format', () => {
    expect(() => validateTransformerConfig({ ...TINY, dim: 10, heads: 4 })).toThrow(/not divisible by heads/);
    expect(() => validateTransformerConfig({ ...TINY, causal: 'yes' })).toThrow(/causal/);
    expect(transformerPreset('compact', 'brain')).toMatchObject({ height: 16, width: 16, dim: 64, heads: 4, causal: false });
    const dir = mkdtempSync(join(tmpdir(), 'moodlsr-transformer-'));
    try {
      const params = initTransformer(TINY, 1);
      saveModel(dir, 'transformer', { kind: 'transformer', config: TINY, params });
      const loaded = loadModel<TransformerConfig>(dir, 'transformer', 'transformer');
      expect(loaded.config).toEqual(TINY);
      expect(Array.from(loaded.params['embed.code']!.dataSync())).toEqual(Array.from(params['embed.code']!.dataSync()));
      disposeParams(params);
      disposeParams(loaded.params);
      saveModel(dir, 'bad', { kind: 'transformer', config: { ...TINY, layers: 3 }, params: initTransformer(TINY, 1) });
      expect(() => loadModel(dir, 'bad', 'transformer')).toThrow(/missing tensor layer2/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tampering and the repair loss', () => {
  it('tampers exactly round(fraction·N) positions per map, each to a different code, reproducibly', () => {
    const cells = 50;
    const codes = Int32Array.from({ length: 4 * cells }, (_, i) => i % 7);
    const a = tamperCodes(codes, cells, 7, 0.1, createRng('t'));
    const b = tamperCodes(codes, cells, 7, 0.1, createRng('t'));
    const c = tamperCodes(codes, cells, 7, 0.1, createRng('u'));
    expect(Array.from(a.input)).toEqual(Array.from(b.input));
    expect(Array.from(a.tampered)).not.toEqual(Array.from(c.tampered));
    for (let m = 0; m < 4; m++) {
      const flags = a.tampered.subarray(m * cells, (m + 1) * cells);
      expect(flags.reduce((s, f) => s + f, 0)).toBe(5);
    }
    for (let i = 0; i < codes.length; i++) {
      if (a.tampered[i]) expect(a.input[i]).not.toBe(codes[i]);
      else expect(a.input[i]).toBe(codes[i]);
      expect(a.input[i]).toBeGreaterThanOrEqual(0);
      expect(a.input[i]).toBeLessThan(7);
    }
    expect(tamperCount(256, 0.1)).toBe(26);
    expect(tamperCount(256, 0)).toBe(0);
    expect(tamperCount(4, 0.01)).toBe(1);
  });

  it('loss weights: (1−β)/m on tampered, β/(N−m) on untampered, 1/N without tampering', () => {
    const w = repairLossWeights(Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0]), 4, 0.01);
    expect(w[0]).toBeCloseTo(0.99, 7);
    for (const i of [1, 2, 3]) expect(w[i]).toBeCloseTo(0.01 / 3, 9);
    for (const i of [4, 5, 6, 7]) expect(w[i]).toBeCloseTo(0.25, 9);
  });

  it('the repair loss equals the hand-computed (1−β)·mean CE(tampered) + β·mean CE(untampered), averaged over maps', () => {
    const params = initTransformer(TINY, 3);
    // Sharper outputs so the CE values differ clearly between positions.
    params['out.head.w']!.assign(tf.mul(params['out.head.w']!, 4));
    const n = TINY.height * TINY.width;
    const k = TINY.codebookSize;
    const rng = createRng(4);
    const targets = Int32Array.from({ length: 2 * n }, () => rng.int(k));
    const { input, tampered } = tamperCodes(targets, n, k, 0.25, createRng(5));
    const beta = 0.01;
    const weights = repairLossWeights(tampered, n, beta);
    const shape: [number, number, number] = [2, TINY.height, TINY.width];
    const pos = [-0.2, 0.3];
    const out = tf.tidy(() => {
      const r = transformerRepairLoss(
        params,
        TINY,
        tf.tensor3d(input, shape, 'int32'),
        tf.tensor3d(targets, shape, 'int32'),
        tf.tensor3d(weights, shape),
        tf.tensor3d(Float32Array.from(tampered), shape),
        tf.tensor1d(pos),
        { training: false },
      );
      return [r.loss, r.ceTampered, r.ceUntampered];
    });
    const [loss, ceT, ceU] = out.map((t) => t.dataSync()[0]!);
    tf.dispose(out);

    let expected = 0;
    let sumT = 0;
    let sumU = 0;
    let nT = 0;
    let nU = 0;
    for (let m = 0; m < 2; m++) {
      const logits = tf.tidy(() => transformerLogits(params, TINY, tf.tensor3d(input.subarray(m * n, (m + 1) * n), [1, TINY.height, TINY.width], 'int32'), tf.tensor1d([pos[m]!])));
      const l = logits.dataSync();
      logits.dispose();
      const ceT: number[] = [];
      const ceU: number[] = [];
      for (let p = 0; p < n; p++) {
        let max = -Infinity;
        for (let c = 0; c < k; c++) max = Math.max(max, l[p * k + c]!);
        let z = 0;
        for (let c = 0; c < k; c++) z += Math.exp(l[p * k + c]! - max);
        const ce = max + Math.log(z) - l[p * k + targets[m * n + p]!]!;
        (tampered[m * n + p] ? ceT : ceU).push(ce);
      }
      expect(ceT).toHaveLength(3);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      expected += ((1 - beta) * mean(ceT) + beta * mean(ceU)) / 2;
      sumT += ceT.reduce((a, b) => a + b, 0);
      sumU += ceU.reduce((a, b) => a + b, 0);
      nT += ceT.length;
      nU += ceU.length;
    }
    expect(loss).toBeCloseTo(expected, 5);
    expect(ceT).toBeCloseTo(sumT / nT, 5);
    expect(ceU).toBeCloseTo(sumU / nU, 5);
    // The tampered term dominates: far from the unweighted mean CE when the groups differ.
    expect(Math.abs(loss - (sumT + sumU) / (nT + nU))).toBeGreaterThan(1e-3);
    disposeParams(params);
  });
});
