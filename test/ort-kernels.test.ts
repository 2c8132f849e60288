/**
 * The project's own ONNX Runtime binding and custom kernels (native/ort-kernels, src/onnx/native-session.ts):
 * the ConvWeightGrad kernel against the standard-operator weight gradients on the same graphs, and the
 * binding's session behaviour. Skipped where the binding was not built (scripts/setup.sh builds it
 * wherever a C++ compiler is present).
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { backward, gradientName } from '../src/onnx/autodiff/backward.js';
import { CUSTOM_DOMAIN, convVjpOptions } from '../src/onnx/autodiff/vjp.js';
import { encodeModel } from '../src/onnx/onnx-proto.js';
import { loadNativeKernels } from '../src/onnx/native-session.js';
import { createSession, requireOnnxRuntime } from '../src/onnx/runtime.js';
import { lossGraph, randomInput, type FloatInput } from './helpers/onnx-grad.js';
import { createRng } from '../src/engine/random.js';
import { initVqvae } from '../src/models/vqvae.js';
import { flattenParams, paramLayout, type ImageBatch } from '../src/train/loop-worker.js';
import { createOnnxTrainingEngine, onnxNetFor } from '../src/train/onnx-engine.js';
import { gradientModel } from '../src/train/onnx-runner.js';
import { TINY_VQVAE } from './helpers/score-fixtures.js';

const native = loadNativeKernels();
const built = 'kernels' in native;
const hasCompiler = (() => {
  try {
    execFileSync(process.env.CXX ?? 'g++', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

interface Geometry {
  batch: number;
  cin: number;
  cout: number;
  size: [number, number];
  kernel: number;
  pads: [number, number, number, number];
}

function convLoss(g: Geometry, seed: string): { model: ReturnType<typeof lossGraph>; inputs: Record<string, FloatInput> } {
  const [h, w] = g.size;
  const inputs = {
    x: randomInput([g.batch, g.cin, h, w], `${seed}-x`),
    w: randomInput([g.cout, g.cin, g.kernel, g.kernel], `${seed}-w`, 0.3),
  };
  const rows = h + g.pads[0] + g.pads[2] - g.kernel + 1;
  const cols = w + g.pads[1] + g.pads[3] - g.kernel + 1;
  const model = lossGraph(inputs, (b, v) => ({
    value: b.node('Conv', [v.x!, v.w!], { kernel_shape: [g.kernel, g.kernel], strides: [1, 1], pads: [...g.pads], dilations: [1, 1], group: 1 }),
    shape: [g.batch, g.cout, rows, cols],
  }));
  return { model, inputs };
}

describe('native ONNX Runtime binding (native/ort-kernels)', () => {
  it('is built wherever a C++ compiler is present (scripts/setup.sh)', () => {
    if (process.env.MOODLSR_ORT_KERNELS === '0') return;
    if (hasCompiler) expect('error' in native ? native.error : 'loaded').toBe('loaded');
  });

  it.skipIf(!built)('ConvWeightGrad equals the standard-operator weight gradient: odd widths, uneven pads, 1×1 to 7×7, few channels', async () => {
    const kernels = (native as { kernels: NonNullable<Extract<typeof native, { kernels: unknown }>['kernels']> }).kernels;
    const ort = await requireOnnxRuntime();
    const saved = { ...convVjpOptions };
    convVjpOptions.directMinOutputPixels = 0;
    try {
      const geometries: Geometry[] = [
        { batch: 2, cin: 3, cout: 5, size: [9, 20], kernel: 3, pads: [1, 1, 1, 1] },
        { batch: 1, cin: 2, cout: 7, size: [6, 37], kernel: 3, pads: [0, 1, 2, 0] },
        { batch: 3, cin: 2, cout: 3, size: [11, 16], kernel: 7, pads: [3, 3, 3, 3] },
        { batch: 2, cin: 5, cout: 4, size: [4, 33], kernel: 1, pads: [0, 0, 0, 0] },
        { batch: 2, cin: 8, cout: 16, size: [32, 32], kernel: 3, pads: [1, 1, 1, 1] },
      ];
      for (const [k, geometry] of geometries.entries()) {
        const { model, inputs } = convLoss(geometry, `cwg-${k}`);
        const shapes = { x: inputs.x!.shape, w: inputs.w!.shape };
        const names = [gradientName('x'), gradientName('w')];
        const plain = backward(model, 'loss', ['x', 'w'], { inputShapes: shapes }).model;
        const direct = backward(model, 'loss', ['x', 'w'], { inputShapes: shapes, customOperators: true }).model;
        expect(direct.graph.nodes.filter((n) => n.domain === CUSTOM_DOMAIN).map((n) => n.opType)).toEqual(['ConvWeightGrad']);
        expect(plain.graph.nodes.some((n) => n.domain === CUSTOM_DOMAIN)).toBe(false);
        const reference = await (await createSession(encodeModel(plain), { threads: 1 })).run({
          x: new ort.Tensor('float32', inputs.x!.values, inputs.x!.shape),
          w: new ort.Tensor('float32', inputs.w!.values, inputs.w!.shape),
        });
        const session = kernels.createSession(encodeModel(direct), ['loss', ...names], 1);
        const out = await session.run({
          x: { type: 'float32', data: inputs.x!.values, dims: inputs.x!.shape },
          w: { type: 'float32', data: inputs.w!.values, dims: inputs.w!.shape },
        });
        await session.release();
        for (const name of ['loss', ...names]) {
          const want = reference[name]!.data as Float32Array;
          const got = out[name]!.data as Float32Array;
          expect(got.length).toBe(want.length);
          let scale = 0;
          for (const v of want) scale = Math.max(scale, Math.abs(v));
          let worst = 0;
          for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
          expect(worst / scale, `${name} of geometry ${k}`).toBeLessThan(1e-5);
        }
      }
    } finally {
      Object.assign(convVjpOptions, saved);
    }
  });

  it.skipIf(!built)('EluExp alone, vectorised and scalar: max(x, e − 1) and e = exp(min(x, 0)) against float64, every length tail', () => {
    const kernels = (native as { kernels: NonNullable<Extract<typeof native, { kernels: unknown }>['kernels']> }).kernels;
    for (const length of [1, 15, 16, 17, 1000]) {
      const x = Float32Array.from(randomInput([length], `elu-${length}`, 6).values);
      if (length === 1000) x.set([0, -0, -90, -87, 88, -1e-8, 1e-8, -0.34657359], 0);
      for (const vectorised of [true, false]) {
        const [y, e] = kernels.eluExp(x, vectorised);
        for (let i = 0; i < length; i++) {
          const want = Math.exp(Math.min(x[i]!, 0));
          expect(Math.abs(e[i]! - want), `e(${x[i]}) ${vectorised}`).toBeLessThanOrEqual(2.5e-7 * want + 1e-38);
          expect(y[i] === Math.max(x[i]!, Math.fround(e[i]! - 1)), `y(${x[i]}) ${vectorised}`).toBe(true);
        }
      }
    }
  });

  it.skipIf(!built)('a VQ-VAE step at 64² (its first level through ConvWeightGrad; EluExp, PlaneSums, PlaneCombine throughout): gradients and statistics equal the standard graph\'s', async () => {
    const model = { kind: 'vqvae' as const, config: { ...TINY_VQVAE, inputSize: 64, dropout: 0.1 } };
    const ort = await requireOnnxRuntime();
    const count = 3;
    const rng = createRng('vq64');
    const size = model.config.inputSize;
    const batch: ImageBatch = { kind: 'images', images: Float32Array.from({ length: count * size * size }, () => rng.next()), positions: Float32Array.from({ length: count }, () => rng.uniform(-1, 1)), count, size };
    const net = onnxNetFor(model);
    const graph = await gradientModel(ort, net, count, net.feeds(ort, batch).shapes, { customOperators: true });
    const direct = graph.model.graph.nodes.filter((n) => n.opType === 'ConvWeightGrad').length;
    expect(direct).toBeGreaterThanOrEqual(4);
    // Every ELU's Min → Exp → Sub → Max chain is one EluExp node.
    expect(graph.model.graph.nodes.filter((n) => n.opType === 'EluExp').length).toBeGreaterThanOrEqual(8);
    expect(graph.model.graph.nodes.filter((n) => n.opType === 'Exp' && n.domain === undefined).length).toBe(0);
    // Every GroupNorm's backward: its two sums in one PlaneSums pass, dx in one PlaneCombine pass.
    const norms = graph.model.graph.nodes.filter((n) => n.opType === 'LayerNormalization').length;
    expect(norms).toBeGreaterThanOrEqual(8);
    expect(graph.model.graph.nodes.filter((n) => n.opType === 'PlaneSums').length).toBe(norms);
    expect(graph.model.graph.nodes.filter((n) => n.opType === 'PlaneCombine').length).toBe(norms);
    const weights = flattenParams(initVqvae(model.config, 7), paramLayout(model));
    const run = async (customKernels: boolean) => {
      const engine = await createOnnxTrainingEngine(model, { threads: 1, customKernels });
      try {
        return await engine.gradients(weights, 1, batch, 11);
      } finally {
        await engine.close();
      }
    };
    const plain = await run(false);
    const custom = await run(true);
    for (const key of Object.keys(plain.stats.means)) expect(custom.stats.means[key], key).toBeCloseTo(plain.stats.means[key]!, 5);
    let scale = 0;
    let worst = 0;
    for (let i = 0; i < plain.grads.length; i++) {
      scale = Math.max(scale, Math.abs(plain.grads[i]!));
      worst = Math.max(worst, Math.abs(custom.grads[i]! - plain.grads[i]!));
    }
    expect(scale).toBeGreaterThan(0);
    expect(worst / scale).toBeLessThan(1e-5);
  });

  it.skipIf(!built)('a session names the bad feed and refuses to run after release', async () => {
    const kernels = (native as { kernels: NonNullable<Extract<typeof native, { kernels: unknown }>['kernels']> }).kernels;
    const { model, inputs } = convLoss({ batch: 1, cin: 1, cout: 1, size: [4, 4], kernel: 3, pads: [1, 1, 1, 1] }, 'errors');
    const session = kernels.createSession(encodeModel(model), ['loss'], 1);
    const x = { type: 'float32', data: inputs.x!.values, dims: inputs.x!.shape };
    const w = { type: 'float32', data: inputs.w!.values, dims: inputs.w!.shape };
    await expect(session.run({ x, w: { ...w, dims: [1, 1, 3, 2] } })).rejects.toThrow(/input w has 9 elements/);
    await expect(session.run({ x, nope: w })).rejects.toThrow(/nope/);
    const out = await session.run({ x, w });
    expect(out.loss!.dims).toEqual([]);
    expect(Number.isFinite((out.loss!.data as Float32Array)[0])).toBe(true);
    await session.release();
    await expect(session.run({ x, w })).rejects.toThrow(/after release/);
    expect(() => kernels.createSession(Uint8Array.of(1, 2, 3), ['loss'], 1)).toThrow(/ort-kernels/);
  });

  it.skipIf(!built)('the kernel alone, vectorised and scalar, against a float64 loop; a geometry that does not add up is refused', () => {
    const kernels = (native as { kernels: NonNullable<Extract<typeof native, { kernels: unknown }>['kernels']> }).kernels;
    const cases: { batch: number; inChannels: number; outChannels: number; height: number; width: number; kernel: [number, number]; pads: [number, number, number, number] }[] = [
      { batch: 2, inChannels: 3, outChannels: 6, height: 7, width: 19, kernel: [3, 3], pads: [1, 1, 1, 1] },
      { batch: 1, inChannels: 1, outChannels: 2, height: 5, width: 40, kernel: [3, 5], pads: [0, 2, 2, 2] },
    ];
    for (const [k, g] of cases.entries()) {
      const [kh, kw] = g.kernel;
      const geometry = { ...g, outHeight: g.height + g.pads[0] + g.pads[2] - kh + 1, outWidth: g.width + g.pads[1] + g.pads[3] - kw + 1 };
      const x = randomInput([g.batch, g.inChannels, g.height, g.width], `alone-x-${k}`).values;
      const dy = randomInput([g.batch, g.outChannels, geometry.outHeight, geometry.outWidth], `alone-dy-${k}`).values;
      const want = new Float64Array(g.outChannels * g.inChannels * kh * kw);
      for (let n = 0; n < g.batch; n++)
        for (let o = 0; o < g.outChannels; o++)
          for (let i = 0; i < g.inChannels; i++)
            for (let ky = 0; ky < kh; ky++)
              for (let kx = 0; kx < kw; kx++)
                for (let y = 0; y < geometry.outHeight; y++)
                  for (let xo = 0; xo < geometry.outWidth; xo++) {
                    const r = y + ky - g.pads[0];
                    const c = xo + kx - g.pads[1];
                    if (r < 0 || r >= g.height || c < 0 || c >= g.width) continue;
                    want[((o * g.inChannels + i) * kh + ky) * kw + kx]! += dy[((n * g.outChannels + o) * geometry.outHeight + y) * geometry.outWidth + xo]! * x[((n * g.inChannels + i) * g.height + r) * g.width + c]!;
                  }
      for (const vectorised of [true, false]) {
        const got = kernels.convWeightGrad(x, dy, geometry, vectorised);
        expect(got.length).toBe(want.length);
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
        expect(worst, `case ${k}, vectorised ${vectorised}`).toBeLessThan(1e-5);
      }
    }
    const bad = { batch: 1, inChannels: 1, outChannels: 1, height: 4, width: 4, outHeight: 5, outWidth: 4, kernel: [3, 3], pads: [1, 1, 1, 1] } as const;
    expect(() => kernels.convWeightGrad(new Float32Array(16), new Float32Array(20), bad, true)).toThrow(/inconsistent geometry/);
  });
});
