/**
 * float16 storage of weights bundles: the binary16 conversions against known bit patterns and an
 * independent nearest-half search, float16 bundles on disk, and `moodlsr weights pack` on a real
 * (tiny) VQ-VAE run as a user runs it, in a child process.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { InputFileError } from '../src/errors.js';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../src/io/float16.js';
import {
  encodeTensorBundle,
  readTensorBundle,
  writeTensorBundle,
  type BundleManifest,
  type HostTensor,
} from '../src/io/tensor-bundle.js';
import type { VqvaeConfig } from '../src/models/config.js';
import { disposeParams, type ParamMap } from '../src/models/params.js';
import { initVqvae, vqvaeDecodeCodes, vqvaeEncode } from '../src/models/vqvae.js';
import { loadModel, saveModel } from '../src/models/weights.js';
import { TINY_VQVAE } from './helpers/train-fixtures.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');

const dirs: string[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'moodlsr-f16-'));
  dirs.push(d);
  return d;
}

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const isHalfNaN = (h: number): boolean => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
const roundTrip = (x: number): number => float16BitsToFloat32(float32ToFloat16Bits(x));

/** Nearest half to x by binary search over the ordered finite halves, ties to the even pattern: an oracle independent of the bit tricks. */
function nearestHalfBits(x: number, positives: Float64Array): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // 65504 + half an ulp (16) and above round to Inf
  let lo = 0;
  let hi = 0x7bff;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (positives[mid]! <= a) lo = mid;
    else hi = mid - 1;
  }
  if (lo === 0x7bff) return sign | lo;
  const below = a - positives[lo]!;
  const above = positives[lo + 1]! - a;
  const h = below < above ? lo : above < below ? lo + 1 : lo % 2 === 0 ? lo : lo + 1;
  return sign | h;
}

describe('float16 conversion', () => {
  it('encodes known values to their binary16 bit patterns', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [1023 * 2 ** -24, 0x03ff], // largest subnormal
      [2 ** -25, 0x0000], // halfway between 0 and 2^-24: ties to even (0)
      [3 * 2 ** -26, 0x0001], // above the halfway point
      [3 * 2 ** -25, 0x0002], // halfway between 0x0001 and 0x0002: ties to even (0x0002)
      [2 ** -14 - 2 ** -25, 0x0400], // halfway between the largest subnormal and the smallest normal: carries into the exponent
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and 1 + 2^-10: ties to even (1.0)
      [1 + 3 * 2 ** -11, 0x3c02], // halfway between 1 + 2^-10 and 1 + 2^-9: ties to even (up)
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above halfway rounds up
      [65519, 0x7bff],
      [65520, 0x7c00], // IEEE overflow threshold
      [0, 0x0000],
      [-0, 0x8000],
      [1e-40, 0x0000], // float32 subnormal
      [-1e-40, 0x8000],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [1 / 3, 0x3555],
    ];
    for (const [x, bits] of cases) expect([x, float32ToFloat16Bits(x)]).toEqual([x, bits]);
    expect(isHalfNaN(float32ToFloat16Bits(NaN))).toBe(true);
    expect(isHalfNaN(float32ToFloat16Bits(-NaN))).toBe(true);
    // a float32 NaN whose payload sits only in the low mantissa bits must stay NaN, not become Inf
    const f = new Float32Array(new Uint32Array([0x7f800001]).buffer);
    expect(Number.isNaN(f[0])).toBe(true);
    expect(isHalfNaN(float32ToFloat16Bits(f[0]!))).toBe(true);
  });

  it('decodes known bit patterns exactly', () => {
    expect(float16BitsToFloat32(0x3c00)).toBe(1);
    expect(float16BitsToFloat32(0x7bff)).toBe(65504);
    expect(float16BitsToFloat32(0x0001)).toBe(2 ** -24);
    expect(float16BitsToFloat32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(float16BitsToFloat32(0x0400)).toBe(2 ** -14);
    expect(float16BitsToFloat32(0x3555)).toBe(0.333251953125);
    expect(float16BitsToFloat32(0xc000)).toBe(-2);
    expect(Object.is(float16BitsToFloat32(0x8000), -0)).toBe(true);
    expect(float16BitsToFloat32(0x7c00)).toBe(Infinity);
    expect(float16BitsToFloat32(0xfc00)).toBe(-Infinity);
    expect(float16BitsToFloat32(0x7e00)).toBeNaN();
    expect(float16BitsToFloat32(0xfc01)).toBeNaN();
  });

  it('round-trips all 65536 half patterns (NaNs as NaN), and the finite halves are ordered', () => {
    let previous = -Infinity;
    for (let h = 0; h < 65536; h++) {
      const x = float16BitsToFloat32(h);
      expect(Math.fround(x)).toBe(x); // every half is a float32
      const back = float32ToFloat16Bits(x);
      if (isHalfNaN(h)) {
        expect(Number.isNaN(x)).toBe(true);
        expect(isHalfNaN(back)).toBe(true);
      } else if (back !== h) {
        expect.fail(`pattern 0x${h.toString(16)} → ${x} → 0x${back.toString(16)}`);
      }
      if (h <= 0x7c00) {
        if (h > 0) expect(x).toBeGreaterThan(previous);
        previous = x;
      }
    }
  });

  it('rounds random float32 values to the nearest half, ties to even (independent search)', () => {
    const positives = new Float64Array(0x7c00);
    for (let h = 0; h < 0x7c00; h++) positives[h] = float16BitsToFloat32(h);
    const rng = createRng(16);
    const bits = new Uint32Array(1);
    const asFloat = new Float32Array(bits.buffer);
    for (let i = 0; i < 100_000; i++) {
      // exponents from far below the subnormal range to past the overflow threshold
      const exponent = 95 + Math.floor(rng.next() * 48);
      // low mantissa bits often zero, so that exact ties come up
      const mantissa = Math.floor(rng.next() * 0x800000) & (rng.next() < 0.5 ? 0x7fe000 : 0x7fffff);
      bits[0] = ((rng.next() < 0.5 ? 1 : 0) << 31) | (exponent << 23) | mantissa;
      const x = asFloat[0]!;
      const got = float32ToFloat16Bits(x);
      const want = nearestHalfBits(x, positives);
      if (got !== want) expect.fail(`${x}: got 0x${got.toString(16)}, nearest is 0x${want.toString(16)}`);
    }
  });
});

describe('float16 bundles', () => {
  afterEach(() => {
    while (dirs.length > 0) fs.rmSync(dirs.pop()!, { recursive: true, force: true });
  });

  function someTensors(): Map<string, HostTensor> {
    const rng = createRng(7);
    const w = Float32Array.from({ length: 3 * 5 * 7 }, () => rng.normal() * 0.3);
    const specials = Float32Array.from([1, -0, 65504, -65504, 1e-6, 3e-8, 1 + 2 ** -11, NaN, 0.1, 1e-10, -Infinity, 123.456]);
    return new Map<string, HostTensor>([
      ['b.weights', { shape: [3, 5, 7], values: w }],
      ['a.specials', { shape: [12], values: specials }],
      ['c.empty', { shape: [0, 4], values: new Float32Array(0) }],
    ]);
  }

  it('saves float16 (2 bytes a value) and loads each value as the float16-rounded original, exactly', async () => {
    const dir = tempDir();
    const tensors = someTensors();
    const files = await writeTensorBundle(dir, 'stats', { kind: 'test-kind', config: { n: 1 }, extra: { note: 'x' }, tensors }, { dtype: 'float16' });
    const manifest = JSON.parse(fs.readFileSync(files.manifest, 'utf8')) as BundleManifest;
    expect(manifest.formatVersion).toBe(1);
    let end = 0;
    for (const entry of manifest.tensors) {
      expect(entry.dtype).toBe('float16');
      expect(entry.offset).toBe(end);
      expect(entry.length).toBe(2 * entry.shape.reduce((a, b) => a * b, 1));
      end += entry.length;
    }
    expect(fs.statSync(files.binary).size).toBe(2 * (105 + 12));

    const loaded = readTensorBundle(dir, 'stats', 'test-kind');
    expect(loaded.extra).toEqual({ note: 'x' });
    for (const [name, original] of tensors) {
      const got = loaded.tensors.get(name)!;
      expect(got.shape).toEqual(original.shape);
      expect(got.values).toBeInstanceOf(Float32Array);
      const expected = Array.from(original.values, roundTrip);
      expect(Array.from(got.values)).toEqual(expected); // toEqual: NaN equals NaN
    }
    const specials = loaded.tensors.get('a.specials')!.values;
    expect(specials[4]).not.toBe(1e-6); // really rounded
    expect(specials[6]).toBe(1);
    expect(specials[9]).toBe(0); // below half the smallest subnormal
    expect(Object.is(specials[1], -0)).toBe(true);

    // the float32 default is untouched: same values back, bit for bit
    const f32 = encodeTensorBundle({ kind: 'k', config: null, tensors });
    expect(f32.binary.byteLength).toBe(4 * (105 + 12));
    expect(f32.manifestText).toContain('"dtype": "float32"');
  });

  it('refuses a finite value outside the float16 range, naming the tensor, and writes nothing', async () => {
    const dir = tempDir();
    const tensors = new Map<string, HostTensor>([
      ['ok', { shape: [2], values: Float32Array.from([1, 2]) }],
      ['enc.scale', { shape: [3], values: Float32Array.from([0.5, -65504.5, 3]) }],
    ]);
    await expect(writeTensorBundle(dir, 'big', { kind: 'k', config: null, tensors }, { dtype: 'float16' })).rejects.toThrow(
      /tensor enc\.scale: value -65504\.5 at index 1 is outside the float16 range/,
    );
    expect(fs.readdirSync(dir)).toEqual([]);
    // float32 storage of the same tensors is fine
    await writeTensorBundle(dir, 'big', { kind: 'k', config: null, tensors });
    expect(readTensorBundle(dir, 'big').tensors.get('enc.scale')!.values[1]).toBe(-65504.5);
  });

  it('a float16 entry with a float32 length is an InputFileError naming the manifest', async () => {
    const dir = tempDir();
    const files = await writeTensorBundle(dir, 'm', { kind: 'k', config: null, tensors: someTensors() }, { dtype: 'float16' });
    const manifest = JSON.parse(fs.readFileSync(files.manifest, 'utf8')) as BundleManifest;
    const bad = manifest.tensors.find((t) => t.name === 'b.weights')!;
    bad.length = 4 * 105;
    fs.writeFileSync(files.manifest, JSON.stringify(manifest));
    let error: unknown;
    try {
      readTensorBundle(dir, 'm');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InputFileError);
    expect((error as InputFileError).file).toBe(files.manifest);
    expect((error as Error).message).toMatch(/b\.weights.*length must be 210 bytes for 105 float16 values/);
    // an unknown dtype too
    bad.length = 210;
    (bad as { dtype: string }).dtype = 'bfloat16';
    fs.writeFileSync(files.manifest, JSON.stringify(manifest));
    expect(() => readTensorBundle(dir, 'm')).toThrow(/dtype must be float32 or float16/);
  });
});

describe('moodlsr weights pack', () => {
  const cfg: VqvaeConfig = TINY_VQVAE;

  beforeAll(async () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
    await initEngine({ prefer: 'cpu', log: () => {} });
  });
  afterEach(() => {
    while (dirs.length > 0) fs.rmSync(dirs.pop()!, { recursive: true, force: true });
  });

  function vqOutputs(params: ParamMap): Float32Array[] {
    const [z, x] = tf.tidy(() => {
      const rng = createRng(1);
      const input = tf.tensor4d(Float32Array.from({ length: 2 * 256 }, () => rng.next()), [2, 16, 16, 1]);
      const pos = tf.tensor1d([-0.2, 0.3]);
      const codes = tf.tensor3d(Int32Array.from({ length: 32 }, (_, i) => (i * 5) % 16), [2, 4, 4], 'int32');
      return [vqvaeEncode(params, cfg, input, pos).z, vqvaeDecodeCodes(params, cfg, codes, pos)];
    });
    const out = [z.dataSync() as Float32Array, x.dataSync() as Float32Array];
    z.dispose();
    x.dispose();
    return out;
  }

  function maxAbs(a: Float32Array): number {
    return a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  }
  function maxDiff(a: Float32Array, b: Float32Array): number {
    return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
  }

  it('packs a VQ-VAE folder to float16: half the bytes, other files copied, the model loads and runs close to float32', () => {
    const from = tempDir();
    const to = path.join(tempDir(), 'packed');
    const params = initVqvae(cfg, 3);
    // train-like magnitudes: move every parameter off its initial value
    const rng = createRng(4);
    for (const v of Object.values(params)) v.assign(tf.tidy(() => tf.add(v, tf.tensor(Array.from({ length: v.size }, () => 0.05 * rng.normal()), v.shape))));
    const saved = saveModel(from, 'vqvae', { kind: 'vqvae', config: cfg, params, extra: { training: { epochs: 1 } } });
    fs.writeFileSync(path.join(from, 'lsr-calibration.json'), '{"format":"moodlsr-lsr-calibration","version":1}\n');
    fs.writeFileSync(path.join(from, 'README'), 'tiny test weights\n');
    fs.mkdirSync(path.join(from, 'training'));
    fs.writeFileSync(path.join(from, 'training', 'log.txt'), 'epoch 1\n');

    const r = cli(['weights', 'pack', '--from', from, '--to', to, '--dtype', 'float16']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^vqvae\.json\s+vqvae\s+[\d.]+ MB → [\d.]+ MB\s+max \|err\| ([\d.e+-]+)\s+max rel\. err ([\d.e+-]+)/m);
    expect(r.stdout).toContain('copied README');
    expect(r.stdout).toContain('copied lsr-calibration.json');
    expect(r.stdout).toContain('skipped training/');
    expect(r.stdout).toMatch(/recompute the calibrations/);

    expect(fs.readdirSync(to).sort()).toEqual(['README', 'lsr-calibration.json', 'vqvae.bin', 'vqvae.json']);
    for (const f of ['README', 'lsr-calibration.json']) expect(fs.readFileSync(path.join(to, f))).toEqual(fs.readFileSync(path.join(from, f)));
    expect(fs.statSync(path.join(to, 'vqvae.bin')).size).toBe(fs.statSync(saved.binary).size / 2);

    const original = loadModel<VqvaeConfig>(from, 'vqvae', 'vqvae');
    const packed = loadModel<VqvaeConfig>(to, 'vqvae', 'vqvae');
    expect(packed.config).toEqual(cfg);
    expect(packed.extra).toEqual({ training: { epochs: 1 } });
    // every parameter is exactly its float16 rounding, and the printed max |err| is the real one
    let worst = 0;
    for (const [name, v] of Object.entries(original.params)) {
      const a = v.dataSync() as Float32Array;
      const b = packed.params[name]!.dataSync() as Float32Array;
      expect(Array.from(b)).toEqual(Array.from(a, roundTrip));
      worst = Math.max(worst, maxDiff(a, b));
    }
    expect(worst).toBeGreaterThan(0);
    const printed = /max \|err\| ([\d.e+-]+)/.exec(r.stdout)![1]!;
    expect(printed).toBe(worst.toExponential(2));

    const [z32, x32] = vqOutputs(original.params);
    const [z16, x16] = vqOutputs(packed.params);
    const zDiff = maxDiff(z32!, z16!) / maxAbs(z32!);
    const xDiff = maxDiff(x32!, x16!) / maxAbs(x32!);
    expect(zDiff).toBeGreaterThan(0); // the weights really changed
    expect(zDiff).toBeLessThan(5e-3);
    expect(xDiff).toBeLessThan(5e-3);

    // back to float32: the widening is exact, so the values are those of the float16 folder
    const back = path.join(tempDir(), 'f32');
    expect(cli(['weights', 'pack', '--from', to, '--to', back, '--dtype', 'float32']).status).toBe(0);
    const widened = loadModel(back, 'vqvae', 'vqvae');
    for (const [name, v] of Object.entries(packed.params)) expect(widened.params[name]!.dataSync()).toEqual(v.dataSync());
    expect(fs.statSync(path.join(back, 'vqvae.bin')).size).toBe(fs.statSync(saved.binary).size);
    [params, original.params, packed.params, widened.params].forEach(disposeParams);
  });

  it('refuses --to = --from, an out-of-range weight and a broken bundle, naming the file, and writes nothing', async () => {
    const from = tempDir();
    const to = path.join(tempDir(), 'packed');
    await writeTensorBundle(from, 'zscore', {
      kind: 'zscore-baseline',
      config: null,
      tensors: new Map([['sigma', { shape: [2], values: Float32Array.from([0.5, 1e5]) }]]),
    });
    const same = cli(['weights', 'pack', '--from', from, '--to', `${from}${path.sep}`]);
    expect(same.status).toBe(1);
    expect(same.stderr).toMatch(/is the source folder itself/);

    const big = cli(['weights', 'pack', '--from', from, '--to', to]);
    expect(big.status).toBe(1);
    expect(big.stderr).toContain(path.join(from, 'zscore.json'));
    expect(big.stderr).toMatch(/tensor sigma: value 100000 at index 1 is outside the float16 range/);
    expect(fs.existsSync(to)).toBe(false);

    fs.rmSync(path.join(from, 'zscore.bin'));
    const broken = cli(['weights', 'pack', '--from', from, '--to', to]);
    expect(broken.status).toBe(1);
    expect(broken.stderr).toContain(path.join(from, 'zscore.bin'));
    expect(fs.existsSync(to)).toBe(false);
  });
});
