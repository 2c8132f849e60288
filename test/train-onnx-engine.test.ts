/**
 * `moodlsr train … --engine onnx` end to end on tiny volumes: the VQ-VAE trains on ONNX Runtime, its
 * checkpoint resumes on TF.js and a TF.js checkpoint resumes on ONNX Runtime (the same flat weights
 * and Adam moments), and `auto` picks ONNX Runtime.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { resolveTrainEngine } from '../src/train/engine-choice.js';
import { trainVqvae, type VqvaeTrainOptions } from '../src/train/vqvae-trainer.js';
import { TINY_VQVAE, capture, normalFolder, tempRoot } from './helpers/train-fixtures.js';

let root: string;
let cleanup: () => Promise<void>;
let data: string;

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: () => undefined });
  ({ root, cleanup } = await tempRoot('moodlsr-train-onnx-'));
  data = await normalFolder(root, 'normals', 4);
});
afterAll(async () => {
  await cleanup();
});

function options(out: string, extra: Partial<VqvaeTrainOptions>): VqvaeTrainOptions {
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
    stepsPerEpoch: 3,
    epochs: 1,
    seed: 3,
    lr: 3e-3,
    workers: 0,
    backend: 'wasm',
    log: c.log,
    sink: c.sink,
    ...extra,
  };
}

describe('train --engine onnx', () => {
  it('auto resolves to ONNX Runtime for every network with a training graph', async () => {
    for (const kind of ['vqvae', 'pixelsnail', 'vae', 'transformer'] as const) {
      const r = await resolveTrainEngine('auto', { kind, config: {} } as never);
      expect(r.engine).toBe('onnx');
    }
    expect((await resolveTrainEngine('tfjs', { kind: 'vqvae', config: TINY_VQVAE })).engine).toBe('tfjs');
  });

  it('trains the VQ-VAE on ONNX Runtime; checkpoints resume across engines in both directions', async () => {
    const first = await trainVqvae(options('a', { engine: 'onnx' }));
    expect(first.state.epoch).toBe(1);
    const record = JSON.parse(readFileSync(join(root, 'a', 'training.json'), 'utf8')) as { engine: string; history: { train: { loss: number } }[] };
    expect(record.engine).toBe('onnx');
    expect(Number.isFinite(record.history[0]!.train.loss)).toBe(true);
    const afterOnnx = loadCheckpoint(join(root, 'a'))!;
    // ONNX checkpoint → TF.js epoch 2 → ONNX epoch 3.
    const second = await trainVqvae(options('a', { engine: 'tfjs', epochs: 2, resume: true }));
    expect(second.state.epoch).toBe(2);
    expect(second.state.step).toBe(6);
    const afterTf = loadCheckpoint(join(root, 'a'))!;
    expect(afterTf.weights).not.toEqual(afterOnnx.weights);
    const third = await trainVqvae(options('a', { engine: 'onnx', epochs: 3, resume: true }));
    expect(third.state.epoch).toBe(3);
    expect(third.state.step).toBe(9);
    const history = third.state.history.map((h) => h.train.loss);
    expect(history).toHaveLength(3);
    for (const loss of history) expect(Number.isFinite(loss)).toBe(true);
  });
});
