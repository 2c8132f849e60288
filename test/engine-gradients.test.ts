import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { conv2dFilterGradient, conv2dInputGradient } from '../src/engine/gradients.js';
import { createRng } from '../src/engine/random.js';
import { upsampleNearest, upsampleNearest2x } from '../src/engine/upsample.js';
import { lookupCodes, nearestCodes, quantize, stopGradient } from '../src/engine/vq.js';

type Shape4 = [number, number, number, number];

function randomArray(size: number, seed: number, scale = 1): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: size }, () => rng.normal() * scale);
}

/** max|a − b| / max|b|: the error relative to the reference's magnitude. */
function relativeError(actual: Float32Array, reference: Float32Array): number {
  expect(actual.length).toBe(reference.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < reference.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - reference[i]));
    scale = Math.max(scale, Math.abs(reference[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

async function onBackend<T>(name: string, body: () => T): Promise<T> {
  await tf.setBackend(name);
  const before = tf.memory().numTensors;
  const result = body();
  expect(tf.memory().numTensors).toBe(before); // no leaked tensors
  return result;
}

/** Gradients of `loss(...params)` with respect to every parameter, as plain arrays. */
function gradientsOf(loss: (...p: tf.Tensor[]) => tf.Scalar, values: Array<{ data: Float32Array; shape: number[] }>): Float32Array[] {
  return tf.tidy(() => {
    const params = values.map((v) => tf.tensor(v.data, v.shape));
    const grads = tf.grads((...p: tf.Tensor[]) => loss(...p))(params);
    return grads.map((g) => g.dataSync() as Float32Array);
  });
}

interface ConvCase {
  input: Shape4;
  filter: Shape4;
  stride: number;
  pad: 'same' | 'valid';
}

const convCases: ConvCase[] = [
  { input: [2, 9, 9, 3], filter: [3, 3, 3, 4], stride: 1, pad: 'same' },
  { input: [2, 9, 8, 3], filter: [3, 3, 3, 5], stride: 2, pad: 'same' },
  { input: [1, 10, 10, 2], filter: [5, 5, 2, 3], stride: 2, pad: 'same' },
  { input: [2, 10, 11, 4], filter: [5, 5, 4, 2], stride: 2, pad: 'valid' },
  { input: [2, 12, 12, 1], filter: [7, 7, 1, 4], stride: 1, pad: 'same' },
  { input: [1, 8, 8, 6], filter: [6, 6, 6, 3], stride: 2, pad: 'same' },
  { input: [2, 7, 7, 3], filter: [1, 1, 3, 8], stride: 2, pad: 'same' },
  { input: [2, 7, 9, 2], filter: [4, 3, 2, 3], stride: 1, pad: 'valid' },
];

const describeCase = (c: ConvCase): string => `x${c.input.join('x')} w${c.filter.join('x')} s${c.stride} ${c.pad}`;

beforeAll(async () => {
  const info = await initEngine({ prefer: 'wasm', log: () => undefined });
  expect(info.backend).toBe('wasm');
  expect(info.trainingKernels).toContain('Conv2DBackpropFilter');
});

describe('conv gradients from forward convolutions', () => {
  it.each(convCases)('matches the stock cpu kernels: $input $filter s$stride $pad', async (c) => {
    const x = randomArray(c.input.reduce((a, b) => a * b), 1);
    const w = randomArray(c.filter.reduce((a, b) => a * b), 2);
    await onBackend('cpu', () => {
      const [stock, ours] = tf.tidy(() => {
        const xt = tf.tensor4d(x, c.input);
        const wt = tf.tensor4d(w, c.filter);
        const outShape = tf.conv2d(xt, wt, c.stride, c.pad).shape;
        const dy = tf.tensor4d(randomArray(outShape.reduce((a, b) => a * b), 3), outShape);
        const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad))([xt, wt], dy);
        const ix = conv2dInputGradient(dy, wt, c.input, c.stride, c.pad);
        const iw = conv2dFilterGradient(xt, dy, c.filter, c.stride, c.pad);
        return [[gx.dataSync(), gw.dataSync()], [ix.dataSync(), iw.dataSync()]] as Float32Array[][];
      });
      expect(relativeError(ours[0], stock[0]), `dx ${describeCase(c)}`).toBeLessThan(1e-5);
      expect(relativeError(ours[1], stock[1]), `dw ${describeCase(c)}`).toBeLessThan(1e-5);
    });
  });

  it.each(convCases)('wasm conv2d, conv2dTranspose and fused conv2d gradients equal cpu: $input $filter s$stride $pad', async (c) => {
    const inputSize = c.input.reduce((a, b) => a * b);
    const x = { data: randomArray(inputSize, 11), shape: c.input };
    const w = { data: randomArray(c.filter.reduce((a, b) => a * b), 12), shape: c.filter };
    const bias = { data: randomArray(c.filter[3], 13), shape: [c.filter[3]] };
    const outShape = tf.backend_util.computeConv2DInfo(c.input, c.filter, c.stride, 1, c.pad).outShape;
    const y = { data: randomArray(outShape.reduce((a, b) => a * b), 14), shape: outShape };
    const probe = randomArray(Math.max(inputSize, outShape.reduce((a, b) => a * b)), 15);
    const weighted = (t: tf.Tensor): tf.Scalar => tf.sum(tf.mul(t, tf.tensor(probe.subarray(0, t.size), t.shape)));

    const losses: Array<[string, (...p: tf.Tensor[]) => tf.Scalar, Array<{ data: Float32Array; shape: number[] }>]> = [
      ['conv2d', (a, b) => weighted(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad)), [x, w]],
      // conv2dTranspose maps the conv's output shape back to its input shape (pad 'valid' ambiguity aside).
      ['conv2dTranspose', (a, b) => weighted(tf.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, c.input, c.stride, c.pad)), [y, w]],
      ['fused linear', (a, b, d) => weighted(tf.fused.conv2d({ x: a as tf.Tensor4D, filter: b as tf.Tensor4D, strides: c.stride, pad: c.pad, bias: d })), [x, w, bias]],
      ['fused elu', (a, b, d) => weighted(tf.fused.conv2d({ x: a as tf.Tensor4D, filter: b as tf.Tensor4D, strides: c.stride, pad: c.pad, bias: d, activation: 'elu' })), [x, w, bias]],
    ];
    for (const [name, loss, values] of losses) {
      const reference = await onBackend('cpu', () => gradientsOf(loss, values));
      const actual = await onBackend('wasm', () => gradientsOf(loss, values));
      reference.forEach((ref, i) => {
        expect(relativeError(actual[i], ref), `${name} grad ${i} ${describeCase(c)}`).toBeLessThan(1e-4);
      });
    }
  });

  it('gather is differentiable on wasm (UnsortedSegmentSum replacement)', async () => {
    const table = { data: randomArray(7 * 3, 21), shape: [7, 3] };
    const loss = (t: tf.Tensor): tf.Scalar => tf.sum(tf.mul(tf.gather(t, tf.tensor1d([0, 3, 3, 6, 1, 3], 'int32')), tf.tensor(randomArray(18, 22), [6, 3])));
    const reference = await onBackend('cpu', () => gradientsOf(loss, [table]));
    const actual = await onBackend('wasm', () => gradientsOf(loss, [table]));
    expect(relativeError(actual[0], reference[0])).toBeLessThan(1e-5);
  });
});

describe('a small VQ-VAE-like network trains identically on wasm and cpu', () => {
  const d = 4;
  const k = 6;
  const spec: Record<string, number[]> = {
    x: [2, 8, 8, 1],
    enc1: [3, 3, 1, 4], // stride 1
    gate: [3, 3, 4, 8], // GLU: 8 → 4
    enc2: [5, 5, 4, d], // stride 2
    codebook: [k, d],
    dec1: [3, 3, d, 4], // after 2× upsampling
    dec2: [4, 4, 4, 2], // transposed conv [kh, kw, out, in], stride 1
    head: [4, 3],
  };
  const names = Object.keys(spec);

  function network(...p: tf.Tensor[]): tf.Scalar {
    const v = Object.fromEntries(names.map((n, i) => [n, p[i]])) as Record<string, tf.Tensor>;
    const x = v.x as tf.Tensor4D;
    let h = tf.elu(tf.conv2d(x, v.enc1 as tf.Tensor4D, 1, 'same'));
    const { mean, variance } = tf.moments(h, [0, 1, 2], true);
    h = tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, 1e-5)));
    const g = tf.conv2d(h as tf.Tensor4D, v.gate as tf.Tensor4D, 1, 'same');
    const [a, b] = tf.split(g, 2, 3);
    h = tf.add(tf.mul(a, tf.sigmoid(b)), h);
    const z = tf.conv2d(tf.pad(h as tf.Tensor4D, [[0, 0], [2, 2], [2, 2], [0, 0]]), v.enc2 as tf.Tensor4D, 2, 'valid');
    const vq = quantize(z as tf.Tensor4D, v.codebook as tf.Tensor2D);
    let u = tf.tanh(tf.conv2d(upsampleNearest2x(vq.zq), v.dec1 as tf.Tensor4D, 1, 'same'));
    u = tf.conv2dTranspose(tf.slice(u, [0, 0, 0, 0], [-1, -1, -1, 2]) as tf.Tensor4D, v.dec2 as tf.Tensor4D, [2, 8, 8, 4], 1, 'same');
    const concat = tf.concat([u, tf.abs(u)], 3);
    const logits = tf.matMul(tf.reshape(tf.slice(concat, [0, 0, 0, 0], [-1, -1, -1, 4]), [-1, 4]), v.head as tf.Tensor2D);
    const targets = tf.oneHot(tf.tensor1d(Array.from({ length: 128 }, (_, i) => (i * 7) % 3), 'int32'), 3);
    const crossEntropy = tf.neg(tf.mean(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), 1)));
    const softmaxTerm = tf.mean(tf.square(tf.softmax(logits)));
    const l1 = tf.mean(tf.abs(tf.sub(tf.slice(u, [0, 0, 0, 0], [-1, -1, -1, 1]), x)));
    return tf.addN([l1, vq.codebookLoss, vq.commitmentLoss, crossEntropy, softmaxTerm]) as tf.Scalar;
  }

  it('all parameter and input gradients agree to 1e-4', async () => {
    const values = names.map((n, i) => ({ data: randomArray(spec[n].reduce((a, b) => a * b), 100 + i, 0.7), shape: spec[n] }));
    const reference = await onBackend('cpu', () => gradientsOf(network, values));
    const actual = await onBackend('wasm', () => gradientsOf(network, values));
    names.forEach((n, i) => {
      expect(Math.max(...reference[i].map(Math.abs)), `${n} gradient is non-trivial`).toBeGreaterThan(1e-6);
      expect(relativeError(actual[i], reference[i]), `gradient of ${n}`).toBeLessThan(1e-4);
    });
  });
});

describe('vector quantisation', () => {
  const [b, h, w, d, k] = [2, 3, 2, 4, 5];
  const zData = randomArray(b * h * w * d, 31);
  const eData = randomArray(k * d, 32);
  const n = b * h * w;

  function bruteForceNearest(): number[] {
    return Array.from({ length: n }, (_, i) => {
      let best = 0;
      let bestDistance = Infinity;
      for (let c = 0; c < k; c++) {
        let dist = 0;
        for (let j = 0; j < d; j++) dist += (zData[i * d + j] - eData[c * d + j]) ** 2;
        if (dist < bestDistance) [best, bestDistance] = [c, dist];
      }
      return best;
    });
  }

  for (const backend of ['cpu', 'wasm']) {
    it(`picks the nearest code and routes gradients correctly (${backend})`, async () => {
      const nearest = bruteForceNearest();
      const probe = randomArray(n * d, 33);
      await onBackend(backend, () => {
        tf.tidy(() => {
          const z = tf.tensor4d(zData, [b, h, w, d]);
          const e = tf.tensor2d(eData, [k, d]);
          const result = quantize(z, e);
          expect(Array.from(result.indices.dataSync())).toEqual(nearest);
          expect(Array.from(nearestCodes(z, e).dataSync())).toEqual(nearest);
          const zq = result.zq.dataSync();
          const looked = lookupCodes(result.indices, e).dataSync();
          for (let i = 0; i < n; i++) {
            for (let j = 0; j < d; j++) {
              expect(zq[i * d + j]).toBe(eData[nearest[i] * d + j]);
              expect(looked[i * d + j]).toBe(eData[nearest[i] * d + j]);
            }
          }
          const counts = result.codeCounts.dataSync();
          for (let c = 0; c < k; c++) expect(counts[c]).toBe(nearest.filter((x) => x === c).length);

          // Straight through: d/dz Σ probe·zq = probe exactly, and nothing reaches the codebook.
          const [gzSt, geSt] = tf.grads((zz: tf.Tensor, ee: tf.Tensor) =>
            tf.sum(tf.mul(quantize(zz as tf.Tensor4D, ee as tf.Tensor2D).zq, tf.tensor(probe, [b, h, w, d]))),
          )([z, e]);
          expect(Array.from(gzSt.dataSync())).toEqual(Array.from(probe));
          expect(Math.max(...geSt.dataSync().map(Math.abs))).toBe(0);

          // Codebook loss: only the codebook moves, by 2(e − z)/(n·d) summed over the positions using it.
          const [gzCb, geCb] = tf.grads((zz: tf.Tensor, ee: tf.Tensor) => quantize(zz as tf.Tensor4D, ee as tf.Tensor2D).codebookLoss)([z, e]);
          expect(Math.max(...gzCb.dataSync().map(Math.abs))).toBe(0);
          const expectedCodebook = new Float32Array(k * d);
          for (let i = 0; i < n; i++) {
            for (let j = 0; j < d; j++) expectedCodebook[nearest[i] * d + j] += (2 * (eData[nearest[i] * d + j] - zData[i * d + j])) / (n * d);
          }
          expect(relativeError(geCb.dataSync() as Float32Array, expectedCodebook)).toBeLessThan(1e-5);

          // Commitment loss: only z moves, by 2(z − e)/(n·d).
          const [gzCm, geCm] = tf.grads((zz: tf.Tensor, ee: tf.Tensor) => quantize(zz as tf.Tensor4D, ee as tf.Tensor2D).commitmentLoss)([z, e]);
          expect(Math.max(...geCm.dataSync().map(Math.abs))).toBe(0);
          const expectedZ = Float32Array.from({ length: n * d }, (_, i) => (2 * (zData[i] - eData[nearest[Math.floor(i / d)] * d + (i % d)])) / (n * d));
          expect(relativeError(gzCm.dataSync() as Float32Array, expectedZ)).toBeLessThan(1e-5);
        });
      });
    });
  }

  it('stopGradient passes values and blocks gradients', async () => {
    await onBackend('cpu', () => {
      tf.tidy(() => {
        const x = tf.tensor1d([1, -2, 3]);
        expect(Array.from(stopGradient(x).dataSync())).toEqual([1, -2, 3]);
        const g = tf.grad((t: tf.Tensor) => tf.sum(tf.add(tf.mul(stopGradient(t), t), t)))(x);
        expect(Array.from(g.dataSync())).toEqual([2, -1, 4]); // d/dt (c·t + t) = c + 1
      });
    });
  });

  it('rejects a codebook of the wrong depth', () => {
    tf.tidy(() => {
      expect(() => quantize(tf.zeros([1, 2, 2, 3]) as tf.Tensor4D, tf.zeros([4, 5]) as tf.Tensor2D)).toThrow(/depth 3 differs from codebook depth 5/);
    });
  });
});

describe('nearest upsampling', () => {
  const [b, h, w, c] = [2, 3, 4, 3];
  const x = randomArray(b * h * w * c, 41);

  function upsampleLoop(factor: number): Float32Array {
    const out = new Float32Array(b * h * factor * w * factor * c);
    for (let n = 0; n < b; n++)
      for (let y = 0; y < h * factor; y++)
        for (let xx = 0; xx < w * factor; xx++)
          for (let ch = 0; ch < c; ch++) {
            out[((n * h * factor + y) * w * factor + xx) * c + ch] = x[((n * h + Math.floor(y / factor)) * w + Math.floor(xx / factor)) * c + ch];
          }
    return out;
  }

  for (const backend of ['cpu', 'wasm']) {
    for (const factor of [2, 3]) {
      it(`copies every pixel to a ${factor}×${factor} block and sums gradients back (${backend}, batch ${b})`, async () => {
        const probe = randomArray(b * h * factor * w * factor * c, 42);
        await onBackend(backend, () => {
          tf.tidy(() => {
            const input = tf.tensor4d(x, [b, h, w, c]);
            const up = factor === 2 ? upsampleNearest2x(input) : upsampleNearest(input, factor);
            expect(up.shape).toEqual([b, h * factor, w * factor, c]);
            expect(Array.from(up.dataSync())).toEqual(Array.from(upsampleLoop(factor)));
            const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(upsampleNearest(t as tf.Tensor4D, factor), tf.tensor(probe, up.shape))))(input).dataSync();
            const expected = new Float32Array(x.length);
            for (let n = 0; n < b; n++)
              for (let y = 0; y < h * factor; y++)
                for (let xx = 0; xx < w * factor; xx++)
                  for (let ch = 0; ch < c; ch++) {
                    expected[((n * h + Math.floor(y / factor)) * w + Math.floor(xx / factor)) * c + ch] += probe[((n * h * factor + y) * w * factor + xx) * c + ch];
                  }
            expect(relativeError(g as Float32Array, expected)).toBeLessThan(1e-6);
          });
        });
      });
    }
  }
});
