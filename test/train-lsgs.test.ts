import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { disposeParams } from '../src/models/params.js';
import { loadModel } from '../src/models/weights.js';
import type { TransformerConfig, VqvaeConfig } from '../src/models/index.js';
import { aggregateCodebook, type AggregateReport } from '../src/methods/lsgs/aggregate.js';
import { assignToNearest, kmeans, kmeansPlusPlus, usedClusters } from '../src/methods/lsgs/kmeans.js';
import { trainTransformer, type TransformerTrainOptions } from '../src/methods/lsgs/trainer.js';
import { trainVqvae } from '../src/train/vqvae-trainer.js';
import { TINY_VQVAE, capture, normalFolder, tempRoot } from './helpers/train-fixtures.js';

/** n points around `centres` well-separated 2-D blobs. */
function blobs(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const centres = [
    [0, 0],
    [10, 0],
    [0, 10],
    [10, 10],
  ];
  const out = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const c = centres[i % 4]!;
    out[2 * i] = c[0]! + 0.5 * rng.normal();
    out[2 * i + 1] = c[1]! + 0.5 * rng.normal();
  }
  return out;
}

describe('k-means', () => {
  it('k-means++ is deterministic for a seed and differs between seeds', () => {
    const data = blobs(200, 1);
    const a = kmeansPlusPlus(data, 2, 4, createRng('s'));
    const b = kmeansPlusPlus(data, 2, 4, createRng('s'));
    const c = kmeansPlusPlus(data, 2, 4, createRng('t'));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    // Every centre is a data point.
    for (let k = 0; k < 4; k++) {
      let found = false;
      for (let i = 0; i < 200; i++) if (data[2 * i] === a[2 * k] && data[2 * i + 1] === a[2 * k + 1]) found = true;
      expect(found).toBe(true);
    }
  });

  it('Lloyd iterations never increase the objective and find the four blobs', () => {
    const data = blobs(400, 2);
    // A deliberately poor start for some seeds: check monotonicity over several seeds.
    for (const seed of ['a', 'b', 'c']) {
      const r = kmeans(data, 2, { k: 4, rng: createRng(seed), iterations: 20 });
      for (let i = 1; i < r.objective.length; i++) expect(r.objective[i]!).toBeLessThanOrEqual(r.objective[i - 1]! * (1 + 1e-12));
      expect(usedClusters(r.assignments, 4)).toBe(4);
      // Within-blob spread only: mean squared distance ≈ 2 · 0.5².
      expect(r.objective[r.objective.length - 1]! / 400).toBeLessThan(0.75);
      expect(assignToNearest(data, 2, r.centroids).objective).toBeCloseTo(r.objective[r.objective.length - 1]!, 6);
    }
    const same = kmeans(data, 2, { k: 4, rng: createRng('a') });
    const again = kmeans(data, 2, { k: 4, rng: createRng('a') });
    expect(Array.from(same.centroids)).toEqual(Array.from(again.centroids));
  });

  it('re-seeds empty clusters and refuses bad shapes', () => {
    // Duplicate points: k-means++ must repeat centres; the result still uses every cluster it can.
    const data = Float32Array.from([0, 0, 0, 0, 0, 0, 5, 5, 5, 5, 9, 9]);
    const r = kmeans(data, 2, { k: 3, rng: createRng(1) });
    expect(usedClusters(r.assignments, 3)).toBe(3);
    expect(r.objective[r.objective.length - 1]).toBe(0);
    expect(() => kmeans(data, 5, { k: 2, rng: createRng(1) })).toThrow(/rows of 5/);
    expect(() => kmeans(data, 2, { k: 7, rng: createRng(1) })).toThrow(/k = 7/);
  });
});

let root: string;
let cleanup: () => Promise<void>;
let data: string;
let vqvaeDir: string;

const TINY_TRANSFORMER: TransformerConfig = {
  codebookSize: 16,
  height: 4,
  width: 4,
  dim: 16,
  layers: 2,
  heads: 2,
  mlpDim: 32,
  dropout: 0.1,
  condChannels: 1,
  causal: false,
};

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: () => undefined });
  ({ root, cleanup } = await tempRoot('moodlsr-train-lsgs-'));
  data = await normalFolder(root, 'normals', 4, 3);
  vqvaeDir = join(root, 'vq');
  const c = capture();
  await trainVqvae({
    region: 'brain',
    data: [data],
    outDir: vqvaeDir,
    preset: 'compact',
    config: TINY_VQVAE,
    augment: 'none',
    batch: 4,
    holdout: 1,
    stepsPerEpoch: 6,
    epochs: 2,
    seed: 1,
    lr: 3e-3,
    workers: 0,
    backend: 'wasm',
    log: c.log,
    sink: c.sink,
  });
});
afterAll(async () => {
  await cleanup();
});

describe('aggregated codebook', () => {
  it('k-means codebook → fine-tuned VQ-VAE with the new codebook size, and a before/after report', async () => {
    const out = join(root, 'aggregate');
    const c = capture();
    const result = await aggregateCodebook({
      region: 'brain',
      data: [data],
      outDir: out,
      preset: 'compact',
      vqvaeDir,
      augment: 'none',
      codebookSize: 12,
      kmeansIterations: 10,
      batch: 4,
      holdout: 1,
      stepsPerEpoch: 4,
      epochs: 2,
      seed: 1,
      lr: 1e-3,
      // Worker threads: the encoder vectors are computed twice from the same batches (a transferred
      // batch once left the second pass hanging).
      workers: 2,
      backend: 'wasm',
      log: c.log,
      sink: c.sink,
    });
    const report = JSON.parse(readFileSync(join(out, 'aggregate.json'), 'utf8')) as AggregateReport;
    expect(report).toEqual(JSON.parse(JSON.stringify(result.report)));
    expect(report.codebookSize).toEqual({ before: 16, after: 12 });
    for (let i = 1; i < report.kmeans.objective.length; i++) expect(report.kmeans.objective[i]!).toBeLessThanOrEqual(report.kmeans.objective[i - 1]! * (1 + 1e-9));
    // k-means minimises the quantisation error of these very vectors: at most the original codebook's
    // error would be guaranteed only for k ≥ 16, so compare with the objective it reached instead.
    expect(report.aggregated.trainQuantisationMse).toBeCloseTo(report.kmeans.objective[report.kmeans.objective.length - 1]! / report.vectors.clustered, 4);
    expect(report.aggregated.trainCodesUsed).toBe(12);
    expect(report.original.holdoutRec).toBeGreaterThan(0);
    expect(report.fineTuned).not.toBeNull();
    expect(report.fineTune.epochs).toBe(2);
    const tuned = loadModel<VqvaeConfig>(out, 'vqvae', 'vqvae');
    expect(tuned.config.codebookSize).toBe(12);
    expect(tuned.params['codebook.E']!.shape).toEqual([12, TINY_VQVAE.codeDim]);
    disposeParams(tuned.params);
    expect(c.lines.some((l) => l.startsWith('k-means:'))).toBe(true);
  });
});

function options(out: string, extra: Partial<TransformerTrainOptions> = {}): TransformerTrainOptions {
  const c = capture();
  return {
    region: 'brain',
    data: [data],
    outDir: join(root, out),
    preset: 'compact',
    vqvaeDir,
    config: TINY_TRANSFORMER,
    batch: 8,
    holdout: 1,
    stepsPerEpoch: 6,
    epochs: 4,
    seed: 1,
    lr: 3e-3,
    workers: 0,
    backend: 'wasm',
    log: c.log,
    sink: c.sink,
    ...extra,
  };
}

describe('trainTransformer', () => {
  it('learns to repair tampered maps: the repair loss and the tampered CE fall', async () => {
    const result = await trainTransformer(options('transformer', { lr: 1e-2, stepsPerEpoch: 10 }));
    const h = result.state.history;
    expect(h).toHaveLength(4);
    // Tiny codes of tiny volumes carry little context: the fall is modest but clear.
    expect(h[3]!.train.loss!).toBeLessThan(0.95 * h[0]!.train.loss!);
    expect(h[3]!.train.ceTampered!).toBeLessThan(0.95 * h[0]!.train.ceTampered!);
    expect(Math.min(...h.slice(1).map((r) => r.holdout.loss!))).toBeLessThan(h[0]!.holdout.loss!);
    for (const r of h) expect(r.holdout.ceUntampered).toBeGreaterThan(0);
    const best = loadModel<TransformerConfig>(join(root, 'transformer'), 'transformer', 'transformer');
    expect(best.config).toMatchObject({ codebookSize: TINY_VQVAE.codebookSize, height: 4, width: 4, causal: false });
    disposeParams(best.params);
    const record = JSON.parse(readFileSync(join(root, 'transformer', 'training.json'), 'utf8'));
    expect(record).toMatchObject({ tamperFraction: 0.1, beta: 0.01 });
  });

  it('resumes exactly (1 + 1 epochs = 2 epochs) and trains the causal ablation without tampering', async () => {
    const straight = await trainTransformer(options('straight', { epochs: 2 }));
    await trainTransformer(options('resumed', { epochs: 1 }));
    const resumed = await trainTransformer(options('resumed', { epochs: 2, resume: true }));
    expect(Buffer.from(resumed.weights.buffer).equals(Buffer.from(straight.weights.buffer))).toBe(true);
    const causal = await trainTransformer(options('causal', { epochs: 1, causal: true }));
    expect(causal.state.history[0]!.train.ceTampered).toBeUndefined();
    const record = JSON.parse(readFileSync(join(root, 'causal', 'training.json'), 'utf8'));
    expect(record).toMatchObject({ tamperFraction: 0, config: { causal: true } });
  });
});
