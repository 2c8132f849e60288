import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_VQVAE } from './helpers/train-fixtures.js';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { vqvaeLatentSize, vqvaePreset, type VqvaeConfig } from '../src/models/config.js';
import { vqvaeFlops } from '../src/models/flops.js';
import { disposeParams, type ParamMap } from '../src/models/params.js';
import {
  initVqvae,
  vqvaeDecodeCodes,
  vqvaeEncode,
  vqvaeEncodeCodes,
  vqvaeLoss,
  vqvaeParamSpecs,
} from '../src/models/vqvae.js';

const tiny: VqvaeConfig = TINY_VQVAE;

/** Seeded Gaussian blobs of random centre, width and amplitude: x [n,s,s,1], pos [n]. */
function blobs(n: number, size: number, seed: number): { x: tf.Tensor4D; pos: tf.Tensor1D } {
  const rng = createRng(seed);
  const data = new Float32Array(n * size * size);
  for (let b = 0; b < n; b++) {
    const cy = rng.uniform(0.3, 0.7) * size;
    const cx = rng.uniform(0.3, 0.7) * size;
    const sigma = rng.uniform(0.1, 0.25) * size;
    const amp = rng.uniform(0.5, 1.5);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        data[(b * size + y) * size + x] = amp * Math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma * sigma));
      }
    }
  }
  const pos = Array.from({ length: n }, (_, i) => -0.5 + i / Math.max(1, n - 1));
  return { x: tf.tensor4d(data, [n, size, size, 1]), pos: tf.tensor1d(pos) };
}

/** One Adam step on the loss with gradients clipped to ±1 (as the paper); returns the loss. */
function clippedStep(opt: tf.Optimizer, params: ParamMap, loss: () => tf.Scalar): number {
  const { value, grads } = tf.variableGrads(loss, Object.values(params));
  const clipped: tf.NamedTensorMap = {};
  for (const [k, g] of Object.entries(grads)) clipped[k] = tf.clipByValue(g, -1, 1);
  opt.applyGradients(clipped);
  const v = value.dataSync()[0]!;
  tf.dispose([value, grads, clipped]);
  return v;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('VQ-VAE parameters', () => {
  beforeAll(async () => {
    await initEngine({ prefer: 'cpu', log: () => {} });
  });

  it('initialisation is seeded: same seed, same bytes; another seed, other bytes', () => {
    const a = initVqvae(tiny, 3);
    const b = initVqvae(tiny, 3);
    const c = initVqvae(tiny, 4);
    for (const name of Object.keys(a)) {
      expect(Array.from(b[name]!.dataSync())).toEqual(Array.from(a[name]!.dataSync()));
    }
    expect(Array.from(c['enc.stem.w']!.dataSync())).not.toEqual(Array.from(a['enc.stem.w']!.dataSync()));
    [a, b, c].forEach(disposeParams);
  });

  it('names and shapes follow the config', () => {
    const specs = vqvaeParamSpecs(tiny);
    const byName = new Map(specs.map((s) => [s.name, s.shape]));
    expect(byName.get('enc.stem.w')).toEqual([7, 7, 2, 4]);
    expect(byName.get('enc.level1.down.w')).toEqual([5, 5, 8, 8]);
    expect(byName.get('codebook.E')).toEqual([16, 8]);
    expect(byName.get('dec.stem.w')).toEqual([3, 3, 9, 8]);
    expect(byName.get('dec.out.w')).toEqual([1, 1, 4, 1]);
    expect(new Set(specs.map((s) => s.name)).size).toBe(specs.length);
  });

  it('FLOP counts are positive and the compact preset is far cheaper than the reference', () => {
    for (const region of ['brain', 'abdomen'] as const) {
      const ref = vqvaeFlops(vqvaePreset('reference', region));
      const compact = vqvaeFlops(vqvaePreset('compact', region));
      expect(compact.encoder).toBeGreaterThan(0);
      expect(compact.encoder + compact.decoder).toBeLessThan((ref.encoder + ref.decoder) / 5);
    }
  });
});

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`VQ-VAE forward and training on ${backend}`, () => {
    beforeAll(async () => {
      await initEngine({ prefer: backend, log: () => {} });
    });

    it('encodes 16→4×4 codes and decodes back to the input shape, for both upsampling modes', () => {
      for (const upsample of ['nearest-conv', 'transposed'] as const) {
        const cfg = { ...tiny, upsample };
        const params = initVqvae(cfg, 1);
        const { x, pos } = blobs(3, 16, 1);
        const before = tf.memory().numTensors;
        const { z } = vqvaeEncode(params, cfg, x, pos);
        expect(z.shape).toEqual([3, 4, 4, 8]);
        const codes = vqvaeEncodeCodes(params, cfg, x, pos);
        expect(codes.shape).toEqual([3, 4, 4]);
        expect(codes.dtype).toBe('int32');
        const xhat = vqvaeDecodeCodes(params, cfg, codes, pos);
        expect(xhat.shape).toEqual([3, 16, 16, 1]);
        tf.dispose([z, codes, xhat]);
        expect(tf.memory().numTensors).toBe(before);
        tf.dispose([x, pos]);
        disposeParams(params);
      }
    });

    it('the straight-through estimator carries the reconstruction gradient into the encoder', () => {
      for (const upsample of ['nearest-conv', 'transposed'] as const) {
        const cfg = { ...tiny, upsample };
        const params = initVqvae(cfg, 2);
        const { x, pos } = blobs(4, 16, 2);
        const { value, grads } = tf.variableGrads(
          () => vqvaeLoss(params, cfg, x, pos, { training: true, seed: 1 }).rec,
          Object.values(params),
        );
        const byName = new Map(Object.entries(params).map(([name, v]) => [v.name, name]));
        const gradNorm = (name: string) => {
          const entry = Object.entries(grads).find(([vn]) => byName.get(vn) === name);
          return entry === undefined ? 0 : tf.tidy(() => tf.sum(tf.abs(entry[1])).dataSync()[0]!);
        };
        for (const name of ['enc.stem.w', 'enc.level0.block0.conv1.w', 'enc.preq.w', 'dec.out.w', 'dec.stem.w']) {
          const g = gradNorm(name);
          expect(Number.isFinite(g), name).toBe(true);
          expect(g, name).toBeGreaterThan(0);
        }
        // The reconstruction term alone never moves the codebook (its gradient stops at the codes).
        expect(gradNorm('codebook.E')).toBe(0);
        tf.dispose([value, grads, x, pos]);
        disposeParams(params);
      }
    });

    // Training is checked on wasm only: the pure-JS cpu backend's conv gradients are ~20× slower.
    it.runIf(backend === 'wasm')('the loss falls within a few dozen clipped Adam steps', () => {
      const params = initVqvae(tiny, 5);
      const { x, pos } = blobs(8, 16, 5);
      const opt = tf.train.adam(5e-3);
      const losses: number[] = [];
      for (let step = 0; step < 25; step++) {
        losses.push(clippedStep(opt, params, () => vqvaeLoss(params, tiny, x, pos, { training: true, seed: step }).loss));
      }
      expect(losses.every(Number.isFinite)).toBe(true);
      if (process.env.MOODLSR_TEST_VERBOSE) console.log('vqvae losses', losses.map((l) => l.toFixed(3)).join(' '));
      expect(mean(losses.slice(-5))).toBeLessThan(0.6 * mean(losses.slice(0, 3)));
      opt.dispose();
      tf.dispose([x, pos]);
      disposeParams(params);
    });

    it('dropout follows the seed: same seed same loss, inference deterministic', () => {
      const params = initVqvae(tiny, 6);
      const { x, pos } = blobs(4, 16, 6);
      const lossOf = (opts: { training: boolean; seed?: number }) =>
        tf.tidy(() => vqvaeLoss(params, tiny, x, pos, opts).rec.dataSync()[0]!);
      expect(lossOf({ training: true, seed: 11 })).toBe(lossOf({ training: true, seed: 11 }));
      expect(lossOf({ training: true, seed: 11 })).not.toBe(lossOf({ training: true, seed: 12 }));
      expect(lossOf({ training: false, seed: 11 })).toBe(lossOf({ training: false, seed: 12 }));
      tf.dispose([x, pos]);
      disposeParams(params);
    });
  });
}

describe('preset geometry (reference and compact)', () => {
  beforeAll(async () => {
    await initEngine({ prefer: 'wasm', log: () => {} });
  });
  afterAll(async () => {
    await initEngine({ prefer: 'cpu', log: () => {} });
  });

  // The reference widths are too heavy for a test; the geometry (input size, levels, strides) is
  // what decides the latent grid, so it is kept and the widths shrunk.
  for (const region of ['brain', 'abdomen'] as const) {
    it(`reference ${region}: 160×160 → ${region === 'brain' ? 20 : 10}×${region === 'brain' ? 20 : 10} and back`, () => {
      const ref = vqvaePreset('reference', region);
      const cfg: VqvaeConfig = { ...ref, channels: ref.channels.map(() => 2), codeDim: 4, blocksPerLevel: 1 };
      const latent = region === 'brain' ? 20 : 10;
      expect(vqvaeLatentSize(ref)).toBe(latent);
      const params = initVqvae(cfg, 1);
      const { x, pos } = blobs(1, 160, 1);
      const codes = vqvaeEncodeCodes(params, cfg, x, pos);
      expect(codes.shape).toEqual([1, latent, latent]);
      const xhat = vqvaeDecodeCodes(params, cfg, codes, pos);
      expect(xhat.shape).toEqual([1, 160, 160, 1]);
      tf.dispose([x, pos, codes, xhat]);
      disposeParams(params);
    });
  }

  it('compact brain preset at full width: 128×128 → 16×16 → 128×128', () => {
    const cfg = vqvaePreset('compact', 'brain');
    expect(cfg.inputSize).toBe(128);
    const params = initVqvae(cfg, 1);
    const { x, pos } = blobs(2, cfg.inputSize, 2);
    const codes = vqvaeEncodeCodes(params, cfg, x, pos);
    expect(codes.shape).toEqual([2, 16, 16]);
    const xhat = vqvaeDecodeCodes(params, cfg, codes, pos);
    expect(xhat.shape).toEqual([2, 128, 128, 1]);
    expect(Array.from(xhat.dataSync()).every(Number.isFinite)).toBe(true);
    tf.dispose([x, pos, codes, xhat]);
    disposeParams(params);
  });
});
