/**
 * ONNX Runtime training engine (src/train/onnx-engine.ts) against the TF.js one on tiny networks:
 * the loss statistics, the flat gradients and one full training step (grad-value clip 1 + Adam)
 * agree; held-out evaluation and encoding agree; dropout masks are seeded.
 */
import { describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { adamStep, DEFAULT_ADAM } from '../src/train/loop.js';
import { flattenParams, ModelRunner, paramLayout, type ImageBatch, type ModelSpec } from '../src/train/loop-worker.js';
import { createOnnxTrainingEngine } from '../src/train/onnx-engine.js';
import { dropoutMasks } from '../src/train/onnx-dropout.js';
import { initVqvae } from '../src/models/vqvae.js';
import { TINY_PRIOR, TINY_VAE, TINY_VQVAE } from './helpers/score-fixtures.js';
import { initVae } from '../src/methods/vae/vae.js';
import { initTransformer } from '../src/methods/lsgs/transformer.js';
import { initPixelSnail } from '../src/methods/lsr/pixelsnail.js';
import type { CodeBatch } from '../src/train/loop-worker.js';

/** max |a − b| / max(max |b|, floor): `floor` keeps gradients that are zero in exact arithmetic (rounding noise) from failing. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-30): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return d / Math.max(s, floor);
}

/** Per parameter tensor, relative to the tensor's scale or 1e-3 of the whole gradient's (a key bias's gradient is exactly zero: softmax is shift-invariant). */
function expectPerTensor(layout: ReturnType<typeof paramLayout>, grads: Float32Array, reference: Float32Array, tolerance: number): void {
  const floor = 1e-3 * reference.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  for (const e of layout.entries) {
    const a = grads.subarray(e.offset, e.offset + e.size);
    const b = reference.subarray(e.offset, e.offset + e.size);
    expect(relativeError(a, b, floor), e.name).toBeLessThan(tolerance);
  }
}

function imageBatch(count: number, size: number, seed: string): ImageBatch {
  const rng = createRng(seed);
  const images = Float32Array.from({ length: count * size * size }, (_, i) => {
    const y = Math.floor((i % (size * size)) / size);
    const x = i % size;
    return Math.max(0, 1 - ((x - size / 2) ** 2 + (y - size / 2) ** 2) / (size * size * 0.2)) + 0.05 * rng.next();
  });
  return { kind: 'images', images, positions: Float32Array.from({ length: count }, () => rng.uniform(-1, 1)), count, size };
}

/** Tiny VQ-VAE weights with the codebook spread over encoder outputs' scale, so several codes are chosen. */
function tinyVqvaeWeights(model: ModelSpec & { kind: 'vqvae' }, seed: number): Float32Array {
  const layout = paramLayout(model);
  const params = initVqvae(model.config, seed);
  const weights = flattenParams(params, layout);
  const rng = createRng(`codebook:${seed}`);
  const book = layout.entries.find((e) => e.name === 'codebook.E')!;
  for (let i = 0; i < book.size; i++) weights[book.offset + i] = rng.normal() * 0.5;
  // Non-trivial norms and condition weights, so their gradients are exercised.
  for (const e of layout.entries) {
    if (/\.(g|cond\.w|cond\.b)$/.test(e.name) || (e.name.endsWith('.b') && e.name.includes('norm'))) {
      for (let i = 0; i < e.size; i++) weights[e.offset + i] += 0.3 * rng.normal();
    }
  }
  return weights;
}

describe('ONNX Runtime training vs TF.js: VQ-VAE', () => {
  const model = { kind: 'vqvae' as const, config: { ...TINY_VQVAE, dropout: 0 } };

  it('gradients, losses and one Adam step agree with TF.js', async () => {
    await initEngine({ prefer: 'cpu', log: () => {} });
    const weights = tinyVqvaeWeights(model, 3);
    const batch = imageBatch(4, model.config.inputSize, 'batch');
    const runner = new ModelRunner(model);
    const reference = runner.run({ op: 'gradients', weights, version: 1, batch, seed: 5 });
    const engine = await createOnnxTrainingEngine(model, { threads: 1 });
    try {
      const { grads, stats } = await engine.gradients(weights, 1, batch, 5);
      for (const key of ['loss', 'rec', 'codebook', 'commit']) expect(Math.abs(stats.means[key]! - reference.stats!.means[key]!)).toBeLessThan(1e-5 * Math.max(1, Math.abs(reference.stats!.means[key]!)));
      expect(Array.from(stats.codeCounts!)).toEqual(Array.from(reference.stats!.codeCounts!));
      const gradError = relativeError(grads, reference.grads!);
      expect(gradError).toBeLessThan(1e-4);
      // Per parameter tensor too (small tensors must not hide behind large ones).
      expectPerTensor(paramLayout(model), grads, reference.grads!, 1e-3);
      // One full step on each: clip at 1, Adam at a large rate so the step is visible.
      const step = (g: Float32Array) => {
        const w = weights.slice();
        adamStep(w, g, new Float32Array(w.length), new Float32Array(w.length), 1, { ...DEFAULT_ADAM, lr: 1e-2 }, 1);
        return w;
      };
      const wOnnx = step(grads);
      const wTf = step(reference.grads!);
      const moved = relativeError(wTf, weights);
      expect(moved).toBeGreaterThan(1e-4);
      // Adam's first step is lr·sign(g) wherever |g| ≫ ε: elements with near-zero gradients may differ by up to 2·lr.
      let mismatched = 0;
      for (let i = 0; i < wTf.length; i++) if (Math.abs(wOnnx[i]! - wTf[i]!) > 1e-4) mismatched++;
      expect(mismatched / wTf.length).toBeLessThan(0.01);

      // Held-out evaluation and encoding.
      const evalRef = runner.run({ op: 'evaluate', weights, version: 1, batch });
      const evalOnnx = await engine.evaluate(weights, 1, [batch]);
      expect(Math.abs(evalOnnx.means.loss! - evalRef.stats!.means.loss!)).toBeLessThan(1e-5);
      const codesRef = runner.run({ op: 'encode', weights, version: 1, batch }).codes!;
      const [codesOnnx] = await engine.encode(weights, 1, [batch]);
      expect(Array.from(codesOnnx!)).toEqual(Array.from(codesRef));
      const zRef = runner.run({ op: 'latents', weights, version: 1, batch }).latents!;
      expect(relativeError(await engine.latents(weights, 1, batch), zRef)).toBeLessThan(1e-5);
    } finally {
      await engine.close();
    }
  });

  it('dropout masks are seeded, scaled by 1/(1 − rate) and differ between encoder and decoder', () => {
    const sites = [
      { input: 'a', shape: [8, 1, 1], stream: 'enc' as const },
      { input: 'b', shape: [8, 1, 1], stream: 'dec' as const },
    ];
    const one = dropoutMasks(sites, 16, 0.25, 7);
    const again = dropoutMasks(sites, 16, 0.25, 7);
    expect(Array.from(one.get('a')!)).toEqual(Array.from(again.get('a')!));
    expect(Array.from(one.get('a')!)).not.toEqual(Array.from(one.get('b')!));
    const values = new Set(one.get('a'));
    expect([...values].sort()).toEqual([0, Math.fround(1 / 0.75)]);
    const kept = one.get('a')!.filter((v) => v > 0).length / 128;
    expect(kept).toBeGreaterThan(0.6);
    expect(kept).toBeLessThan(0.9);
  });
});

describe('ONNX Runtime training vs TF.js: PixelSNAIL prior', () => {
  for (const downsample of [1, 2]) {
    it(`gradients and loss agree with TF.js (attention on ${downsample}×${downsample} blocks)`, async () => {
      await initEngine({ prefer: 'cpu', log: () => {} });
      const model = { kind: 'pixelsnail' as const, config: { ...TINY_PRIOR, dropout: 0, attention: { ...TINY_PRIOR.attention!, downsample } } };
      const layout = paramLayout(model);
      const weights = flattenParams(initPixelSnail(model.config, 4), layout);
      const rng = createRng('prior-weights');
      for (const e of layout.entries) if (/\.cond\.|^out\.b$/.test(e.name)) for (let i = 0; i < e.size; i++) weights[e.offset + i] = 0.5 * rng.normal();
      const { height, width, codebookSize } = model.config;
      const count = 3;
      const batch: CodeBatch = {
        kind: 'codes',
        codes: Int32Array.from({ length: count * height * width }, () => rng.int(codebookSize)),
        positions: Float32Array.of(-0.5, 0.1, 0.7),
        count,
        height,
        width,
      };
      const reference = new ModelRunner(model).run({ op: 'gradients', weights, version: 1, batch, seed: 1 });
      const engine = await createOnnxTrainingEngine(model, { threads: 1 });
      try {
        const { grads, stats } = await engine.gradients(weights, 1, batch, 1);
        expect(Math.abs(stats.means.loss! - reference.stats!.means.loss!)).toBeLessThan(1e-5 * reference.stats!.means.loss!);
        expect(relativeError(grads, reference.grads!)).toBeLessThan(1e-4);
        expectPerTensor(layout, grads, reference.grads!, 1e-3);
        const evaluated = await engine.evaluate(weights, 1, [batch]);
        expect(Math.abs(evaluated.means.loss! - reference.stats!.means.loss!)).toBeLessThan(1e-5 * reference.stats!.means.loss!);
      } finally {
        await engine.close();
      }
    });
  }
});

describe('ONNX Runtime training vs TF.js: VAE', () => {
  it('gradients and the ELBO terms agree with TF.js (sampled z, the same seeded noise)', async () => {
    await initEngine({ prefer: 'cpu', log: () => {} });
    const model = { kind: 'vae' as const, config: { ...TINY_VAE, dropout: 0 } };
    const layout = paramLayout(model);
    const weights = flattenParams(initVae(model.config, 2), layout);
    const rng = createRng('vae-weights');
    for (const e of layout.entries) if (/\.(g|cond\.w|cond\.b)$/.test(e.name)) for (let i = 0; i < e.size; i++) weights[e.offset + i] += 0.3 * rng.normal();
    const batch = imageBatch(3, model.config.inputSize, 'vae-batch');
    const runner = new ModelRunner(model);
    const reference = runner.run({ op: 'gradients', weights, version: 1, batch, seed: 9 });
    const engine = await createOnnxTrainingEngine(model, { threads: 1 });
    try {
      const { grads, stats } = await engine.gradients(weights, 1, batch, 9);
      for (const key of ['loss', 'rec', 'kl', 'recNll']) expect(Math.abs(stats.means[key]! - reference.stats!.means[key]!), key).toBeLessThan(1e-4 * Math.max(1, Math.abs(reference.stats!.means[key]!)));
      expect(relativeError(grads, reference.grads!)).toBeLessThan(1e-4);
      expectPerTensor(layout, grads, reference.grads!, 1e-3);
      const evalRef = runner.run({ op: 'evaluate', weights, version: 1, batch });
      const evalOnnx = await engine.evaluate(weights, 1, [batch]);
      expect(Math.abs(evalOnnx.means.loss! - evalRef.stats!.means.loss!)).toBeLessThan(1e-5 * Math.max(1, evalRef.stats!.means.loss!));
    } finally {
      await engine.close();
    }
  });
});

describe('ONNX Runtime training vs TF.js: LSGS transformer', () => {
  for (const causal of [false, true]) {
    it(`repair-loss gradients agree with TF.js (${causal ? 'causal' : 'bidirectional'})`, async () => {
      await initEngine({ prefer: 'cpu', log: () => {} });
      const config = { codebookSize: 6, height: 3, width: 4, dim: 8, layers: 2, heads: 2, mlpDim: 12, dropout: 0, condChannels: 1 as const, causal };
      const model = { kind: 'transformer' as const, config };
      const layout = paramLayout(model);
      const weights = flattenParams(initTransformer(config, 5), layout);
      const rng = createRng('transformer-weights');
      for (const e of layout.entries) if (/(cond|norm|\.b$)/.test(e.name)) for (let i = 0; i < e.size; i++) weights[e.offset + i] += 0.3 * rng.normal();
      const count = 3;
      const cells = config.height * config.width;
      const codes = Int32Array.from({ length: count * cells }, () => rng.int(config.codebookSize));
      const tampered = Uint8Array.from(codes, () => (rng.next() < 0.3 ? 1 : 0));
      const targets = Int32Array.from(codes, (c, i) => (tampered[i] ? (c + 1) % config.codebookSize : c));
      const lossWeights = Float32Array.from(codes, () => rng.next() / cells);
      const batch: CodeBatch = { kind: 'codes', codes, targets, tampered, lossWeights, positions: Float32Array.of(-0.3, 0.2, 0.6), count, height: config.height, width: config.width };
      const reference = new ModelRunner(model).run({ op: 'gradients', weights, version: 1, batch, seed: 2 });
      const engine = await createOnnxTrainingEngine(model, { threads: 1 });
      try {
        const { grads, stats } = await engine.gradients(weights, 1, batch, 2);
        for (const key of ['loss', 'ceTampered', 'ceUntampered']) expect(Math.abs(stats.means[key]! - reference.stats!.means[key]!), key).toBeLessThan(1e-5 * Math.max(1, reference.stats!.means[key]!));
        expect(relativeError(grads, reference.grads!)).toBeLessThan(1e-4);
        expectPerTensor(layout, grads, reference.grads!, 1e-3);
      } finally {
        await engine.close();
      }
    });
  }
});

describe('ONNX Runtime training: a batch split over sessions', () => {
  it('two sessions give the one-session gradients and statistics (dropout masks sliced from the whole batch)', async () => {
    await initEngine({ prefer: 'cpu', log: () => {} });
    const model = { kind: 'pixelsnail' as const, config: { ...TINY_PRIOR, dropout: 0.3 } };
    const layout = paramLayout(model);
    const weights = flattenParams(initPixelSnail(model.config, 6), layout);
    const rng = createRng('split-batch');
    const { height, width, codebookSize } = model.config;
    const count = 5; // split 3 + 2: unequal parts must be weighted by their sizes
    const batch: CodeBatch = {
      kind: 'codes',
      codes: Int32Array.from({ length: count * height * width }, () => rng.int(codebookSize)),
      positions: Float32Array.from({ length: count }, () => rng.uniform(-1, 1)),
      count,
      height,
      width,
    };
    const one = await createOnnxTrainingEngine(model, { threads: 1 });
    const two = await createOnnxTrainingEngine(model, { threads: 1, sessions: 2 });
    try {
      expect(two.sessions).toBe(2);
      const a = await one.gradients(weights, 1, batch, 3);
      const b = await two.gradients(weights, 1, batch, 3);
      expect(b.stats.count).toBe(count);
      expect(Math.abs(b.stats.means.loss! - a.stats.means.loss!)).toBeLessThan(1e-5 * a.stats.means.loss!);
      expect(relativeError(b.grads, a.grads)).toBeLessThan(1e-5);
      // Another seed draws other dropout masks: the gradients must move (the masks reach every part).
      const c = await two.gradients(weights, 1, batch, 4);
      expect(relativeError(c.grads, b.grads)).toBeGreaterThan(1e-3);
    } finally {
      await one.close();
      await two.close();
    }
    await expect(createOnnxTrainingEngine(model, { sessions: 0 })).rejects.toThrow(/sessions/);
  });

  it('worker sessions evaluate and encode as this thread does, in order, leaving the caller batches intact', async () => {
    await initEngine({ prefer: 'cpu', log: () => {} });
    const model = { kind: 'vqvae' as const, config: TINY_VQVAE };
    const layout = paramLayout(model);
    const weights = flattenParams(initVqvae(model.config, 2), layout);
    const rng = createRng('worker-encode');
    const s = model.config.inputSize;
    const batchOf = (count: number): ImageBatch => ({
      kind: 'images',
      images: Float32Array.from({ length: count * s * s }, () => rng.uniform(0, 1)),
      positions: Float32Array.from({ length: count }, () => rng.uniform(-1, 1)),
      count,
      size: s,
    });
    const batches = [batchOf(3), batchOf(2), batchOf(4)];
    const one = await createOnnxTrainingEngine(model, { threads: 1 });
    const two = await createOnnxTrainingEngine(model, { threads: 1, sessions: 2 });
    try {
      expect(two.workers).toBe(2);
      const codesOne = await one.encode(weights, 1, batches);
      const codesTwo = await two.encode(weights, 1, batches);
      expect(codesTwo.map((c) => c.length)).toEqual(codesOne.map((c) => c.length));
      codesTwo.forEach((c, i) => expect(Array.from(c)).toEqual(Array.from(codesOne[i]!)));
      const evalOne = await one.evaluate(weights, 1, batches);
      const evalTwo = await two.evaluate(weights, 1, batches);
      expect(evalTwo.count).toBe(9);
      expect(Math.abs(evalTwo.means.loss! - evalOne.means.loss!)).toBeLessThan(1e-5 * evalOne.means.loss!);
      expect(relativeError(await two.latents(weights, 1, batches[0]!), await one.latents(weights, 1, batches[0]!))).toBeLessThan(1e-5);
      expect(batches.map((b) => b.images.length)).toEqual([3, 2, 4].map((n) => n * s * s));
    } finally {
      await one.close();
      await two.close();
    }
  });
});
