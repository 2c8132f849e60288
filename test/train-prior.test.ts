import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { loadModel } from '../src/models/weights.js';
import { disposeParams } from '../src/models/params.js';
import { vqvaeEncodeCodes } from '../src/models/vqvae.js';
import type { VqvaeConfig } from '../src/models/config.js';
import { loadCodeCache } from '../src/train/code-cache.js';
import { openVolumeFolder } from '../src/train/dataset.js';
import { trainPrior, type PriorTrainOptions } from '../src/train/prior-trainer.js';
import { trainVqvae } from '../src/train/vqvae-trainer.js';
import { TINY_PRIOR, TINY_VQVAE, capture, normalFolder, tempRoot } from './helpers/train-fixtures.js';

let root: string;
let cleanup: () => Promise<void>;
let data: string;
let vqvaeDir: string;

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: () => undefined });
  ({ root, cleanup } = await tempRoot('moodlsr-train-prior-'));
  data = await normalFolder(root, 'normals', 4, 2);
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

function options(out: string, extra: Partial<PriorTrainOptions> = {}): PriorTrainOptions {
  const c = capture();
  return {
    region: 'brain',
    data: [data],
    outDir: join(root, out),
    preset: 'compact',
    vqvaeDir,
    config: TINY_PRIOR,
    batch: 8,
    holdout: 1,
    stepsPerEpoch: 6,
    epochs: 4,
    seed: 1,
    lr: 1e-2,
    workers: 0,
    backend: 'wasm',
    log: c.log,
    sink: c.sink,
    ...extra,
  };
}

describe('trainPrior', () => {
  it('the cross-entropy falls and the held-out NLL is reported every epoch', async () => {
    const opts = options('prior');
    const result = await trainPrior(opts);
    const h = result.state.history;
    expect(h).toHaveLength(4);
    expect(h[3]!.train.loss).toBeLessThan(0.9 * h[0]!.train.loss!);
    for (const r of h) expect(r.holdout.loss).toBeGreaterThan(0);
    expect(h[3]!.holdout.loss).toBeLessThan(h[0]!.holdout.loss!);
    const best = loadModel(opts.outDir, 'pixelsnail', 'pixelsnail');
    expect(best.config).toMatchObject({ codebookSize: TINY_VQVAE.codebookSize, height: 4, width: 4 });
    disposeParams(best.params);
  });

  it('the code cache equals encoding every slice directly with the frozen VQ-VAE, and is reused on resume', async () => {
    const opts = options('cache', { epochs: 1 });
    await trainPrior(opts);
    const vq = loadModel<VqvaeConfig>(vqvaeDir, 'vqvae', 'vqvae');
    const folder = await openVolumeFolder([data], { region: 'brain', size: TINY_VQVAE.inputSize, log: () => undefined });
    const manifest = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(join(opts.outDir, 'codes.json'), 'utf8')));
    const cache = loadCodeCache(opts.outDir, manifest.key)!;
    expect(cache).not.toBeNull();
    expect(cache.volumes).toHaveLength(folder.files.length);
    for (const cached of cache.volumes) {
      const entry = folder.files.find((f) => f.file === cached.file)!;
      const s = entry.stack;
      const direct = tf.tidy(() =>
        vqvaeEncodeCodes(vq.params, vq.config, tf.tensor4d(s.data, [s.count, s.height, s.width, 1]), tf.tensor1d(s.positions)).dataSync(),
      );
      expect(Array.from(cached.codes)).toEqual(Array.from(direct));
      expect(Array.from(cached.positions)).toEqual(Array.from(s.positions));
    }
    disposeParams(vq.params);

    const c = capture();
    const resumed = await trainPrior({ ...options('cache', { epochs: 2, resume: true }), log: c.log });
    expect(c.lines.some((l) => l.startsWith('code cache: reusing'))).toBe(true);
    expect(resumed.state.history.map((r) => r.epoch)).toEqual([1, 2]);
  });
});
