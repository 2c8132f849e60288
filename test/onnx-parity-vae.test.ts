/**
 * ONNX Runtime against TF.js for the VAE baseline (src/methods/vae/emit-vae.ts): encoder (μ, log σ²),
 * decoder (z → image) and the forward terms (x̂, KL, rec) on tiny random models (both upsampling
 * modes); and the MOOD outputs of the forward-only vae-* methods with both engines. The gradient
 * maps stay on TF.js whatever the engine.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calibrateVae } from '../src/methods/vae/calibrate.js';
import { loadVaeModel, vaePredictor, writeVaeCalibration } from '../src/methods/vae/model.js';
import { vaeSliceTerms } from '../src/methods/vae/score.js';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { readNifti, writeNifti } from '../src/io/nifti.js';
import { disposeParams, type ParamMap } from '../src/models/params.js';
import { initVae, vaeDecode, vaeEncode } from '../src/methods/vae/vae.js';
import type { VaeConfig } from '../src/methods/vae/config.js';
import { saveModel } from '../src/models/weights.js';
import { METHODS } from '../src/methods/index.js';
import { runPrediction } from '../src/mood/run.js';
import { hostParams } from '../src/onnx/emit-blocks.js';
import { emitVaeDecoder, emitVaeEncoder, emitVaeTerms } from '../src/methods/vae/emit-vae.js';
import { createSession, requireOnnxRuntime } from '../src/onnx/runtime.js';
import { TINY_VAE, tinyBrain } from './helpers/score-fixtures.js';

const TOLERANCE = 1e-4;
const silent = () => undefined;


/** max |a − b| / max |b|. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / Math.max(scale, 1e-30);
}

/** Random conditioning weights, biases and norm scales, so every input matters. */
function randomVae(cfg: VaeConfig, seed: number): ParamMap {
  const params = initVae(cfg, seed);
  const rng = createRng(seed + 1);
  for (const [name, v] of Object.entries(params)) {
    if (/\.cond\.|\.b$|\.g$/.test(name)) v.assign(tf.add(v, tf.tensor(Array.from({ length: v.size }, () => 0.3 * rng.normal()), v.shape)));
  }
  return params;
}

async function runGraph(model: Uint8Array, feeds: Record<string, { type: 'float32'; data: Float32Array; dims: number[] }>): Promise<Record<string, Float32Array>> {
  const ort = await requireOnnxRuntime();
  const session = await createSession(model, { threads: 1 });
  try {
    const tensors = Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, new ort.Tensor(f.type, f.data, f.dims)]));
    const out = await session.run(tensors);
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.data as Float32Array]));
  } finally {
    await session.release();
  }
}

function read(t: tf.Tensor): Float32Array {
  const v = t.dataSync() as Float32Array;
  t.dispose();
  return v;
}

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: silent });
});

describe('ONNX export of the VAE', () => {
  const variants: Array<{ name: string; cfg: VaeConfig }> = [
    { name: 'nearest-conv decoder', cfg: TINY_VAE },
    { name: 'transposed-conv decoder, 3 levels, 32 px', cfg: { ...TINY_VAE, channels: [4, 8, 8, 12], inputSize: 32, upsample: 'transposed', blocksPerLevel: 2, normGroups: 4, latentDim: 10 } },
  ];
  for (const [i, v] of variants.entries()) {
    it(`encoder, decoder and forward terms agree with tfjs: ${v.name}`, async () => {
      const cfg = v.cfg;
      const params = randomVae(cfg, 60 + i);
      try {
        const host = hostParams(params);
        const meta = { producerVersion: 'test' };
        const count = 4;
        const s = cfg.inputSize;
        const images = Float32Array.from({ length: count * s * s }, (_, j) => Math.sin(j * 0.37) + 0.3 * Math.cos(j * 0.011));
        const positions = Float32Array.from([-0.4, 0, 0.2, 0.45]);
        const feeds = { image: { type: 'float32' as const, data: images, dims: [count, s, s, 1] }, position: { type: 'float32' as const, data: positions, dims: [count] } };

        const { mu, logvar } = tf.tidy(() => vaeEncode(params, cfg, tf.tensor4d(images, [count, s, s, 1]), tf.tensor1d(positions)));
        const encoded = await runGraph(emitVaeEncoder(host, cfg).encode(meta), feeds);
        expect(relativeError(encoded.mu!, read(mu))).toBeLessThan(TOLERANCE);
        expect(relativeError(encoded.logvar!, read(logvar))).toBeLessThan(TOLERANCE);

        const rng = createRng(5);
        const z = Float32Array.from({ length: count * cfg.latentDim }, () => rng.normal());
        const decoded = await runGraph(emitVaeDecoder(host, cfg).encode(meta), { z: { type: 'float32', data: z, dims: [count, cfg.latentDim] }, position: feeds.position });
        const reference = read(tf.tidy(() => vaeDecode(params, cfg, tf.tensor2d(z, [count, cfg.latentDim]), tf.tensor1d(positions))));
        expect(relativeError(decoded.image!, reference)).toBeLessThan(TOLERANCE);

        const terms = await runGraph(emitVaeTerms(host, cfg).encode(meta), feeds);
        const expected = vaeSliceTerms({ cfg, params }, images, positions);
        expect(relativeError(terms.xhat!, expected.xhat)).toBeLessThan(TOLERANCE);
        expect(relativeError(terms.kl!, expected.kl)).toBeLessThan(TOLERANCE);
        expect(relativeError(terms.rec!, expected.rec)).toBeLessThan(TOLERANCE);
        expect(new Set(Array.from(expected.kl, (x) => x.toFixed(4))).size).toBe(count);
      } finally {
        disposeParams(params);
      }
    });
  }
});

describe('MOOD outputs of the vae-* methods with both engines', () => {
  const root = mkdtempSync(join(tmpdir(), 'moodlsr-onnx-vae-'));
  const weights = join(root, 'weights');
  const cases = join(root, 'cases');
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  beforeAll(async () => {
    const params = randomVae(TINY_VAE, 70);
    saveModel(weights, 'vae', { kind: 'vae', config: TINY_VAE, params });
    disposeParams(params);
    const normals = join(root, 'normals');
    for (const dir of [normals, cases]) mkdirSync(dir, { recursive: true });
    const shape = [20, 18, 24] as const;
    for (let i = 0; i < 2; i++) await writeNifti(join(normals, `normal_${i}.nii.gz`), tinyBrain(shape, 100 + i));
    await writeNifti(join(cases, 'a.nii.gz'), tinyBrain(shape, 200, true));
    await writeNifti(join(cases, 'b.nii.gz'), tinyBrain(shape, 201));
    const files = readdirSync(normals).map((f) => join(normals, f));
    writeVaeCalibration(weights, await calibrateVae({ weightsDir: weights, files, region: 'brain', slices: { every: 4 }, pixelVolumes: 1, workers: 0, log: silent }));
  });

  it('vae-rec (sample and pixel) and vae-elbo, vae-kl (sample) agree to 1e-3', async () => {
    for (const method of ['vae-rec', 'vae-elbo', 'vae-kl']) {
      const outputs: Record<string, { sample: number[]; pixel: Float32Array[] }> = {};
      for (const engine of ['tfjs', 'onnx'] as const) {
        const model = await loadVaeModel(weights, { engine, log: silent });
        expect(model.engine).toBe(engine);
        const predictor = vaePredictor(model, method, { workers: 0 });
        const result: { sample: number[]; pixel: Float32Array[] } = { sample: [], pixel: [] };
        try {
          for (const task of predictor.tasks) {
            const out = join(root, `${method}-${engine}-${task}`);
            const summary = await runPrediction({ task, inDir: cases, outDir: out, predictor, seed: 1, log: silent });
            expect(summary.failed).toEqual([]);
            for (const name of ['a.nii.gz', 'b.nii.gz']) {
              if (task === 'sample') result.sample.push(Number(readFileSync(join(out, `${name}.txt`), 'utf8')));
              else result.pixel.push((await readNifti(join(out, name))).volume.data);
            }
          }
        } finally {
          await predictor.dispose?.();
        }
        outputs[engine] = result;
      }
      const [a, b] = [outputs.tfjs!, outputs.onnx!];
      expect(a.sample.length).toBe(2);
      a.sample.forEach((s, i) => expect(Math.abs(s - b.sample[i]!), method).toBeLessThan(1e-3));
      a.pixel.forEach((map, i) => {
        let worst = 0;
        map.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - b.pixel[i]![j]!))));
        expect(worst, method).toBeLessThan(1e-3);
        expect(map.some((v) => v > 0)).toBe(true);
      });
      if (method === 'vae-rec') expect(a.pixel.length).toBe(2);
    }
  });

  it('a gradient map asked to run on ONNX Runtime runs on TF.js and says so', async () => {
    const lines: string[] = [];
    const predictor = await METHODS['vae-klgrad']!(weights, { engine: 'onnx' });
    try {
      const volume = tinyBrain([20, 18, 24], 300, true);
      const map = await predictor.pixelScore!(volume, { name: 'x', seed: 0, log: (line) => lines.push(line) });
      expect(map.some((v) => v > 0)).toBe(true);
      expect(lines.join('\n')).toMatch(/vae-klgrad pixel \(tfjs\)/);
    } finally {
      await predictor.dispose?.();
    }
  });
});
