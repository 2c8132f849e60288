/**
 * Reverse mode over the ONNX graph builder (src/onnx/autodiff): every operator the model emitters
 * use, differentiated on tiny shapes and checked against central finite differences (float32, see
 * test/helpers/onnx-grad.ts) and, for the layers, against TF.js's gradients.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { convVjpOptions, patchFloats, registeredOperators } from '../src/onnx/autodiff/vjp.js';
import { emitConv, emitConvStride2AsSpaceToDepth, emitGroupNorm, emitUpsampleConvPhases, emitUpsampleNearest2x, feature, type HostParams } from '../src/onnx/emit-blocks.js';
import { conv, groupNorm } from '../src/models/blocks.js';
import { upsampleNearest2x } from '../src/engine/upsample.js';
import * as backwardModule from '../src/onnx/autodiff/backward.js';

const { backward } = backwardModule;
import { checkGradients, lossGraph, randomInput, type FloatInput } from './helpers/onnx-grad.js';
import type { GraphBuilder, Value } from '../src/onnx/graph.js';

const FD_TOLERANCE = 2e-3;

type Build = (g: GraphBuilder, x: Record<string, Value>) => { value: Value; shape: number[] };

async function expectFd(inputs: Record<string, FloatInput>, build: Build, tolerance = FD_TOLERANCE): Promise<void> {
  const { worst } = await checkGradients(lossGraph(inputs, build), inputs);
  expect(worst).toBeLessThan(tolerance);
}

const inp = (shape: number[], seed: string, scale = 1) => randomInput(shape, seed, scale);

describe('ONNX autodiff: per-operator gradients vs finite differences', () => {
  it('registers a VJP for every differentiable operator the emitters use', () => {
    const used = ['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Exp', 'Neg', 'Sigmoid', 'Tanh', 'Reshape', 'Transpose', 'Concat', 'Split', 'Slice', 'Pad', 'MatMul', 'Softmax', 'LogSoftmax', 'ReduceSum', 'Gather', 'Expand', 'Identity', 'Sum', 'Conv', 'InstanceNormalization', 'LayerNormalization', 'Resize', 'DepthToSpace', 'Cast'];
    for (const op of used) expect(registeredOperators()).toContain(op);
  });

  it('broadcasting arithmetic: Add, Sub, Mul, Div, Sum', async () => {
    const inputs = { a: inp([2, 3, 4], 'a'), b: inp([3, 1], 'b'), c: { shape: [4], values: Float32Array.of(1.5, 2, -1.7, 3) } };
    await expectFd(inputs, (g, x) => {
      const s = g.sub(g.mul(g.add(x.a!, x.b!), x.b!), x.a!);
      const d = g.node('Div', [s, x.c!]);
      return { value: g.node('Sum', [d, x.b!, x.c!]), shape: [2, 3, 4] };
    });
  });

  it('ELU as Max/Min/Exp, Sigmoid, Tanh, Neg, Abs', async () => {
    const inputs = { a: inp([3, 5], 'elu', 1.5) };
    await expectFd(inputs, (g, x) => {
      const y = g.add(g.elu(x.a!), g.mul(g.sigmoid(x.a!), g.node('Tanh', [g.neg(x.a!)])));
      return { value: g.add(y, g.node('Abs', [x.a!])), shape: [3, 5] };
    });
  });

  it('Reshape, Transpose, Concat, Split, Slice (steps 1 and 2), Pad, Expand', async () => {
    const inputs = { a: inp([2, 4, 3, 3], 'shape-a'), b: inp([2, 2, 3, 3], 'shape-b'), c: inp([1, 4, 1, 1], 'shape-c') };
    await expectFd(inputs, (g, x) => {
      const cat = g.concat([x.a!, x.b!], 1); // [2, 6, 3, 3]
      const [p, q] = g.split(cat, 2, 1); // [2, 3, 3, 3] each
      const t = g.transpose(g.mul(p!, q!), [0, 2, 3, 1]); // [2, 3, 3, 3]
      const padded = g.pad(t, [0, 1, 0, 2, 0, 0, 1, 0]); // [2, 4, 4, 5]
      const strided = g.node('Slice', [padded, g.ints([0, 1]), g.ints([4, 5]), g.ints([1, 3]), g.ints([2, 2])]); // [2, 2, 4, 2]
      const cut = g.slice(padded, [1], [3], [1]); // [2, 2, 4, 5]
      const r = g.reshape(cut, [2, 2, 20]);
      const e = g.expand(x.c!, g.ints([2, 4, 3, 3]));
      return { value: g.concat([g.reshape(strided, [2, 16]), g.reshape(r, [2, 40]), g.reshape(g.mul(e, x.a!), [2, 36])], 1), shape: [2, 92] };
    });
  });

  it('Slices of disjoint blocks of one value: their gradients are joined by one Concat, not summed as full-size pads', async () => {
    // The prior's first causal convolution: per tap, a block of channels at a spatial offset; here with a gap in the channels.
    const inputs = { a: inp([2, 3, 4, 9], 'blocks') };
    const build: Build = (g, x) => {
      const tap = (ky: number, kx: number, c: number) => g.slice(x.a!, [ky, kx, c], [ky + 2, kx + 3, c + 2], [1, 2, 3]);
      return { value: g.add(g.add(tap(0, 0, 0), tap(1, 1, 2)), g.mul(tap(0, 1, 6), tap(1, 0, 4))), shape: [2, 2, 3, 2] };
    };
    await expectFd(inputs, build);
    const { model } = backward(lossGraph(inputs, build), 'loss', ['a'], { inputShapes: { a: inputs.a.shape } });
    const ops = model.graph.nodes.map((n) => `${n.opType}:${n.name}`);
    expect(ops.filter((o) => o.startsWith('Concat:grad/join'))).toHaveLength(1);
    expect(ops.filter((o) => o.startsWith('Sum:'))).toHaveLength(0);
    // the four full-size pads are gone (pruned), only pads of the blocks' other axes remain
    const padShapes = model.graph.nodes.filter((n) => n.opType === 'Pad').length;
    expect(padShapes).toBe(4);
  });

  it('MatMul (batched, broadcast), Softmax, LogSoftmax, ReduceSum, ReduceMean', async () => {
    const inputs = { a: inp([2, 3, 4], 'mm-a'), b: inp([4, 5], 'mm-b') };
    await expectFd(inputs, (g, x) => {
      const m = g.matMul(x.a!, x.b!); // [2, 3, 5]
      const s = g.mul(g.softmax(m, 2), g.logSoftmax(m, 1));
      const r = g.add(g.reduceSum(s, [1], true), g.node('ReduceMean', [m], { axes: [2], keepdims: 1 }));
      return { value: g.add(s, r), shape: [2, 3, 5] };
    });
  });

  it('Gather of rows (codebook and weight-row lookups)', async () => {
    const inputs = { e: inp([5, 3], 'codebook') };
    await expectFd(inputs, (g, x) => {
      const idx = g.initializer('idx', [2, 3], Int32Array.of(0, 4, 4, 2, 1, 0));
      return { value: g.gather(x.e!, idx), shape: [2, 3, 3] };
    });
  });

  it.each([
    ['per-tap products', Number.POSITIVE_INFINITY, 'auto'],
    ['the input\'s patches', 0, 'input-patches'],
    ['dy\'s patches (stride 1)', 0, 'gradient-patches'],
    ['shifts split between input and dy (stride 1), dy\'s rows gathered', 0, 'separable'],
    ['shifts split between input and dy (stride 1), dy\'s rows by a one-hot Conv', 0, 'separable', 'conv'],
    ['the form writing the fewest patches', 0, 'auto'],
  ] as const)('Conv: 3×3 same, 3×3 uneven pads, 5×5 stride 2 same (TF padding), 7×7, 1×1 with bias; weight gradient by %s', async (_, threshold, form, heightShifts: 'gather' | 'conv' = 'gather') => {
    const saved = { ...convVjpOptions };
    convVjpOptions.im2colMinOutputPixels = threshold;
    convVjpOptions.weightGradient = form;
    convVjpOptions.heightShifts = heightShifts;
    try {
      const wShape = (kh: number, cin: number, cout: number) => [cout, cin, kh, kh];
      for (const [kh, stride, pads, size] of [
        [3, 1, [1, 1, 1, 1], 6],
        [3, 1, [0, 1, 2, 0], 5],
        [5, 2, [1, 1, 2, 2], 6],
        [5, 2, [2, 2, 2, 2], 7],
        [7, 1, [3, 3, 3, 3], 5],
        [1, 1, [0, 0, 0, 0], 4],
      ] as const) {
        const inputs = { x: inp([2, 3, size, size], `conv-x-${kh}`), w: inp(wShape(kh, 3, 4), `conv-w-${kh}`, 0.3), b: inp([4], `conv-b-${kh}`) };
        await expectFd(inputs, (g, v) => {
          const y = g.node('Conv', [v.x!, v.w!, v.b!], { kernel_shape: [kh, kh], strides: [stride, stride], pads: [...pads], dilations: [1, 1], group: 1 });
          const rows = Math.floor((size + pads[0] + pads[2] - kh) / stride) + 1;
          const cols = Math.floor((size + pads[1] + pads[3] - kh) / stride) + 1;
          return { value: y, shape: [2, 4, rows, cols] };
        });
      }
    } finally {
      Object.assign(convVjpOptions, saved);
    }
  });

  it('separable weight gradient: dy\'s row shifts are one Pad + one Gather of whole rows, no kh×1 one-hot Conv', () => {
    const saved = { ...convVjpOptions };
    convVjpOptions.im2colMinOutputPixels = 0;
    convVjpOptions.weightGradient = 'separable';
    try {
      const inputs = { x: inp([2, 3, 6, 6], 'rows-x'), w: inp([4, 3, 3, 3], 'rows-w', 0.3) };
      const model = lossGraph(inputs, (g, v) => ({ value: g.node('Conv', [v.x!, v.w!], { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 }), shape: [2, 4, 6, 6] }));
      const nodes = (heightShifts: 'gather' | 'conv') => {
        convVjpOptions.heightShifts = heightShifts;
        return backward(model, 'loss', ['x', 'w'], { inputShapes: { x: [2, 3, 6, 6], w: [4, 3, 3, 3] } }).model.graph.nodes.filter((n) => n.name.startsWith('grad/'));
      };
      const kernels = (list: ReturnType<typeof nodes>) => list.filter((n) => n.opType === 'Conv' && n.inputs.some((i) => i.startsWith('grad/im2col_h'))).length;
      const gathered = nodes('gather');
      expect(gathered.filter((n) => n.opType === 'Gather' && n.attributes.axis?.kind === 'int' && n.attributes.axis.value === 2)).toHaveLength(1);
      expect(kernels(gathered)).toBe(0);
      expect(kernels(nodes('conv'))).toBe(1);
    } finally {
      Object.assign(convVjpOptions, saved);
    }
  });

  it('patchFloats: the weight gradient writes the fewer patches', () => {
    const geometry = (cin: number, cout: number, kh: number, stride: number, pad: number, size: number) => {
      const out = Math.floor((size + 2 * pad - kh) / stride) + 1;
      return { kh, kw: kh, strides: [stride, stride], pads: [pad, pad, pad, pad], cin, cout, batch: 8, inSize: [size, size], outSize: [out, out] };
    };
    // 16 → 8 channels, 3×3: dy's patches and the split shifts write half of the input's patches.
    expect(patchFloats(geometry(16, 8, 3, 1, 1, 128))).toEqual({ 'input-patches': 144 * 128 * 128, 'gradient-patches': 72 * 128 * 128, separable: 72 * 128 * 128 });
    // The 7×7 stem (2 → 8): 14 + 56 shifted planes against 98 patches.
    expect(patchFloats(geometry(2, 8, 7, 1, 3, 128))).toEqual({ 'input-patches': 98 * 128 * 128, 'gradient-patches': 392 * 128 * 128, separable: 70 * 128 * 128 });
    // Strided: only the input's patches.
    expect(patchFloats(geometry(8, 16, 5, 2, 2, 128))).toEqual({ 'input-patches': 200 * 64 * 64, 'gradient-patches': null, separable: null });
  });

  it('InstanceNormalization (GroupNorm), Resize nearest 2×, DepthToSpace, LayerNormalization', async () => {
    const inputs = { x: inp([2, 4, 3, 3], 'norm-x', 2), s: inp([4], 'norm-s'), t: inp([3], 'ln-s') };
    await expectFd(inputs, (g, v) => {
      const grouped = g.reshape(v.x!, [0, 2, -1]);
      const normed = g.node('InstanceNormalization', [grouped, g.slice(v.s!, [0], [2], [0]), g.initializer('zero2', [2], new Float32Array(2))], { epsilon: { float: 1e-5 } });
      const back = g.reshape(normed, [2, 4, 3, 3]);
      const up = g.node('Resize', [back, g.initializer('roi', [0], new Float32Array(0)), g.initializer('sc', [4], Float32Array.of(1, 1, 2, 2))], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
      const d2s = g.node('DepthToSpace', [back], { blocksize: 2, mode: 'CRD' }); // [2, 1, 6, 6]
      const ln = g.node('LayerNormalization', [v.x!, v.t!, g.initializer('ln_b', [3], Float32Array.of(0.1, 0, -0.2))], { axis: -1, epsilon: { float: 1e-5 } });
      return { value: g.concat([g.reshape(up, [2, -1]), g.reshape(d2s, [2, -1]), g.reshape(ln, [2, -1])], 1), shape: [2, 144 + 36 + 36] };
    }, 5e-3);
  });
});

describe('ONNX autodiff: GroupNorm + affine differentiated as one unit', () => {
  const params: HostParams = new Map([
    ['n.g', { shape: [6], values: Float32Array.of(1.3, -0.4, 0.8, 2.1, 0.05, -1.2) }],
    ['n.b', { shape: [6], values: Float32Array.of(0.2, -0.1, 0.7, 0, -0.5, 0.3) }],
  ]);
  const inputs = { x: inp([2, 6, 4, 5], 'gn-x', 3) };
  const chainModel = () => {
    const { initializersToInputs } = backwardModule;
    const model = lossGraph(inputs, (g, v) => ({ value: emitGroupNorm(g, params, 'n', feature(v.x!, 6, 4, 5), 3).value, shape: [2, 6, 4, 5] }));
    return initializersToInputs(model, ['n.g', 'n.b']);
  };
  const feeds = () => ({ ...inputs, 'n.g': { shape: [6, 1, 1], values: params.get('n.g')!.values }, 'n.b': { shape: [6, 1, 1], values: params.get('n.b')!.values } });

  it('rewrites the chain as LayerNormalization + BatchNormalization and matches finite differences', async () => {
    const model = chainModel();
    const shapes = Object.fromEntries(Object.entries(feeds()).map(([k, v]) => [k, v.shape]));
    const fused = backward(model, 'loss', ['x', 'n.g', 'n.b'], { inputShapes: shapes }).model.graph.nodes.map((n) => n.opType);
    expect(fused).toContain('LayerNormalization');
    expect(fused).toContain('BatchNormalization');
    expect(fused).not.toContain('InstanceNormalization');
    const plain = backward(model, 'loss', ['x', 'n.g', 'n.b'], { inputShapes: shapes, fuseGroupNorm: false }).model.graph.nodes.map((n) => n.opType);
    expect(plain).toContain('InstanceNormalization');
    expect(plain).not.toContain('BatchNormalization');
    const { worst } = await checkGradients(model, feeds());
    expect(worst).toBeLessThan(FD_TOLERANCE);
  });

  it('folds a per-sample bias added after the affine (the VQ-VAE\'s slice condition) into the affine pass', async () => {
    const { initializersToInputs } = backwardModule;
    const withBias = { ...inputs, p: inp([2, 6, 1, 1], 'gn-p', 2) };
    const model = initializersToInputs(
      lossGraph(withBias, (g, v) => ({ value: g.add(emitGroupNorm(g, params, 'n', feature(v.x!, 6, 4, 5), 3).value, v.p!), shape: [2, 6, 4, 5] })),
      ['n.g', 'n.b'],
    );
    const allFeeds = { ...feeds(), p: withBias.p };
    const shapes = Object.fromEntries(Object.entries(allFeeds).map(([k, v]) => [k, v.shape]));
    const grads = backward(model, 'loss', ['x', 'n.g', 'n.b', 'p'], { inputShapes: shapes }).model.graph.nodes;
    // The bias joins the affine's BatchNormalization, which runs over [1, N·C, H·W]: no Add of p is left.
    expect(grads.some((n) => n.opType === 'Add' && n.inputs.includes('p'))).toBe(false);
    expect(grads.filter((n) => n.opType === 'BatchNormalization' && !n.name.startsWith('grad/'))).toHaveLength(1);
    const { worst } = await checkGradients(model, allFeeds);
    expect(worst).toBeLessThan(FD_TOLERANCE);
  });
});

describe('ONNX autodiff: gated products a·σ(b) differentiated as one unit', () => {
  const inputs = { x: inp([2, 6, 3, 3], 'glu-x', 2) };
  // A GLU (σ(b) used once: fused) beside a product whose sigmoid is used twice (differentiated op by op).
  const build: Build = (g, v) => {
    const [a, b] = g.split(v.x!, 2, 1);
    const glu = g.mul(a!, g.sigmoid(b!));
    const shared = g.sigmoid(a!);
    return { value: g.add(glu, g.mul(g.mul(b!, shared), shared)), shape: [2, 3, 3, 3] };
  };

  it('forms db as da·(a − o) (two operators fewer than op by op) and matches finite differences', async () => {
    const model = lossGraph(inputs, build);
    const ops = (fuseGatedProducts: boolean) => backward(model, 'loss', ['x'], { inputShapes: { x: inputs.x.shape }, fuseGatedProducts }).model.graph.nodes;
    const fused = ops(true);
    const plain = ops(false);
    expect(plain.length - fused.length).toBe(2);
    await expectFd(inputs, build);
  });
});

describe('ONNX autodiff: nearest upsampling + 3×3 conv as phase kernels', () => {
  const cin = 3;
  const cout = 2;
  const w = inp([3, 3, cin, cout], 'phase-w', 0.5); // [kh, kw, in, out], as the TF.js weights
  const params: HostParams = new Map([
    ['up.w', { shape: w.shape, values: w.values }],
    ['up.b', { shape: [cout], values: Float32Array.of(0.3, -0.2) }],
  ]);
  const inputs = { x: inp([2, cin, 4, 5], 'phase-x') };

  it('has Resize + Conv\'s input gradient, and weight gradients that match finite differences', async () => {
    const outputs = async (build: (g: GraphBuilder, x: Value) => Value) => {
      const model = lossGraph(inputs, (g, v) => ({ value: build(g, v.x!), shape: [2, cout, 8, 10] }));
      const { analytic } = await checkGradients(model, inputs, { directions: 1, elements: 1 });
      return analytic['grad/x']!;
    };
    const phases = await outputs((g, x) => emitUpsampleConvPhases(g, params, 'up', feature(x, cin, 4, 5)).value);
    const twoStep = await outputs((g, x) => emitConv(g, params, 'up', emitUpsampleNearest2x(g, feature(x, cin, 4, 5))).value);
    let worst = 0;
    for (let i = 0; i < phases.length; i++) worst = Math.max(worst, Math.abs(phases[i]! - twoStep[i]!));
    expect(worst).toBeLessThan(1e-4);
    // The weights as inputs: their gradient goes through the phase-kernel MatMul.
    const { initializersToInputs } = backwardModule;
    const model = initializersToInputs(
      lossGraph(inputs, (g, v) => ({ value: emitUpsampleConvPhases(g, params, 'up', feature(v.x!, cin, 4, 5)).value, shape: [2, cout, 8, 10] })),
      ['up.w', 'up.b'],
    );
    const oihw = { shape: [cout, cin, 3, 3], values: new Float32Array(cout * cin * 9) };
    for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) oihw.values[((o * cin + i) * 3 + y) * 3 + x] = w.values[((y * 3 + x) * cin + i) * cout + o]!;
    const { worst: fd } = await checkGradients(model, { ...inputs, 'up.w': oihw, 'up.b': { shape: [cout], values: params.get('up.b')!.values } });
    expect(fd).toBeLessThan(FD_TOLERANCE);
  });
});

describe('ONNX autodiff: a stride-2 conv as a stride-1 conv of SpaceToDepth', () => {
  it.each([
    [5, 8, 6],
    [3, 6, 4],
    [4, 4, 8],
  ])('k = %i on %i×%i: the strided conv\'s input gradient, and weight gradients that match finite differences', async (k, height, width) => {
    const cin = 2;
    const cout = 3;
    const w = inp([k, k, cin, cout], `s2d-w-${k}`, 0.4);
    const params: HostParams = new Map([
      ['down.w', { shape: w.shape, values: w.values }],
      ['down.b', { shape: [cout], values: Float32Array.of(0.1, -0.3, 0.2) }],
    ]);
    const inputs = { x: inp([2, cin, height, width], `s2d-x-${k}`) };
    const out = [2, cout, height / 2, width / 2];
    const inputGradient = async (build: (g: GraphBuilder, x: Value) => Value) => {
      const { analytic } = await checkGradients(lossGraph(inputs, (g, v) => ({ value: build(g, v.x!), shape: out })), inputs, { directions: 1, elements: 1 });
      return analytic['grad/x']!;
    };
    const viaS2d = await inputGradient((g, x) => emitConvStride2AsSpaceToDepth(g, params, 'down', feature(x, cin, height, width)).value);
    const strided = await inputGradient((g, x) => emitConv(g, params, 'down', feature(x, cin, height, width), { stride: 2 }).value);
    let worst = 0;
    for (let i = 0; i < strided.length; i++) worst = Math.max(worst, Math.abs(viaS2d[i]! - strided[i]!));
    expect(worst).toBeLessThan(1e-4);
    const model = backwardModule.initializersToInputs(
      lossGraph(inputs, (g, v) => ({ value: emitConvStride2AsSpaceToDepth(g, params, 'down', feature(v.x!, cin, height, width)).value, shape: out })),
      ['down.w', 'down.b'],
    );
    const oihw = { shape: [cout, cin, k, k], values: new Float32Array(cout * cin * k * k) };
    for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) oihw.values[((o * cin + i) * k + y) * k + x] = w.values[((y * k + x) * cin + i) * cout + o]!;
    const { worst: fd } = await checkGradients(model, { ...inputs, 'down.w': oihw, 'down.b': { shape: [cout], values: params.get('down.b')!.values } });
    expect(fd).toBeLessThan(FD_TOLERANCE);
  });
});

describe('ONNX autodiff: layer gradients vs TF.js', () => {
  /** ONNX gradients of Σ layer(x)·r for the block emitters vs tf.grads of the tfjs block. */
  it('conv (stride 2, same) + GroupNorm + nearest upsampling match tf.grads', async () => {
    const size = 6;
    const cin = 4;
    const cout = 6;
    const x = inp([2, size, size, cin], 'tf-x'); // NHWC, as TF.js
    const w = inp([5, 5, cin, cout], 'tf-w', 0.2);
    const gamma = inp([cout], 'tf-g');
    const beta = inp([cout], 'tf-b');
    const r = inp([2, cout, size, size], 'loss-weights'); // the weights lossGraph uses
    // TF.js reference: d/d(x, w, gamma, beta) of Σ up(gn(conv(x))) · r, r laid out NCHW → NHWC.
    const [gx, gw, gg, gb] = tf.tidy(() => {
      const rNhwc = tf.transpose(tf.tensor4d(r.values, r.shape as [number, number, number, number]), [0, 2, 3, 1]);
      const f = (xx: tf.Tensor, ww: tf.Tensor, gg2: tf.Tensor, bb: tf.Tensor) => {
        const params = { 'l.w': ww, 'l.norm.g': gg2, 'l.norm.b': bb } as unknown as Parameters<typeof conv>[0];
        const y = groupNorm(params, 'l.norm', conv(params, 'l', xx as tf.Tensor4D, { stride: 2 }), 3);
        const up = upsampleNearest2x(y);
        return tf.sum(tf.mul(up, rNhwc));
      };
      const grads = tf.grads(f)([tf.tensor4d(x.values, x.shape as [number, number, number, number]), tf.tensor4d(w.values, w.shape as [number, number, number, number]), tf.tensor1d(gamma.values), tf.tensor1d(beta.values)]);
      return grads.map((t) => t.dataSync() as Float32Array);
    });
    // ONNX: the same layer through the block emitters, with the parameters as graph inputs.
    const params: HostParams = new Map([
      ['l.w', { shape: w.shape, values: w.values }],
      ['l.norm.g', { shape: gamma.shape, values: gamma.values }],
      ['l.norm.b', { shape: beta.shape, values: beta.values }],
    ]);
    const xNchw = { shape: [2, cin, size, size], values: tf.tidy(() => tf.transpose(tf.tensor4d(x.values, x.shape as [number, number, number, number]), [0, 3, 1, 2]).dataSync() as Float32Array) };
    const model = lossGraph({ x: xNchw }, (g, v) => {
      const y = emitGroupNorm(g, params, 'l.norm', emitConv(g, params, 'l', feature(v.x!, cin, size, size), { stride: 2 }), 3);
      const up = emitUpsampleNearest2x(g, y);
      return { value: up.value, shape: [2, cout, size, size] };
    });
    // Promote the parameter initializers to inputs and differentiate w.r.t. them too.
    const { initializersToInputs } = await import('../src/onnx/autodiff/backward.js');
    const trainable = initializersToInputs(model, ['l.w', 'l.norm.g', 'l.norm.b']);
    const wOihw = { shape: [cout, cin, 5, 5], values: tf.tidy(() => tf.transpose(tf.tensor4d(w.values, w.shape as [number, number, number, number]), [3, 2, 0, 1]).dataSync() as Float32Array) };
    const { analytic, worst } = await checkGradients(trainable, { x: xNchw, 'l.w': wOihw, 'l.norm.g': { shape: [cout, 1, 1], values: gamma.values }, 'l.norm.b': { shape: [cout, 1, 1], values: beta.values } });
    expect(worst).toBeLessThan(5e-3);
    const back = (v: Float32Array, shape: number[], perm: number[]) => tf.tidy(() => tf.transpose(tf.tensor(v, shape), perm).dataSync() as Float32Array);
    const rel = (a: Float32Array, b: Float32Array) => {
      let d = 0;
      let s = 0;
      for (let i = 0; i < b.length; i++) {
        d = Math.max(d, Math.abs(a[i]! - b[i]!));
        s = Math.max(s, Math.abs(b[i]!));
      }
      return d / s;
    };
    expect(rel(back(analytic['grad/x']!, [2, cin, size, size], [0, 2, 3, 1]), gx!)).toBeLessThan(1e-4);
    expect(rel(back(analytic['grad/l.w']!, [cout, cin, 5, 5], [2, 3, 1, 0]), gw!)).toBeLessThan(1e-4);
    expect(rel(analytic['grad/l.norm.g']!, gg!)).toBeLessThan(1e-4);
    expect(rel(analytic['grad/l.norm.b']!, gb!)).toBeLessThan(1e-4);
  });
});
