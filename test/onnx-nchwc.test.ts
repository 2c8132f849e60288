/**
 * Convolutions of a gradient graph in ONNX Runtime's blocked layout (src/onnx/nchwc.ts): the
 * lowered graph gives the plain graph's loss and gradients, lowers exactly the convolutions whose
 * channels fill whole blocks, and runtimes without NCHWc kernels keep the plain graph.
 */
import { describe, expect, it } from 'vitest';
import { backward, gradientName } from '../src/onnx/autodiff/backward.js';
import { lowerConvsToNchwc, NCHWC_DOMAIN, nchwcBlockSize } from '../src/onnx/nchwc.js';
import { encodeModel, type OnnxModel } from '../src/onnx/onnx-proto.js';
import { createSession, requireOnnxRuntime } from '../src/onnx/runtime.js';
import { lossGraph, randomInput, type FloatInput } from './helpers/onnx-grad.js';

const ort = await requireOnnxRuntime();
const block = await nchwcBlockSize(ort);

async function run(model: OnnxModel, inputs: Record<string, FloatInput>, names: readonly string[]): Promise<Float32Array[]> {
  const session = await createSession(encodeModel(model), { threads: 1 });
  const feeds = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, new ort.Tensor('float32', t.values, t.shape)]));
  const out = await session.run(feeds);
  await session.release();
  return names.map((n) => out[n]!.data as Float32Array);
}

describe('NCHWc lowering of gradient graphs', () => {
  it.skipIf(block === null).each([
    ['whole blocks only', false, 3],
    ['half a block of outputs padded', true, 4],
  ] as const)('gives the plain graph\'s loss and gradients, lowering convolutions of %s', async (_, padOutputs, expected) => {
    const b = block!;
    const inputs = {
      x: randomInput([2, b, 6, 6], 'nchwc-x'),
      w1: randomInput([2 * b, b, 3, 3], 'nchwc-w1', 0.2),
      b1: randomInput([2 * b], 'nchwc-b1'),
      w2: randomInput([b, 2 * b, 5, 5], 'nchwc-w2', 0.1),
      w3: randomInput([b / 2, b, 3, 3], 'nchwc-w3', 0.2), // half a block of outputs: stays plain
    };
    const model = lossGraph(inputs, (g, v) => {
      const h = g.elu(g.node('Conv', [v.x!, v.w1!, v.b1!], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] }));
      const d = g.node('Conv', [h, v.w2!], { kernel_shape: [5, 5], pads: [1, 1, 2, 2], strides: [2, 2] }); // [2, b, 3, 3]
      return { value: g.node('Conv', [d, v.w3!], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), shape: [2, b / 2, 3, 3] };
    });
    const names = Object.keys(inputs);
    const shapes = Object.fromEntries(names.map((n) => [n, inputs[n as keyof typeof inputs].shape]));
    const { model: plain } = backward(model, 'loss', names, { inputShapes: shapes });
    const { model: lowered, lowered: count } = lowerConvsToNchwc(plain, { inputShapes: shapes, blockSize: b, padOutputs });
    const nchwcConvs = lowered.graph.nodes.filter((n) => n.domain === NCHWC_DOMAIN && n.opType === 'Conv').length;
    // Lowered: the forward convs 1 and 2 and conv 1's input gradient (2b → b), and with padding conv 3
    // (b/2 outputs). Conv 2's input gradient is a ConvTranspose (stride 2); conv 3's input gradient
    // (b/2 inputs) stays plain.
    expect(count).toBe(nchwcConvs);
    expect(count).toBe(expected);
    expect(lowered.graph.nodes.some((n) => n.opType === 'Conv' && n.domain === undefined && n.inputs[1] === 'w3')).toBe(!padOutputs);
    const outputs = ['loss', ...names.map(gradientName)];
    const want = await run(plain, inputs, outputs);
    const got = await run(lowered, inputs, outputs);
    for (let k = 0; k < outputs.length; k++) {
      const scale = Math.max(...want[k]!.map(Math.abs));
      let worst = 0;
      for (let i = 0; i < want[k]!.length; i++) worst = Math.max(worst, Math.abs(got[k]![i]! - want[k]![i]!));
      expect(worst / scale, outputs[k]).toBeLessThan(1e-5);
    }
  });
});
