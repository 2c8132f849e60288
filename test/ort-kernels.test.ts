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
});
