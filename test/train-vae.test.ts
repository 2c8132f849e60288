import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { loadModel } from '../src/models/weights.js';
import { disposeParams } from '../src/models/params.js';
import { initVae } from '../src/methods/vae/vae.js';
import type { VaeConfig } from '../src/methods/vae/config.js';
import { registerTrain } from '../src/cli/train.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { createTrainingEngine } from '../src/train/engine.js';
import { flattenParams, paramLayout, type ImageBatch } from '../src/train/loop-worker.js';
import { trainVae, type VaeTrainOptions } from '../src/methods/vae/trainer.js';
import { TINY_VAE as TINY_SCORE_VAE } from './helpers/score-fixtures.js';
import { capture, normalFolder, tempRoot } from './helpers/train-fixtures.js';

const TINY_VAE: VaeConfig = { ...TINY_SCORE_VAE, latentDim: 8 };

let root: string;
let cleanup: () => Promise<void>;
let data: string;

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: () => undefined });
  ({ root, cleanup } = await tempRoot('moodlsr-train-vae-'));
  data = await normalFolder(root, 'normals', 5);
});
afterAll(async () => {
  await cleanup();
});

function options(out: string, extra: Partial<VaeTrainOptions> = {}): VaeTrainOptions {
  const c = capture();
  return {
    region: 'brain',
    data: [data],
    outDir: join(root, out),
    preset: 'compact',
    config: TINY_VAE,
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

describe('trainVae', () => {
  it('the negative ELBO falls on tiny synthetic volumes; weights, checkpoint and record are written', async () => {
    const opts = options('falls', { epochs: 4 });
    const result = await trainVae(opts);
    const h = result.state.history;
    expect(h).toHaveLength(4);
    expect(h[3]!.train.loss).toBeLessThan(0.8 * h[0]!.train.loss!);
    expect(h[3]!.holdout.loss).toBeLessThan(h[0]!.holdout.loss!);
    for (const r of h) {
      expect(r.holdout.kl).toBeGreaterThan(0);
      expect(r.holdout.recNll).toBeGreaterThan(0);
      expect(r.holdout.rec).toBeGreaterThan(0);
    }
    const best = loadModel<VaeConfig>(opts.outDir, 'vae', 'vae');
    expect(best.config).toEqual(TINY_VAE);
    disposeParams(best.params);
    const record = JSON.parse(readFileSync(join(opts.outDir, 'training.json'), 'utf8'));
    expect(record.model).toBe('vae');
    expect(record.epochsDone).toBe(4);
    expect(record.holdoutVolumes).toHaveLength(1);
    expect(record.bestHoldoutLoss).toBe(Math.min(...h.map((r) => r.holdout.loss!)));
  });

  it('a run resumed from its checkpoint ends bit-identical to an uninterrupted one', async () => {
    const whole = await trainVae(options('whole', { epochs: 3 }));
    await trainVae(options('resumed', { epochs: 2 }));
    const c = capture();
    const resumed = await trainVae({ ...options('resumed', { epochs: 3, resume: true }), log: c.log });
    expect(c.lines.some((l) => l.startsWith('resuming after epoch 2'))).toBe(true);
    expect(resumed.state.step).toBe(whole.state.step);
    expect(Buffer.from(resumed.weights.buffer).equals(Buffer.from(whole.weights.buffer))).toBe(true);
    const a = loadCheckpoint(join(root, 'whole'))!;
    const b = loadCheckpoint(join(root, 'resumed'))!;
    expect(Buffer.from(b.adamM.buffer).equals(Buffer.from(a.adamM.buffer))).toBe(true);
    expect(b.state.history.map((r) => r.train.loss)).toEqual(a.state.history.map((r) => r.train.loss));
    await expect(trainVae(options('resumed', { epochs: 4, resume: true, config: { ...TINY_VAE, recStd: 1 } }))).rejects.toThrow(/cannot resume/);
  });

  it('two wasm worker threads give the gradient of the whole batch (dense layers included)', async () => {
    const model = { kind: 'vae' as const, config: { ...TINY_VAE, dropout: 0 } };
    const layout = paramLayout(model);
    const params = initVae(model.config, 2);
    const weights = flattenParams(params, layout);
    disposeParams(params);
    const rng = createRng(6);
    const batch: ImageBatch = {
      kind: 'images',
      images: Float32Array.from({ length: 4 * 256 }, () => rng.normal()),
      positions: Float32Array.from([-0.4, -0.1, 0.2, 0.4]),
      count: 4,
      size: 16,
    };
    const local = await createTrainingEngine(model, { workers: 0, backend: 'wasm' });
    const pool = await createTrainingEngine(model, { workers: 2, backend: 'wasm' });
    try {
      // The reparameterisation noise is seeded per part, so compare with z = μ: evaluate, not gradients.
      const a = await local.evaluate(weights, 1, [batch]);
      const b = await pool.evaluate(weights, 1, [batch]);
      expect(b.means.loss).toBeCloseTo(a.means.loss!, 5);
      expect(b.means.kl).toBeCloseTo(a.means.kl!, 3);
      const g = await pool.gradients(weights, 1, batch, 0);
      const dense = layout.entries.find((e) => e.name === 'dec.dense.w')!;
      expect(g.grads.subarray(dense.offset, dense.offset + dense.size).some((v) => v !== 0)).toBe(true);
    } finally {
      await local.close();
      await pool.close();
    }
  });

  it('the train vae command trains with --rec-std and --latent and records them', async () => {
    const out = join(root, 'cli');
    const program = new Command().exitOverride();
    registerTrain(program);
    const stderr = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      await program.parseAsync(
        ['train', 'vae', '--region', 'brain', '--data', data, '--out', out, '--epochs', '1', '--steps-per-epoch', '1', '--batch', '2', '--holdout', '1', '--workers', '0', '--backend', 'wasm', '--rec-std', '0.3', '--latent', '16'],
        { from: 'user' },
      );
    } finally {
      process.stderr.write = stderr;
    }
    const record = JSON.parse(readFileSync(join(out, 'training.json'), 'utf8'));
    expect(record.config.recStd).toBe(0.3);
    expect(record.config.latentDim).toBe(16);
    expect(record.config.inputSize).toBe(128);
  });
});
