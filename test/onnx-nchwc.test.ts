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

/** Both graphs' outputs agree within 1e-5 of each output's largest magnitude. */
async function expectSameOutputs(plain: OnnxModel, lowered: OnnxModel, inputs: Record<string, FloatInput>, outputs: readonly string[]): Promise<void> {
  const want = await run(plain, inputs, outputs);
  const got = await run(lowered, inputs, outputs);
  for (let k = 0; k < outputs.length; k++) {
    const scale = Math.max(...want[k]!.map(Math.abs));
    let worst = 0;
    for (let i = 0; i < want[k]!.length; i++) worst = Math.max(worst, Math.abs(got[k]![i]! - want[k]![i]!));
    expect(worst / scale, outputs[k]).toBeLessThan(1e-5);
  }
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
    await expectSameOutputs(plain, lowered, inputs, outputs);
  });

  it.skipIf(block === null)('lowers convolutions with fewer input channels than a block (plain NCHW input, no ReorderInput), not 1×1 ones', async () => {
    const b = block!;
    const inputs = {
      x: randomInput([2, 3, 7, 6], 'nchw-x'),
      w1: randomInput([b, 3, 3, 3], 'nchw-w1', 0.3), // 3 → b: plain NCHW input
      w2: randomInput([b / 2, b, 5, 5], 'nchw-w2', 0.1), // b → b/2, padded outputs
      w3: randomInput([b, b / 2, 1, 1], 'nchw-w3', 0.3), // 1×1 from b/2 channels: stays plain
    };
    const model = lossGraph(inputs, (g, v) => {
      const h = g.elu(g.node('Conv', [v.x!, v.w1!], { kernel_shape: [3, 3], pads: [1, 0, 1, 2] }));
      const d = g.elu(g.node('Conv', [h, v.w2!], { kernel_shape: [5, 5], pads: [2, 2, 2, 2] })); // [2, b/2, 7, 6]
      return { value: g.node('Conv', [d, v.w3!], { kernel_shape: [1, 1] }), shape: [2, b, 7, 6] };
    });
    const names = Object.keys(inputs);
    const shapes = Object.fromEntries(names.map((n) => [n, inputs[n as keyof typeof inputs].shape]));
    const { model: plain } = backward(model, 'loss', names, { inputShapes: shapes });
    const { model: lowered } = lowerConvsToNchwc(plain, { inputShapes: shapes, blockSize: b, padOutputs: true, nchwInputs: true });
    const blocked = lowered.graph.nodes.filter((n) => n.domain === NCHWC_DOMAIN && n.opType === 'Conv');
    // Conv 1 reads x as plain NCHW; conv 2 (b → b/2, outputs padded) is blocked and its input gradient
    // (b/2 → b, 5×5) reads plain NCHW; conv 3 (1×1 from b/2 channels) stays plain, its input gradient
    // (b → b/2) is blocked.
    const plainInputs = blocked.filter((n) => !lowered.graph.nodes.some((r) => r.opType === 'ReorderInput' && r.outputs[0] === n.inputs[0]));
    expect(plainInputs.map((n) => n.inputs[0])).toContain('x');
    expect(plainInputs.length).toBe(2);
    expect(blocked.length).toBe(4);
    expect(lowered.graph.nodes.some((n) => n.opType === 'Conv' && n.domain === undefined && n.inputs[1] === 'w3')).toBe(true);
    const outputs = ['loss', ...names.map(gradientName)];
    await expectSameOutputs(plain, lowered, inputs, outputs);
  });
});
