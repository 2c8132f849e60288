import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { disposeParams, type ParamMap } from '../src/models/params.js';
import {
  initVae,
  klDivergence,
  reparameterise,
  vaeDecode,
  vaeEncode,
  vaeLoss,
  vaeParamSpecs,
  vaeTerms,
} from '../src/methods/vae/vae.js';
import { validateVaeConfig, vaeFlatSize, vaePreset, type VaeConfig } from '../src/methods/vae/config.js';
import { CODEBOOK, vqvaeParamSpecs } from '../src/models/vqvae.js';
import { vqvaePreset } from '../src/models/config.js';
import { loadModel, manifestPath, saveModel } from '../src/models/weights.js';
import { TINY_VAE as TINY_SCORE_VAE } from './helpers/score-fixtures.js';

/** The shared tiny VAE, without dropout (as these tests had it). */
const TINY_VAE: VaeConfig = { ...TINY_SCORE_VAE, dropout: 0 };

const root = mkdtempSync(join(tmpdir(), 'moodlsr-models-vae-'));
beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: () => undefined });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function randomImages(count: number, size: number, seed: number): { x: Float32Array; pos: Float32Array } {
  const rng = createRng(seed);
  return {
    x: Float32Array.from({ length: count * size * size }, () => rng.normal()),
    pos: Float32Array.from({ length: count }, (_, i) => -0.5 + (i + 0.5) / count),
  };
}

/** Non-zero conditioning and biases, so positions and biases matter in the checks. */
function randomiseZeros(params: ParamMap, seed: number): void {
  const rng = createRng(seed);
  for (const [name, v] of Object.entries(params)) {
    if (/\.cond\.|\.b$/.test(name)) v.assign(tf.tensor(Array.from({ length: v.size }, () => 0.3 * rng.normal()), v.shape));
  }
}

describe('VAE parameters and config', () => {
  it('shares every VQ-VAE convolution (not the codebook) and adds the dense layers', () => {
    const specs = vaeParamSpecs(TINY_VAE);
    const names = new Set(specs.map((s) => s.name));
    const vq = vqvaeParamSpecs({ ...vqvaePreset('compact', 'brain'), inputSize: 16, channels: [4, 8, 8], normGroups: 2, codeDim: 4, dropout: 0 });
    for (const s of vq) expect(names.has(s.name)).toBe(s.name !== CODEBOOK);
    const flat = vaeFlatSize(TINY_VAE);
    expect(flat).toBe(4 * 4 * 4);
    expect(specs.find((s) => s.name === 'enc.mu.w')!.shape).toEqual([flat, 6]);
    expect(specs.find((s) => s.name === 'enc.logvar.w')!.shape).toEqual([flat, 6]);
    expect(specs.find((s) => s.name === 'dec.dense.w')!.shape).toEqual([6, flat]);
  });

  it('presets: the VQ-VAE geometry with a 128-d latent and σ = 1', () => {
    for (const [preset, region] of [['compact', 'brain'], ['reference', 'brain'], ['compact', 'abdomen'], ['reference', 'abdomen']] as const) {
      const cfg = validateVaeConfig(vaePreset(preset, region));
      const vq = vqvaePreset(preset, region);
      expect(cfg.channels).toEqual(vq.channels);
      expect(cfg.inputSize).toBe(vq.inputSize);
      expect(cfg.latentDim).toBe(128);
      expect(cfg.recStd).toBe(1);
    }
    expect(() => validateVaeConfig({ ...TINY_VAE, recStd: 0 })).toThrow(/recStd/);
    expect(() => validateVaeConfig({ ...TINY_VAE, inputSize: 18 })).toThrow(/invalid VAE config.*divisible/);
  });

  it('saves and loads through the weights format with kind vae; a config that does not fit the tensors is refused', () => {
    const params = initVae(TINY_VAE, 3);
    saveModel(root, 'vae', { kind: 'vae', config: TINY_VAE, params });
    const loaded = loadModel<VaeConfig>(root, 'vae', 'vae');
    expect(loaded.config).toEqual(TINY_VAE);
    expect(Array.from(loaded.params['enc.mu.w']!.dataSync())).toEqual(Array.from(params['enc.mu.w']!.dataSync()));
    disposeParams(loaded.params);
    disposeParams(params);
    const file = manifestPath(root, 'vae');
    const manifest = JSON.parse(readFileSync(file, 'utf8'));
    manifest.config.latentDim = 7;
    writeFileSync(file, JSON.stringify(manifest));
    expect(() => loadModel(root, 'vae', 'vae')).toThrow(/tensors do not match the config/);
  });
});

describe('VAE forward', () => {
  it('the KL term equals its closed form and a Monte-Carlo estimate of E_q[log q − log p]', () => {
    const rng = createRng(5);
    const b = 3;
    const l = 4;
    const mu = Float32Array.from({ length: b * l }, () => rng.normal());
    const logvar = Float32Array.from({ length: b * l }, () => rng.uniform(-2, 1));
    const kl = tf.tidy(() => klDivergence(tf.tensor2d(mu, [b, l]), tf.tensor2d(logvar, [b, l])).arraySync());
    for (let i = 0; i < b; i++) {
      let closed = 0;
      let mc = 0;
      const n = 40000;
      for (let j = 0; j < l; j++) {
        const m = mu[i * l + j]!;
        const v = Math.exp(logvar[i * l + j]!);
        closed += 0.5 * (m * m + v - 1 - Math.log(v));
        // log q(z) − log p(z) for z ~ q, averaged
        let acc = 0;
        for (let k = 0; k < n; k++) {
          const e = rng.normal();
          const z = m + Math.sqrt(v) * e;
          acc += -0.5 * Math.log(v) - 0.5 * e * e + 0.5 * z * z;
        }
        mc += acc / n;
      }
      expect(kl[i]).toBeCloseTo(closed, 4);
      expect(Math.abs(kl[i]! - mc)).toBeLessThan(0.05 * closed + 0.05);
    }
  });

  it('rec is Σ (x − x̂)² / (2σ²) of the decoded mean; z = μ without sampling; the loss is (KL + rec) / pixels', () => {
    const params = initVae(TINY_VAE, 1);
    randomiseZeros(params, 2);
    const { x, pos } = randomImages(3, 16, 4);
    tf.tidy(() => {
      const xt = tf.tensor4d(x, [3, 16, 16, 1]);
      const pt = tf.tensor1d(pos);
      const t = vaeTerms(params, TINY_VAE, xt, pt, { training: false, sample: false });
      const { mu, logvar } = vaeEncode(params, TINY_VAE, xt, pt);
      const decoded = vaeDecode(params, TINY_VAE, mu, pt).dataSync();
      expect(Array.from(t.xhat.dataSync())).toEqual(Array.from(decoded));
      const rec = t.rec.dataSync();
      for (let i = 0; i < 3; i++) {
        let s = 0;
        for (let j = 0; j < 256; j++) s += (x[i * 256 + j]! - decoded[i * 256 + j]!) ** 2;
        expect(rec[i]).toBeCloseTo(s / (2 * 0.25), 2);
      }
      expect(Array.from(t.kl.dataSync())).toEqual(Array.from(klDivergence(mu, logvar).dataSync()));
      const loss = vaeLoss(params, TINY_VAE, xt, pt, { training: false, sample: false });
      const kl = t.kl.dataSync();
      const sum = (values: ArrayLike<number>) => Array.from(values).reduce((a, v) => a + v, 0);
      const expected = (sum(kl) + sum(rec)) / 3 / 256;
      expect(loss.loss.dataSync()[0]).toBeCloseTo(expected, 5);
    });
    disposeParams(params);
  });

  it('the position conditions the output', () => {
    const params = initVae(TINY_VAE, 1);
    randomiseZeros(params, 2);
    const { x } = randomImages(1, 16, 4);
    const out = (p: number) =>
      tf.tidy(() => vaeTerms(params, TINY_VAE, tf.tensor4d(x, [1, 16, 16, 1]), tf.tensor1d([p])).xhat.dataSync());
    const a = out(-0.4);
    const b = out(0.4);
    expect(a.some((v, i) => v !== b[i])).toBe(true);
    disposeParams(params);
  });

  it('reparameterisation: same seed, same z; another seed, another z; its mean is μ and its spread σ', () => {
    const mu = tf.tensor2d([[1, -2, 0.5]]);
    const logvar = tf.tensor2d([[0, Math.log(4), Math.log(0.25)]]);
    const z1 = reparameterise(mu, logvar, 7).dataSync();
    const z2 = reparameterise(mu, logvar, 7).dataSync();
    const z3 = reparameterise(mu, logvar, 8).dataSync();
    expect(Array.from(z1)).toEqual(Array.from(z2));
    expect(Array.from(z1)).not.toEqual(Array.from(z3));
    const n = 4000;
    const many = tf.tidy(() => reparameterise(tf.tile(mu, [n, 1]) as tf.Tensor2D, tf.tile(logvar, [n, 1]) as tf.Tensor2D, 9).arraySync());
    const stds = [1, 2, 0.5];
    [1, -2, 0.5].forEach((m, j) => {
      const col = many.map((r) => r[j]!);
      const mean = col.reduce((a, v) => a + v, 0) / n;
      const sd = Math.sqrt(col.reduce((a, v) => a + (v - mean) ** 2, 0) / n);
      expect(Math.abs(mean - m)).toBeLessThan(0.1 * stds[j]!);
      expect(Math.abs(sd - stds[j]!)).toBeLessThan(0.06 * stds[j]!);
    });
    tf.dispose([mu, logvar]);
  });
});

describe('VAE gradients on wasm', () => {
  it('every parameter gradient (dense layers included) equals the cpu backend reference', async () => {
    const { x, pos } = randomImages(2, 16, 11);
    const gradsOn = async (backend: 'wasm' | 'cpu'): Promise<Record<string, Float32Array>> => {
      await initEngine({ prefer: backend, log: () => undefined });
      const params = initVae(TINY_VAE, 21);
      randomiseZeros(params, 22);
      const names = Object.keys(params).sort();
      const { grads, value } = tf.variableGrads(
        () => vaeLoss(params, TINY_VAE, tf.tensor4d(x, [2, 16, 16, 1]), tf.tensor1d(pos), { training: true, seed: 5 }).loss,
        names.map((n) => params[n]!),
      );
      const out: Record<string, Float32Array> = {};
      for (const n of names) out[n] = Float32Array.from(grads[params[n]!.name]!.dataSync());
      tf.dispose([value, ...Object.values(grads)]);
      disposeParams(params);
      return out;
    };
    const wasm = await gradsOn('wasm');
    const cpu = await gradsOn('cpu');
    await initEngine({ prefer: 'wasm', log: () => undefined });
    for (const name of ['enc.mu.w', 'enc.logvar.w', 'dec.dense.w', 'enc.stem.w', 'dec.out.w']) {
      const a = wasm[name]!;
      const b = cpu[name]!;
      const scale = Math.max(...Array.from(b, Math.abs));
      expect(scale).toBeGreaterThan(0);
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
      expect(worst, name).toBeLessThan(2e-3 * scale);
    }
  });
});
