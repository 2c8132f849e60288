import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TINY_VQVAE } from './helpers/train-fixtures.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { InputFileError } from '../src/errors.js';
import type { PixelSnailConfig, VqvaeConfig } from '../src/models/config.js';
import { disposeParams, type ParamMap } from '../src/models/params.js';
import { initPixelSnail, priorLogits } from '../src/methods/lsr/pixelsnail.js';
import { initVqvae, vqvaeDecodeCodes, vqvaeEncode } from '../src/models/vqvae.js';
import { loadModel, saveModel, type WeightsManifest } from '../src/models/weights.js';

const vqCfg: VqvaeConfig = TINY_VQVAE;

const priorCfg: PixelSnailConfig = {
  codebookSize: 16,
  height: 4,
  width: 4,
  channels: 8,
  blocks: 1,
  resBlocksPerBlock: 1,
  attention: { keyChannels: 4, valueChannels: 8, downsample: 2 },
  dropout: 0.1,
  condChannels: 1,
};

const dirs: string[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'moodlsr-weights-'));
  dirs.push(d);
  return d;
}

/** Moves every parameter off its initial value so that a loader that re-initialised would be caught. */
function perturb(params: ParamMap, seed: number): void {
  const rng = createRng(seed);
  for (const v of Object.values(params)) {
    const noise = tf.tensor(Array.from({ length: v.size }, () => 0.05 * rng.normal()), v.shape);
    v.assign(tf.add(v, noise));
    noise.dispose();
  }
}

function vqOutputs(params: ParamMap): Float32Array[] {
  return tf.tidy(() => {
    const rng = createRng(1);
    const x = tf.tensor4d(Float32Array.from({ length: 2 * 256 }, () => rng.normal()), [2, 16, 16, 1]);
    const pos = tf.tensor1d([-0.2, 0.3]);
    const { z } = vqvaeEncode(params, vqCfg, x, pos);
    const codes = tf.tensor3d(Int32Array.from({ length: 32 }, (_, i) => (i * 5) % 16), [2, 4, 4], 'int32');
    return [z.dataSync() as Float32Array, vqvaeDecodeCodes(params, vqCfg, codes, pos).dataSync() as Float32Array];
  });
}

function priorOutputs(params: ParamMap): Float32Array {
  return tf.tidy(() => {
    const codes = tf.tensor3d(Int32Array.from({ length: 32 }, (_, i) => (i * 7) % 16), [2, 4, 4], 'int32');
    return priorLogits(params, priorCfg, codes, tf.tensor1d([0.1, -0.4])).dataSync() as Float32Array;
  });
}

describe('weights save/load', () => {
  beforeAll(async () => {
    await initEngine({ prefer: 'cpu', log: () => {} });
  });
  afterEach(() => {
    while (dirs.length > 0) fs.rmSync(dirs.pop()!, { recursive: true, force: true });
  });

  it('VQ-VAE: save → load gives bit-identical outputs, and the manifest describes the file', () => {
    const dir = tempDir();
    const params = initVqvae(vqCfg, 1);
    perturb(params, 2);
    const extra = { calibration: { lambdaS: 7, quantiles: [0.1, 0.5] } };
    const files = saveModel(dir, 'brain-vqvae', { kind: 'vqvae', config: vqCfg, params, extra });
    expect(fs.readdirSync(dir).sort()).toEqual(['brain-vqvae.bin', 'brain-vqvae.json']);
    const manifest = JSON.parse(fs.readFileSync(files.manifest, 'utf8')) as WeightsManifest;
    const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(manifest.packageVersion).toBe(pkg.version);
    expect(manifest.kind).toBe('vqvae');
    expect(manifest.config).toEqual(vqCfg);
    let end = 0;
    for (const t of manifest.tensors) {
      expect(t.offset).toBe(end);
      end += t.length;
    }
    expect(fs.statSync(files.binary).size).toBe(end);

    const loaded = loadModel<VqvaeConfig>(dir, 'brain-vqvae', 'vqvae');
    expect(loaded.config).toEqual(vqCfg);
    expect(loaded.extra).toEqual(extra);
    expect(Object.keys(loaded.params).sort()).toEqual(Object.keys(params).sort());
    const [zA, xA] = vqOutputs(params);
    const [zB, xB] = vqOutputs(loaded.params);
    expect(Buffer.from(zB!.buffer).equals(Buffer.from(zA!.buffer))).toBe(true);
    expect(Buffer.from(xB!.buffer).equals(Buffer.from(xA!.buffer))).toBe(true);
    disposeParams(params);
    disposeParams(loaded.params);
  });

  it('PixelSNAIL: save → load gives bit-identical logits, on the wasm backend too', async () => {
    const dir = tempDir();
    const params = initPixelSnail(priorCfg, 3);
    perturb(params, 4);
    saveModel(dir, 'prior', { kind: 'pixelsnail', config: priorCfg, params });
    const before = priorOutputs(params);
    const loaded = loadModel<PixelSnailConfig>(dir, 'prior', 'pixelsnail');
    expect(Buffer.from(priorOutputs(loaded.params).buffer).equals(Buffer.from(before.buffer))).toBe(true);
    await initEngine({ prefer: 'wasm', log: () => {} });
    const onWasm = loadModel<PixelSnailConfig>(dir, 'prior', 'pixelsnail');
    const wasmA = priorOutputs(params);
    const wasmB = priorOutputs(onWasm.params);
    expect(Buffer.from(wasmB.buffer).equals(Buffer.from(wasmA.buffer))).toBe(true);
    await initEngine({ prefer: 'cpu', log: () => {} });
    [params, loaded.params, onWasm.params].forEach(disposeParams);
  });

  it('refuses a manifest whose config does not match its tensors, naming the file', () => {
    const dir = tempDir();
    const params = initVqvae(vqCfg, 1);
    const files = saveModel(dir, 'm', { kind: 'vqvae', config: vqCfg, params });
    disposeParams(params);
    const manifest = JSON.parse(fs.readFileSync(files.manifest, 'utf8')) as WeightsManifest;
    fs.writeFileSync(files.manifest, JSON.stringify({ ...manifest, config: { ...vqCfg, codeDim: 12 } }));
    let error: unknown;
    try {
      loadModel(dir, 'm');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InputFileError);
    expect((error as InputFileError).file).toBe(files.manifest);
    expect((error as Error).message).toMatch(/codebook\.E has shape \[16,8\], the config implies \[16,12\]/);
  });

  it('refuses the wrong kind, an invalid config, a truncated binary and a non-manifest', () => {
    const dir = tempDir();
    const params = initPixelSnail(priorCfg, 1);
    const files = saveModel(dir, 'p', { kind: 'pixelsnail', config: priorCfg, params });
    disposeParams(params);
    expect(() => loadModel(dir, 'p', 'vqvae')).toThrow(/p\.json: holds a 'pixelsnail' model, expected 'vqvae'/);

    const manifest = JSON.parse(fs.readFileSync(files.manifest, 'utf8')) as WeightsManifest;
    fs.writeFileSync(files.manifest, JSON.stringify({ ...manifest, config: { ...priorCfg, attention: { ...priorCfg.attention, downsample: 3 } } }));
    expect(() => loadModel(dir, 'p')).toThrow(/p\.json: invalid PixelSNAIL config: grid 4×4 is not divisible/);

    fs.writeFileSync(files.manifest, JSON.stringify(manifest));
    const bytes = fs.readFileSync(files.binary);
    fs.writeFileSync(files.binary, bytes.subarray(0, bytes.length - 4));
    expect(() => loadModel(dir, 'p')).toThrow(/p\.bin: has \d+ bytes, the manifest p\.json describes \d+/);

    fs.writeFileSync(files.manifest, '{"hello": 1}');
    expect(() => loadModel(dir, 'p')).toThrow(InputFileError);
    expect(() => loadModel(dir, 'absent')).toThrow(/absent\.json: cannot read weights manifest/);
  });

  it('saving twice gives the same bytes and leaves no temporary files', () => {
    const dir = tempDir();
    const params = initVqvae(vqCfg, 5);
    saveModel(dir, 'a', { kind: 'vqvae', config: vqCfg, params });
    saveModel(dir, 'b', { kind: 'vqvae', config: vqCfg, params });
    saveModel(dir, 'b', { kind: 'vqvae', config: vqCfg, params });
    disposeParams(params);
    expect(fs.readdirSync(dir).sort()).toEqual(['a.bin', 'a.json', 'b.bin', 'b.json']);
    expect(fs.readFileSync(path.join(dir, 'a.bin')).equals(fs.readFileSync(path.join(dir, 'b.bin')))).toBe(true);
  });
});
