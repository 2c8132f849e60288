/**
 * The parameter-only rearrangements hoisted out of a training graph (src/onnx/param-prelude.ts):
 * the hoisted graph fed with the prelude's values gives exactly what ONNX Runtime computes from the
 * whole graph, for every rearranging operator and for a real network's gradient graph.
 */
import { describe, expect, it } from 'vitest';
import { gradientName } from '../src/onnx/autodiff/backward.js';
import { encodeModel, type OnnxModel } from '../src/onnx/onnx-proto.js';
import { fillFlatPrelude, flattenPrelude, hoistParameterPrelude } from '../src/onnx/param-prelude.js';
import { createSession, requireOnnxRuntime, type OrtTensor } from '../src/onnx/runtime.js';
import { benchModel, randomTrainBatch } from '../src/train/bench-train.js';
import { flattenParams, initModel, paramLayout } from '../src/train/loop-worker.js';
import { disposeParams } from '../src/models/params.js';
import { dropoutMasks } from '../src/train/onnx-dropout.js';
import { onnxNetFor } from '../src/train/onnx-nets.js';
import { gradientModel, weightFeedsOf } from '../src/train/onnx-runner.js';
import { lossGraph, randomInput } from './helpers/onnx-grad.js';

const ort = await requireOnnxRuntime();

async function run(model: OnnxModel, feeds: Record<string, OrtTensor>, names: readonly string[]): Promise<Float32Array[]> {
  const session = await createSession(encodeModel(model), { threads: 1 });
  const out = await session.run(feeds);
  await session.release();
  return names.map((n) => Float32Array.from(out[n]!.data as Float32Array));
}

describe('parameter prelude', () => {
  it('hoists Reshape, Transpose, Slice (negative steps), zero Pad (with crops) and Expand chains; the graph gives the same outputs', async () => {
    const inputs = { x: randomInput([2, 3, 4, 5], 'prelude-x'), w: randomInput([6, 4, 3, 2], 'prelude-w') };
    const model = lossGraph(inputs, (g, v) => {
      const t = g.transpose(g.reshape(v.w!, [3, 2, 4, 3, 2]), [4, 0, 2, 3, 1]); // [2, 3, 4, 3, 2]
      const flipped = g.node('Slice', [t, g.ints([-1, -1, 0]), g.ints([-100, -100, 3]), g.ints([3, 4, 1]), g.ints([-1, -2, 2])]); // [2, 2, 4, 3, 1]
      const padded = g.pad(g.reshape(flipped, [2, 3, 4, 2]), [0, 0, 1, 2, 0, 0, -1, 1]); // [2, 3, 4, 5], a row cropped
      const wide = g.expand(g.slice(v.w!, [0], [1], [0]), g.ints([2, 6, 4, 3, 2])); // [2, 6, 4, 3, 2]
      const mixed = g.mul(v.x!, padded);
      return { value: g.add(g.reduceSum(g.reshape(wide, [2, 3, 4, 12]), [3], true), mixed), shape: [2, 3, 4, 5] };
    });
    const { model: hoisted, prelude } = hoistParameterPrelude(model, new Map([['w', inputs.w.shape]]));
    expect(prelude).not.toBeNull();
    const ops = prelude!.nodes.map((n) => n.opType);
    for (const op of ['Reshape', 'Transpose', 'Slice', 'Pad', 'Expand']) expect(ops).toContain(op);
    expect(hoisted.graph.nodes.length + prelude!.nodes.length).toBe(model.graph.nodes.length);
    expect(hoisted.graph.inputs.map((i) => i.name)).not.toContain('w'); // read only through the prelude
    const tensor = (t: { shape: number[]; values: Float32Array }) => new ort.Tensor('float32', t.values, t.shape);
    const [want] = await run(model, { x: tensor(inputs.x), w: tensor(inputs.w) }, ['loss']);
    // w is the whole flat weight vector here: its binding reads element j from weight j.
    const binding = { input: 'w', dims: inputs.w.shape, index: Int32Array.from(inputs.w.values, (_, j) => j), constants: null };
    const flat = flattenPrelude(prelude!, [binding]);
    const values = fillFlatPrelude(flat, inputs.w.values);
    const feeds: Record<string, OrtTensor> = { x: tensor(inputs.x) };
    for (const o of flat) feeds[o.name] = new ort.Tensor('float32', values.get(o.name)!, [...o.shape]);
    const [got] = await run(hoisted, feeds, ['loss']);
    expect(Array.from(got!)).toEqual(Array.from(want!));
    expect(new Set(prelude!.outputs.map((o) => o.param))).toEqual(new Set(['w']));
  });

  it('leaves a graph without parameter rearrangements as it is', () => {
    const inputs = { x: randomInput([2, 3], 'plain-x'), w: randomInput([3, 2], 'plain-w') };
    const model = lossGraph(inputs, (g, v) => ({ value: g.matMul(v.x!, v.w!), shape: [2, 2] }));
    const { model: same, prelude } = hoistParameterPrelude(model, new Map([['w', inputs.w.shape]]));
    expect(prelude).toBeNull();
    expect(same).toBe(model);
  });

  it.each(['vqvae', 'prior'] as const)('the %s gradient graph with its prelude gives the gradients of the graph without one', async (net) => {
    const { model } = benchModel(net, 'compact');
    const count = 2;
    const onnx = onnxNetFor(model);
    const params = initModel(model, 7);
    const weights = flattenParams(params, paramLayout(model));
    disposeParams(params);
    const batch = randomTrainBatch(model, count);
    const data = onnx.feeds(ort, batch);
    const extra = onnx.trainFeeds?.(ort, batch, 3) ?? { feeds: {}, shapes: {} };
    const shapes = { ...data.shapes, ...extra.shapes };
    const masks = dropoutMasks(onnx.train.dropout, count, onnx.dropoutRate, 5);
    const common: Record<string, OrtTensor> = { ...data.feeds, ...extra.feeds };
    for (const site of onnx.train.dropout) common[site.input] = new ort.Tensor('float32', masks.get(site.input)!, [count, ...site.shape]);
    const names = ['loss', ...onnx.train.bindings.map((b) => gradientName(b.input))];
    const saved = process.env.MOODLSR_PARAM_PRELUDE;
    process.env.MOODLSR_PARAM_PRELUDE = '0';
    const whole = await gradientModel(ort, onnx, count, shapes);
    if (saved === undefined) delete process.env.MOODLSR_PARAM_PRELUDE;
    else process.env.MOODLSR_PARAM_PRELUDE = saved;
    const split = await gradientModel(ort, onnx, count, shapes);
    expect(whole.prelude).toBeNull();
    expect(whole.bindings.length).toBe(onnx.train.bindings.length);
    expect(split.bindings.length).toBeLessThan(onnx.train.bindings.length); // parameters read only through the prelude are not copied
    expect(split.prelude!.outputs.length).toBeGreaterThan(20);
    const want = await run(whole.model, { ...common, ...weightFeedsOf(ort, whole, weights) }, names);
    const got = await run(split.model, { ...common, ...weightFeedsOf(ort, split, weights) }, names);
    for (let k = 0; k < names.length; k++) {
      const scale = Math.max(1e-12, ...want[k]!.map(Math.abs));
      let worst = 0;
      for (let i = 0; i < want[k]!.length; i++) worst = Math.max(worst, Math.abs(got[k]![i]! - want[k]![i]!));
      expect(worst / scale, names[k]).toBeLessThan(1e-5);
    }
  }, 120_000);
});
