/**
 * The DISYRE U-Net (src/methods/disyre): parameter and output shapes, ONNX Runtime (the project's
 * emitter) against the TF.js forward pass on tiny random networks, the ONNX training engine's
 * gradients against finite differences, and a loss that falls over a few Adam steps.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { condInputSize, DISYRE_PRESETS, validateDisyreConfig, type DisyreConfig } from '../src/methods/disyre/config.js';
import { corruptSlice } from '../src/methods/disyre/corrupt.js';
import { conditionInput } from '../src/methods/disyre/embedding.js';
import { emitDisyreForward } from '../src/methods/disyre/emit-unet.js';
import { createDisyreTrainingEngine, disyreLayout, disyreStartWeights, initialDisyreWeights, type DisyreBatch } from '../src/methods/disyre/train-engine.js';
import { DISYRE_KIND, DISYRE_NAME } from '../src/methods/disyre/config.js';
import { saveFlatModel } from '../src/train/checkpoint.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { disyreForward, disyreHeads, disyreParamSpecs, initDisyre } from '../src/methods/disyre/unet.js';
import { disposeParams, type ParamMap } from '../src/models/params.js';
import { hostParams } from '../src/onnx/emit-blocks.js';
import { createSession, requireOnnxRuntime } from '../src/onnx/runtime.js';
import { adamStep, DEFAULT_ADAM } from '../src/train/loop.js';
import type { OnnxTrainingEngine } from '../src/train/onnx-engine.js';
import type { ParamLayout } from '../src/train/param-layout.js';

const TINY = DISYRE_PRESETS.tiny;
const THREE_LEVELS: DisyreConfig = { ...TINY, channels: [4, 6, 8], inputSize: 16, normGroups: 2 };

beforeAll(async () => {
  await initEngine({ prefer: 'cpu', log: () => undefined });
});

/** Random biases, norm scales and an output conv that matters, so every path is exercised. */
function randomParams(cfg: DisyreConfig, seed: number): ParamMap {
  const params = initDisyre(cfg, seed);
  const rng = createRng(seed + 1);
  for (const [name, v] of Object.entries(params)) {
    if (/\.b$|\.g$|^out\./.test(name)) v.assign(tf.add(v, tf.tensor(Array.from({ length: v.size }, () => 0.3 * rng.normal()), v.shape)));
  }
  return params;
}

function inputs(cfg: DisyreConfig, count: number, seed: number): { images: Float32Array; cond: Float32Array; levels: Float32Array; positions: Float32Array } {
  const rng = createRng(seed);
  const s = cfg.inputSize;
  const images = Float32Array.from({ length: count * s * s }, () => rng.next());
  const levels = Float32Array.from({ length: count }, () => rng.next());
  const positions = Float32Array.from({ length: count }, () => rng.uniform(-0.5, 0.5));
  return { images, cond: conditionInput(cfg, levels, positions), levels, positions };
}

/** The engine's gradient of the middle element of each named parameter against a central difference of the loss. */
async function expectFiniteDifferences(engine: OnnxTrainingEngine, weights: Float32Array, layout: ParamLayout, batch: DisyreBatch, grads: Float32Array, names: readonly string[]): Promise<void> {
  let version = 2;
  const lossAt = async (w: Float32Array) => (await engine.evaluate(w, version++, [batch])).means.loss!;
  for (const name of names) {
    const entry = layout.entries.find((e) => e.name === name)!;
    const k = entry.offset + Math.floor(entry.size / 2);
    const h = 1e-2;
    const plus = weights.slice();
    plus[k] += h;
    const minus = weights.slice();
    minus[k] -= h;
    const numeric = ((await lossAt(plus)) - (await lossAt(minus))) / (2 * h);
    expect(Math.abs(grads[k]! - numeric)).toBeLessThan(0.05 * Math.abs(numeric) + 2e-5);
  }
}

describe('DISYRE U-Net', () => {
  it('has the configured parameters and maps [B, S, S, 1] to [B, S, S, 1]', () => {
    expect(validateDisyreConfig(DISYRE_PRESETS.compact)).toBe(DISYRE_PRESETS.compact);
    expect(() => validateDisyreConfig({ ...TINY, inputSize: 18, channels: [4, 8, 8] })).toThrow(/divisible/);
    const layout = disyreLayout(DISYRE_PRESETS.compact);
    expect(layout.total).toBeLessThan(300_000);
    expect(disyreParamSpecs(TINY).map((s) => s.name)).toContain('dec0.cond.w');
    const params = randomParams(TINY, 1);
    const x = inputs(TINY, 3, 2);
    const y = disyreForward(params, TINY, tf.tensor4d(x.images, [3, 16, 16, 1]), tf.tensor2d(x.cond, [3, condInputSize(TINY)]));
    expect(y.shape).toEqual([3, 16, 16, 1]);
    expect((y.dataSync() as Float32Array).every(Number.isFinite)).toBe(true);
    y.dispose();
    disposeParams(params);
  });

  for (const [name, cfg] of [['2 levels', TINY], ['3 levels', THREE_LEVELS]] as const) {
    it(`ONNX Runtime equals TF.js (${name})`, async () => {
      const ort = await requireOnnxRuntime();
      const params = randomParams(cfg, 11);
      const s = cfg.inputSize;
      const x = inputs(cfg, 4, 12);
      const expected = disyreForward(params, cfg, tf.tensor4d(x.images, [4, s, s, 1]), tf.tensor2d(x.cond, [4, condInputSize(cfg)]));
      const want = expected.dataSync() as Float32Array;
      const session = await createSession(emitDisyreForward(hostParams(params), cfg).encode({ producerVersion: 'test' }), { threads: 1 });
      const out = await session.run({ image: new ort.Tensor('float32', x.images, [4, s, s, 1]), cond: new ort.Tensor('float32', x.cond, [4, condInputSize(cfg)]) });
      await session.release();
      const got = out.xhat!.data as Float32Array;
      expect(out.xhat!.dims).toEqual([4, s, s, 1]);
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < want.length; i++) {
        diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
        scale = Math.max(scale, Math.abs(want[i]! - x.images[i]!));
      }
      expect(scale).toBeGreaterThan(0.05); // the network does change its input
      expect(diff / scale).toBeLessThan(1e-4);
      expected.dispose();
      disposeParams(params);
    });
  }

  function batchOf(cfg: DisyreConfig, count: number, seed: number): DisyreBatch {
    const s = cfg.inputSize;
    const rng = createRng(seed);
    const images = new Float32Array(count * s * s);
    const targets = new Float32Array(count * s * s);
    const levels = new Float32Array(count);
    const positions = new Float32Array(count);
    const masks = new Float32Array(count * s * s);
    for (let b = 0; b < count; b++) {
      const clean = new Float32Array(s * s);
      for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) if (Math.hypot(x - s / 2, y - s / 2) < 0.4 * s) clean[y * s + x] = 0.4 + 0.3 * ((x + y + b) % 3 === 0 ? 1 : 0);
      const c = corruptSlice(clean, s, null, createRng(rng.seed()));
      images.set(c.image, b * s * s);
      targets.set(clean, b * s * s);
      for (let p = 0; p < s * s; p++) masks[b * s * s + p] = c.mask[p]! * c.level;
      levels[b] = c.level;
      positions[b] = rng.uniform(-0.5, 0.5);
    }
    return { kind: 'images', images, targets, levels, positions, masks, count, size: s };
  }

  it('training graph gradients match finite differences of the loss', async () => {
    const engine = await createDisyreTrainingEngine(TINY, { threads: 1 });
    try {
      const weights = await initialDisyreWeights(TINY, 3);
      const layout = disyreLayout(TINY);
      const rng = createRng(9);
      for (let i = 0; i < weights.length; i++) weights[i] += 0.05 * rng.normal();
      const batch = batchOf(TINY, 3, 4);
      const { grads } = await engine.gradients(weights, 1, batch, 0);
      // One element of a conv, a conditioning weight, a norm scale and the output conv.
      await expectFiniteDifferences(engine, weights, layout, batch, grads, ['in.w', 'enc0.cond.w', 'dec0.norm1.g', 'out.w', 'cond.fc1.w']);
    } finally {
      await engine.close();
    }
  });

  it('a batch split over two worker sessions gives the one-session gradients (targets and levels split with the slices)', async () => {
    const one = await createDisyreTrainingEngine(TINY, { threads: 1 });
    const two = await createDisyreTrainingEngine(TINY, { threads: 1, sessions: 2 });
    try {
      const weights = await initialDisyreWeights(TINY, 4);
      const batch = batchOf(TINY, 5, 6);
      const images = batch.images.slice();
      const a = await one.gradients(weights, 1, batch, 0);
      const b = await two.gradients(weights, 1, batch, 0);
      let d = 0;
      let m = 0;
      for (let i = 0; i < a.grads.length; i++) {
        d = Math.max(d, Math.abs(a.grads[i]! - b.grads[i]!));
        m = Math.max(m, Math.abs(a.grads[i]!));
      }
      expect(d / m).toBeLessThan(1e-5);
      expect(Math.abs(b.stats.means.loss! - a.stats.means.loss!)).toBeLessThan(1e-5 * a.stats.means.loss!);
      const ea = await one.evaluate(weights, 1, [batch, batchOf(TINY, 3, 7)]);
      const eb = await two.evaluate(weights, 1, [batch, batchOf(TINY, 3, 7)]);
      expect(eb.count).toBe(8);
      expect(Math.abs(eb.means.loss! - ea.means.loss!)).toBeLessThan(1e-5 * ea.means.loss!);
      // The caller's batch is neither detached nor changed by the transfers to the workers.
      expect(batch.images).toEqual(images);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('the loss falls over a few Adam steps on ONNX Runtime', async () => {
    const engine = await createDisyreTrainingEngine(TINY, { threads: 1 });
    try {
      const weights = await initialDisyreWeights(TINY, 0);
      const m = new Float32Array(weights.length);
      const v = new Float32Array(weights.length);
      const batch = batchOf(TINY, 8, 5);
      const before = (await engine.evaluate(weights, 0, [batch])).means.loss!;
      for (let step = 1; step <= 15; step++) {
        const { grads } = await engine.gradients(weights, step, batch, step);
        adamStep(weights, grads, m, v, step, { ...DEFAULT_ADAM, lr: 3e-3 });
      }
      const after = (await engine.evaluate(weights, 100, [batch])).means.loss!;
      expect(after).toBeLessThan(0.7 * before);
    } finally {
      await engine.close();
    }
  });

  it('a warm start (--init) reads back the saved weights exactly and refuses another config', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'moodlsr-disyre-init-'));
    try {
      const weights = await initialDisyreWeights(TINY, 7);
      saveFlatModel(dir, DISYRE_NAME, { kind: DISYRE_KIND, config: TINY, layout: disyreLayout(TINY), weights });
      const start = await disyreStartWeights(dir, TINY);
      expect(start.weights).toEqual(weights);
      expect(start.label).toMatch(/:[0-9a-f]{16}$/);
      expect(await initialDisyreWeights(TINY, 8)).not.toEqual(weights);
      await expect(disyreStartWeights(dir, THREE_LEVELS)).rejects.toThrow(/disyre\.json.*config differs/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('with the segmentation head', () => {
    const SEG: DisyreConfig = { ...TINY, segmentationWeight: 0.5 };

    it('adds one 1×1 head; ONNX Runtime equals TF.js for x̂ and the probabilities', async () => {
      expect(() => validateDisyreConfig({ ...TINY, segmentationWeight: -1 })).toThrow(/segmentationWeight/);
      expect(disyreLayout(SEG).total - disyreLayout(TINY).total).toBe(TINY.channels[0]! + 1);
      const ort = await requireOnnxRuntime();
      const params = randomParams(SEG, 21);
      const x = inputs(SEG, 3, 22);
      const s = SEG.inputSize;
      const heads = disyreHeads(params, SEG, tf.tensor4d(x.images, [3, s, s, 1]), tf.tensor2d(x.cond, [3, condInputSize(SEG)]));
      const session = await createSession(emitDisyreForward(hostParams(params), SEG).encode({ producerVersion: 'test' }), { threads: 1 });
      const out = await session.run({ image: new ort.Tensor('float32', x.images, [3, s, s, 1]), cond: new ort.Tensor('float32', x.cond, [3, condInputSize(SEG)]) });
      await session.release();
      const seg = heads.seg!.dataSync() as Float32Array;
      expect(heads.seg!.shape).toEqual([3, s, s, 1]);
      expect(seg.every((p) => p > 0 && p < 1)).toBe(true);
      const got = out.segmentation!.data as Float32Array;
      for (let i = 0; i < seg.length; i++) expect(Math.abs(got[i]! - seg[i]!)).toBeLessThan(1e-5);
      const xhat = out.xhat!.data as Float32Array;
      const want = heads.xhat.dataSync() as Float32Array;
      for (let i = 0; i < want.length; i++) expect(Math.abs(xhat[i]! - want[i]!)).toBeLessThan(1e-4);
      heads.xhat.dispose();
      heads.seg!.dispose();
      disposeParams(params);
    });

    it('training graph gradients (MSE + weighted cross-entropy) match finite differences; the masks are fed', async () => {
      const engine = await createDisyreTrainingEngine(SEG, { threads: 1 });
      try {
        const weights = await initialDisyreWeights(SEG, 3);
        const layout = disyreLayout(SEG);
        const rng = createRng(19);
        for (let i = 0; i < weights.length; i++) weights[i] += 0.05 * rng.normal();
        const batch = batchOf(SEG, 3, 4);
        expect(batch.masks!.some((m) => m > 0.1)).toBe(true);
        const { grads, stats } = await engine.gradients(weights, 1, batch, 0);
        expect(stats.means.bce).toBeGreaterThan(0);
        expect(stats.means.loss).toBeGreaterThan(0.5 * stats.means.bce!);
        await expectFiniteDifferences(engine, weights, layout, batch, grads, ['seg.w', 'seg.b', 'in.w', 'dec0.norm2.g']);
        const { masks: _dropped, ...withoutMasks } = batch;
        await expect(engine.gradients(weights, 9, withoutMasks, 0)).rejects.toThrow(/corruption masks/);
      } finally {
        await engine.close();
      }
    });

    it('a warm start from a network without the head keeps its trunk and starts the head fresh', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'moodlsr-disyre-seg-init-'));
      try {
        const trunk = await initialDisyreWeights(TINY, 7);
        saveFlatModel(dir, DISYRE_NAME, { kind: DISYRE_KIND, config: TINY, layout: disyreLayout(TINY), weights: trunk });
        const start = await disyreStartWeights(dir, SEG, 5);
        const fresh = await initialDisyreWeights(SEG, 5);
        const old = disyreLayout(TINY);
        for (const e of disyreLayout(SEG).entries) {
          const from = old.entries.find((o) => o.name === e.name);
          const want = from ? trunk.subarray(from.offset, from.offset + from.size) : fresh.subarray(e.offset, e.offset + e.size);
          expect(start.weights.subarray(e.offset, e.offset + e.size)).toEqual(want);
        }
        expect(start.label).toMatch(/\+fresh\(seg\.b,seg\.w\)$/);
        await expect(disyreStartWeights(dir, { ...THREE_LEVELS, segmentationWeight: 0.5 })).rejects.toThrow(/config differs/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
