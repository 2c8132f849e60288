import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { loadModel } from '../src/models/weights.js';
import { disposeParams } from '../src/models/params.js';
import { CODEBOOK, initVqvae } from '../src/models/vqvae.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { createTrainingEngine } from '../src/train/engine.js';
import { adamStep, clipValues, codebookUsage, type EpochContext } from '../src/train/loop.js';
import { flattenParams, paramLayout, type ImageBatch } from '../src/train/loop-worker.js';
import { reseedDeadCodes, trainVqvae, type VqvaeTrainOptions } from '../src/train/vqvae-trainer.js';
import { TINY_VQVAE, capture, normalFolder, tempRoot } from './helpers/train-fixtures.js';

let root: string;
let cleanup: () => Promise<void>;
let data: string;

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: () => undefined });
  ({ root, cleanup } = await tempRoot('moodlsr-train-vqvae-'));
  data = await normalFolder(root, 'normals', 5);
});
afterAll(async () => {
  await cleanup();
});

function options(out: string, extra: Partial<VqvaeTrainOptions> = {}): VqvaeTrainOptions {
  const c = capture();
  return {
    region: 'brain',
    data: [data],
    outDir: join(root, out),
    preset: 'compact',
    config: TINY_VQVAE,
    augment: 'none',
    batch: 4,
    holdout: 1,
    stepsPerEpoch: 5,
    epochs: 3,
    seed: 3,
    lr: 3e-3,
    workers: 0,
    backend: 'wasm',
    log: c.log,
    sink: c.sink,
    ...extra,
  };
}

function imageBatch(count: number, size: number, seed: number): ImageBatch {
  const rng = createRng(seed);
  const images = Float32Array.from({ length: count * size * size }, () => rng.normal());
  const positions = Float32Array.from({ length: count }, (_, i) => -0.5 + i / count);
  return { kind: 'images', images, positions, count, size };
}

describe('Adam and clipping', () => {
  it('clipValues clamps to ±limit and leaves the rest', () => {
    const g = Float32Array.from([-3, -0.5, 0, 0.25, 2]);
    clipValues(g, 1);
    expect(Array.from(g)).toEqual([-1, -0.5, 0, 0.25, 1]);
  });

  it('adamStep: the first step moves every weight by lr against the sign of its gradient', () => {
    const w = Float32Array.from([1, 1, 1]);
    const g = Float32Array.from([0.3, -2, 1e-3]);
    const m = new Float32Array(3);
    const v = new Float32Array(3);
    adamStep(w, g, m, v, 1, { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-12 });
    expect(w[0]).toBeCloseTo(0.99, 5);
    expect(w[1]).toBeCloseTo(1.01, 5);
    expect(w[2]).toBeCloseTo(0.99, 5);
  });

  it('adamStep with clip: the update of clipValues then adamStep, with the gradients left as they were', () => {
    const g = Float32Array.from([-3, -0.5, 0, 0.25, 2, 1e-4]);
    const clipped = Float32Array.from(g);
    clipValues(clipped, 1);
    const state = () => ({ w: Float32Array.from([0.5, -1, 2, 0, 1, 3]), m: Float32Array.from([0.1, 0, -0.2, 0.05, 0, 0]), v: Float32Array.from([0.01, 0, 0.04, 1e-6, 0, 0]) });
    const a = state();
    const b = state();
    for (let t = 1; t <= 3; t++) {
      adamStep(a.w, clipped, a.m, a.v, t, { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
      adamStep(b.w, g, b.m, b.v, t, { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, 1);
    }
    for (let i = 0; i < g.length; i++) {
      expect(b.w[i]).toBeCloseTo(a.w[i]!, 6);
      expect(b.m[i]).toBeCloseTo(a.m[i]!, 7);
      expect(b.v[i]).toBeCloseTo(a.v[i]!, 7);
    }
    expect(b.w[0]).not.toBeCloseTo(state().w[0]!, 3);
    expect(Array.from(g)).toEqual(Array.from(Float32Array.from([-3, -0.5, 0, 0.25, 2, 1e-4])));
  });

  it('codebookUsage: perplexity = number of codes for a uniform histogram', () => {
    expect(codebookUsage(Int32Array.from([5, 5, 5, 5, 0]))).toEqual({ perplexity: expect.closeTo(4, 10), used: 4 });
    expect(codebookUsage(Int32Array.from([9, 0, 0])).perplexity).toBeCloseTo(1, 10);
  });
});

describe('trainVqvae', () => {
  it('the loss falls on tiny synthetic volumes and the run writes weights, checkpoint and record', async () => {
    const opts = options('falls', { epochs: 4 });
    const result = await trainVqvae(opts);
    const h = result.state.history;
    expect(h).toHaveLength(4);
    expect(h[3]!.train.rec).toBeLessThan(0.8 * h[0]!.train.rec!);
    expect(h[3]!.holdout.loss).toBeLessThan(h[0]!.holdout.loss!);
    for (const r of h) {
      expect(r.codesUsed).toBeGreaterThan(0);
      expect(r.perplexity).toBeGreaterThanOrEqual(1);
      expect(r.reseeded).toBeGreaterThanOrEqual(0);
    }
    const best = loadModel(opts.outDir, 'vqvae', 'vqvae');
    expect(best.config).toEqual(TINY_VQVAE);
    disposeParams(best.params);
    const record = JSON.parse(readFileSync(join(opts.outDir, 'training.json'), 'utf8'));
    expect(record.epochsDone).toBe(4);
    expect(record.backend).toBe('wasm');
    expect(record.holdoutVolumes).toHaveLength(1);
    expect(record.bestEpoch).toBe(result.state.bestEpoch);
    expect(record.bestHoldoutLoss).toBe(Math.min(...h.map((r) => r.holdout.loss!)));
  });

  it('a run resumed from its checkpoint ends bit-identical to an uninterrupted one', async () => {
    const whole = await trainVqvae(options('whole', { epochs: 3 }));
    const first = await trainVqvae(options('resumed', { epochs: 2 }));
    expect(first.state.epoch).toBe(2);
    const c = capture();
    const resumed = await trainVqvae({ ...options('resumed', { epochs: 3, resume: true }), log: c.log });
    expect(c.lines.some((l) => l.startsWith('resuming after epoch 2'))).toBe(true);
    expect(resumed.state.history.map((r) => r.epoch)).toEqual([1, 2, 3]);
    expect(resumed.state.step).toBe(whole.state.step);
    expect(Buffer.from(resumed.weights.buffer).equals(Buffer.from(whole.weights.buffer))).toBe(true);
    const a = loadCheckpoint(join(root, 'whole'))!;
    const b = loadCheckpoint(join(root, 'resumed'))!;
    expect(Buffer.from(b.adamV.buffer).equals(Buffer.from(a.adamV.buffer))).toBe(true);
    expect(b.state.history.map((r) => r.train.loss)).toEqual(a.state.history.map((r) => r.train.loss));
  });

  it('--resume refuses a checkpoint made with other settings', async () => {
    await trainVqvae(options('other', { epochs: 1 }));
    await expect(trainVqvae(options('other', { epochs: 2, resume: true, seed: 4 }))).rejects.toThrow(/cannot resume/);
  });
});

describe('dead-code re-seeding', () => {
  it('re-seeds exactly the unused codes with encoder outputs of the batch and zeroes their Adam moments', async () => {
    const model = { kind: 'vqvae' as const, config: TINY_VQVAE };
    const layout = paramLayout(model);
    const params = initVqvae(TINY_VQVAE, 1);
    const weights = flattenParams(params, layout);
    disposeParams(params);
    const engine = await createTrainingEngine(model, { workers: 0, backend: 'wasm' });
    const batch = imageBatch(2, 16, 5);
    const counts = new Int32Array(16).fill(3);
    counts[2] = 0;
    counts[9] = 0;
    const adamM = new Float32Array(layout.total).fill(0.5);
    const adamV = new Float32Array(layout.total).fill(0.5);
    const before = weights.slice();
    let changes = 0;
    const ctx: EpochContext = {
      epoch: 1,
      rng: createRng(1),
      weights,
      adamM,
      adamV,
      version: 1,
      changed: () => changes++,
      lastBatch: batch,
      trainStats: { count: 2, means: { loss: 1 }, codeCounts: counts },
      engine,
    };
    const reseeded = await reseedDeadCodes(ctx, TINY_VQVAE, layout);
    expect(reseeded).toBe(2);
    expect(changes).toBe(1);
    const z = await engine.latents(weights, 99, batch);
    const d = TINY_VQVAE.codeDim;
    const entry = layout.entries.find((e) => e.name === CODEBOOK)!;
    const vectors = new Set(Array.from({ length: z.length / d }, (_, j) => Array.from(z.subarray(j * d, (j + 1) * d)).join(',')));
    for (let k = 0; k < 16; k++) {
      const row = weights.subarray(entry.offset + k * d, entry.offset + (k + 1) * d);
      const moved = Array.from(row).some((x, i) => x !== before[entry.offset + k * d + i]);
      expect(moved).toBe(k === 2 || k === 9);
      if (moved) {
        expect(vectors.has(Array.from(row).join(','))).toBe(true);
        expect(Array.from(adamM.subarray(entry.offset + k * d, entry.offset + (k + 1) * d)).every((x) => x === 0)).toBe(true);
      }
    }
    await engine.close();
  });
});

describe('data-parallel engine', () => {
  it('two wasm worker threads give the gradient of the whole batch', async () => {
    const model = { kind: 'vqvae' as const, config: { ...TINY_VQVAE, dropout: 0 } };
    const layout = paramLayout(model);
    const params = initVqvae(model.config, 2);
    const weights = flattenParams(params, layout);
    disposeParams(params);
    const batch = imageBatch(4, 16, 6);
    const local = await createTrainingEngine(model, { workers: 0, backend: 'wasm' });
    const pool = await createTrainingEngine(model, { workers: 2, backend: 'wasm' });
    try {
      const a = await local.gradients(weights, 1, batch, 0);
      const b = await pool.gradients(weights, 1, batch, 0);
      expect(b.stats.count).toBe(4);
      expect(b.stats.means.loss).toBeCloseTo(a.stats.means.loss!, 4);
      let maxDiff = 0;
      let maxAbs = 0;
      for (let i = 0; i < a.grads.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(a.grads[i]! - b.grads[i]!));
        maxAbs = Math.max(maxAbs, Math.abs(a.grads[i]!));
      }
      expect(maxAbs).toBeGreaterThan(0);
      expect(maxDiff).toBeLessThan(1e-3 * maxAbs);
      expect(Array.from(b.stats.codeCounts!).reduce((x, y) => x + y, 0)).toBe(4 * 4 * 4);
    } finally {
      await local.close();
      await pool.close();
    }
  });
});
