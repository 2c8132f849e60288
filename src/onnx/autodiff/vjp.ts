/**
 * Vector–Jacobian products, one emitter per ONNX operator: given the gradients of a node's outputs,
 * append the nodes that compute the gradients of its (float) inputs. Every product is written in
 * standard operators, so the gradient graph runs on any ONNX runtime:
 * - Conv: input gradient = ConvTranspose of dy with the same weight; weight gradient = a Conv of the
 *   batch-transposed input with the batch-transposed dy as kernel (dilation = stride);
 * - InstanceNormalization (GroupNorm of ../emit-blocks.ts): the closed form
 *   dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂));
 * - Gather (code and weight-row lookups): OneHot(indices)ᵀ · dy;
 * - broadcasting operators sum their gradient back to the input's shape.
 */
import type { OnnxNode } from '../onnx-proto.js';
import { attr, floatAttr, intAttr, intsAttr, type GraphEditor } from './editor.js';
import { reductionAxes, size, sliceIndices, sliceSpec, type Shape, type ShapeInfo } from './shapes.js';

export interface VjpContext {
  readonly e: GraphEditor;
  readonly node: OnnxNode;
  readonly info: ShapeInfo;
  /** Gradient of each output (undefined: zero). */
  readonly dy: readonly (string | undefined)[];
  /** Which inputs need a gradient. */
  readonly needs: readonly boolean[];
  /** The node computing a value (undefined for inputs and initializers). */
  readonly producer: (value: string) => OnnxNode | undefined;
  /** Whether the graph may use this project's custom operators (BackwardOptions.customOperators). */
  readonly customOperators?: boolean;
}

/** The operator domain of this project's custom kernels (native/ort-kernels). */
export const CUSTOM_DOMAIN = 'com.moodlsr';

/** Gradients of the inputs, in input order (undefined: none / zero). */
export type Vjp = (ctx: VjpContext) => (string | undefined)[];

const registry = new Map<string, Vjp>();

export function registerVjp(opType: string, vjp: Vjp): void {
  registry.set(opType, vjp);
}

export function vjpOf(opType: string): Vjp | undefined {
  return registry.get(opType);
}

export function registeredOperators(): string[] {
  return [...registry.keys()].sort();
}

/** Operators whose outputs carry no gradient (integer results, shapes, comparisons). */
export const NON_DIFFERENTIABLE = new Set(['Shape', 'ArgMin', 'ArgMax', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'Not', 'And', 'Or', 'OneHot', 'Sign']);

export function shapeOf(ctx: VjpContext, value: string): Shape {
  const s = ctx.info.shapes.get(value);
  if (s === undefined) throw new Error(`ONNX autodiff: no shape for ${value}`);
  return s;
}

/** The gradient of output 0, or zeros of its shape. */
function dy0(ctx: VjpContext): string {
  return ctx.dy[0] ?? ctx.e.zeros(shapeOf(ctx, ctx.node.outputs[0]!));
}

/** Sums `grad` (of shape `from`, a broadcast of `to`) back to shape `to`. */
export function reduceTo(e: GraphEditor, grad: string, from: Shape, to: Shape): string {
  if (from.length === to.length && from.every((d, i) => d === to[i])) return grad;
  const lead = from.length - to.length;
  const axes: number[] = [];
  for (let i = 0; i < from.length; i++) {
    const target = i < lead ? 1 : to[i - lead]!;
    if (i < lead || (target === 1 && from[i] !== 1)) axes.push(i);
  }
  let out = grad;
  if (axes.length > 0) out = e.node('ReduceSum', [out, e.ints(axes)], { keepdims: attr.int(1) });
  return e.node('Reshape', [out, e.ints([...to])]);
}

const mul = (e: GraphEditor, a: string, b: string) => e.node('Mul', [a, b]);
const sub = (e: GraphEditor, a: string, b: string) => e.node('Sub', [a, b]);

/** A binary broadcasting operator: local gradients (before reduction) → reduced to each input. */
function binary(local: (ctx: VjpContext, dy: string, a: string, b: string) => [string | undefined, string | undefined]): Vjp {
  return (ctx) => {
    const [a, b] = ctx.node.inputs as [string, string];
    const out = shapeOf(ctx, ctx.node.outputs[0]!);
    const [ga, gb] = local(ctx, dy0(ctx), a, b);
    return [
      ctx.needs[0] && ga !== undefined ? reduceTo(ctx.e, ga, out, shapeOf(ctx, a)) : undefined,
      ctx.needs[1] && gb !== undefined ? reduceTo(ctx.e, gb, out, shapeOf(ctx, b)) : undefined,
    ];
  };
}

registerVjp('Add', binary((_, dy) => [dy, dy]));
registerVjp(
  'Sub',
  binary((ctx, dy) => [dy, ctx.needs[1] ? ctx.e.node('Neg', [dy]) : undefined]),
);
registerVjp(
  'Mul',
  binary((ctx, dy, a, b) => [ctx.needs[0] ? mul(ctx.e, dy, b) : undefined, ctx.needs[1] ? mul(ctx.e, dy, a) : undefined]),
);
registerVjp(
  'Div',
  binary((ctx, dy, _a, b) => {
    const e = ctx.e;
    const ga = e.node('Div', [dy, b]);
    // d(a/b)/db · dy = −a/b² · dy = −ga · y
    const gb = ctx.needs[1] ? e.node('Neg', [mul(e, ga, ctx.node.outputs[0]!)]) : undefined;
    return [ga, gb];
  }),
);
/** Max/Min of two inputs: the gradient goes to the chosen one (ties: the first, as TF.js). */
function extremum(compare: 'GreaterOrEqual' | 'LessOrEqual'): Vjp {
  return (ctx) => {
    if (ctx.node.inputs.length !== 2) throw new Error(`ONNX autodiff: ${ctx.node.opType} ${ctx.node.name}: only two inputs are supported`);
    return binary((c, dy, a, b) => {
      const e = c.e;
      const first = mul(e, dy, e.node('Cast', [e.node(compare, [a, b])], { to: attr.int(1) }));
      return [first, c.needs[1] ? sub(e, dy, first) : undefined];
    })(ctx);
  };
}
/**
 * ../graph.ts writes ELU as max(x, exp(min(x, 0)) − 1). Differentiated op by op that is nine
 * full-size operators; its derivative is dy where x > 0, else dy·exp(min(x, 0)) (the Exp value the
 * forward pass already holds), i.e. dy·exp(min(x, 0)) everywhere: one operator. Ties (x = 0) give dy,
 * as the op-by-op rule.
 */
function eluPattern(ctx: VjpContext): { x: string; exp: string } | undefined {
  const [x, other] = ctx.node.inputs as [string, string];
  const sub = ctx.producer(other);
  if (sub?.opType !== 'Sub' || ctx.info.floats.get(sub.inputs[1]!)?.[0] !== 1) return undefined;
  const exp = ctx.producer(sub.inputs[0]!);
  if (exp?.opType !== 'Exp') return undefined;
  const min = ctx.producer(exp.inputs[0]!);
  if (min?.opType !== 'Min' || min.inputs[0] !== x || ctx.info.floats.get(min.inputs[1]!)?.[0] !== 0) return undefined;
  return { x, exp: exp.outputs[0]! };
}

const maxVjp = extremum('GreaterOrEqual');
registerVjp('Max', (ctx) => {
  const elu = ctx.node.inputs.length === 2 ? eluPattern(ctx) : undefined;
  if (elu === undefined) return maxVjp(ctx);
  const e = ctx.e;
  const dy = dy0(ctx);
  // exp(min(x, 0)) is exactly 1 where x ≥ 0, so one product covers both branches.
  return [mul(e, dy, elu.exp), undefined];
});
registerVjp('Min', extremum('LessOrEqual'));
registerVjp('Sum', (ctx) => {
  const out = shapeOf(ctx, ctx.node.outputs[0]!);
  const dy = dy0(ctx);
  return ctx.node.inputs.map((x, i) => (ctx.needs[i] ? reduceTo(ctx.e, dy, out, shapeOf(ctx, x)) : undefined));
});
registerVjp('Where', (ctx) => {
  const e = ctx.e;
  const [cond, a, b] = ctx.node.inputs as [string, string, string];
  const out = shapeOf(ctx, ctx.node.outputs[0]!);
  const dy = dy0(ctx);
  const zero = e.scalar(0);
  return [
    undefined,
    ctx.needs[1] ? reduceTo(e, e.node('Where', [cond, dy, zero]), out, shapeOf(ctx, a)) : undefined,
    ctx.needs[2] ? reduceTo(e, e.node('Where', [cond, zero, dy]), out, shapeOf(ctx, b)) : undefined,
  ];
});

// ---- unary -------------------------------------------------------------------------------------

function unary(f: (ctx: VjpContext, dy: string, x: string, y: string) => string): Vjp {
  return (ctx) => [f(ctx, dy0(ctx), ctx.node.inputs[0]!, ctx.node.outputs[0]!)];
}

registerVjp('Identity', unary((_, dy) => dy));
registerVjp('Neg', unary((ctx, dy) => ctx.e.node('Neg', [dy])));
registerVjp('Exp', unary((ctx, dy, _x, y) => mul(ctx.e, dy, y)));
registerVjp('Log', unary((ctx, dy, x) => ctx.e.node('Div', [dy, x])));
registerVjp('Sqrt', unary((ctx, dy, _x, y) => ctx.e.node('Div', [mul(ctx.e, dy, ctx.e.scalar(0.5)), y])));
registerVjp('Reciprocal', unary((ctx, dy, _x, y) => ctx.e.node('Neg', [mul(ctx.e, dy, mul(ctx.e, y, y))])));
registerVjp('Sigmoid', unary((ctx, dy, _x, y) => mul(ctx.e, dy, mul(ctx.e, y, sub(ctx.e, ctx.e.scalar(1), y)))));
registerVjp('Tanh', unary((ctx, dy, _x, y) => mul(ctx.e, dy, sub(ctx.e, ctx.e.scalar(1), mul(ctx.e, y, y)))));
registerVjp('Abs', unary((ctx, dy, x) => mul(ctx.e, dy, ctx.e.node('Sign', [x]))));
registerVjp('Relu', unary((ctx, dy, x) => mul(ctx.e, dy, ctx.e.node('Cast', [ctx.e.node('Greater', [x, ctx.e.scalar(0)])], { to: attr.int(1) }))));
registerVjp(
  'Elu',
  unary((ctx, dy, x, y) => {
    const e = ctx.e;
    if (floatAttr(ctx.node, 'alpha', 1) !== 1) throw new Error(`ONNX autodiff: Elu ${ctx.node.name}: only alpha 1 is supported`);
    return e.node('Where', [e.node('Greater', [x, e.scalar(0)]), dy, mul(e, dy, e.node('Add', [y, e.scalar(1)]))]);
  }),
);
registerVjp('Cast', (ctx) => {
  const to = intAttr(ctx.node, 'to', 1);
  return [to === 1 ? dy0(ctx) : undefined];
});
registerVjp('Softmax', (ctx) => {
  const e = ctx.e;
  const y = ctx.node.outputs[0]!;
  const axis = intAttr(ctx.node, 'axis', -1);
  const dy = dy0(ctx);
  const dot = e.node('ReduceSum', [mul(e, dy, y), e.ints([axis])], { keepdims: attr.int(1) });
  return [mul(e, y, sub(e, dy, dot))];
});
registerVjp('LogSoftmax', (ctx) => {
  const e = ctx.e;
  const y = ctx.node.outputs[0]!;
  const axis = intAttr(ctx.node, 'axis', -1);
  const dy = dy0(ctx);
  const total = e.node('ReduceSum', [dy, e.ints([axis])], { keepdims: attr.int(1) });
  return [sub(e, dy, mul(e, e.node('Exp', [y]), total))];
});

// ---- shape operators ---------------------------------------------------------------------------

registerVjp('Reshape', (ctx) => [ctx.e.node('Reshape', [dy0(ctx), ctx.e.ints([...shapeOf(ctx, ctx.node.inputs[0]!)])]), undefined]);
registerVjp('Transpose', (ctx) => {
  const rank = shapeOf(ctx, ctx.node.inputs[0]!).length;
  const perm = intsAttr(ctx.node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const inverse = new Array<number>(rank);
  perm.forEach((p, i) => (inverse[p] = i));
  return [ctx.e.node('Transpose', [dy0(ctx)], { perm: attr.ints(inverse) })];
});
registerVjp('Expand', (ctx) => [reduceTo(ctx.e, dy0(ctx), shapeOf(ctx, ctx.node.outputs[0]!), shapeOf(ctx, ctx.node.inputs[0]!)), undefined]);
registerVjp('Concat', (ctx) => {
  const e = ctx.e;
  const rank = shapeOf(ctx, ctx.node.inputs[0]!).length;
  let axis = intAttr(ctx.node, 'axis', 0);
  if (axis < 0) axis += rank;
  const dy = dy0(ctx);
  let start = 0;
  return ctx.node.inputs.map((x, i) => {
    const n = shapeOf(ctx, x)[axis]!;
    const from = start;
    start += n;
    return ctx.needs[i] ? e.node('Slice', [dy, e.ints([from]), e.ints([from + n]), e.ints([axis])]) : undefined;
  });
});
registerVjp('Split', (ctx) => {
  const e = ctx.e;
  const rank = shapeOf(ctx, ctx.node.inputs[0]!).length;
  let axis = intAttr(ctx.node, 'axis', 0);
  if (axis < 0) axis += rank;
  const parts = ctx.node.outputs.map((o, i) => ctx.dy[i] ?? e.zeros(shapeOf(ctx, o)));
  return [e.node('Concat', parts, { axis: attr.int(axis) }), undefined];
});
registerVjp('Pad', (ctx) => {
  const mode = ctx.node.attributes.mode;
  if (mode !== undefined && (mode.kind !== 'string' || mode.value !== 'constant')) throw new Error(`ONNX autodiff: Pad ${ctx.node.name}: only constant padding is supported`);
  const pads = ctx.info.ints.get(ctx.node.inputs[1]!);
  if (pads === undefined) throw new Error(`ONNX autodiff: Pad ${ctx.node.name}: pads are not constant`);
  const x = shapeOf(ctx, ctx.node.inputs[0]!);
  if (pads.some((p) => p < 0)) throw new Error(`ONNX autodiff: Pad ${ctx.node.name}: negative pads are not supported`);
  const starts = x.map((_, i) => pads[i]!);
  const ends = x.map((d, i) => pads[i]! + d);
  const axes = x.map((_, i) => i);
  return [ctx.e.node('Slice', [dy0(ctx), ctx.e.ints(starts), ctx.e.ints(ends), ctx.e.ints(axes)])];
});
registerVjp('Slice', (ctx) => {
  const e = ctx.e;
  const x = shapeOf(ctx, ctx.node.inputs[0]!);
  const spec = sliceSpec(ctx.node, ctx.info);
  let g = dy0(ctx);
  let shape = [...shapeOf(ctx, ctx.node.outputs[0]!)];
  const pads = new Array<number>(2 * x.length).fill(0);
  const cut: { axis: number; keep: number }[] = [];
  spec.axes.forEach((axis, i) => {
    const step = spec.steps[i]!;
    if (step < 1) throw new Error(`ONNX autodiff: Slice ${ctx.node.name}: negative steps are not supported`);
    const idx = sliceIndices(x[axis]!, spec.starts[i]!, spec.ends[i]!, step);
    if (idx.length === 0) return;
    if (step > 1) {
      // Spread the gradient to every step-th position: [.., n, ..] → [.., n, step, ..] (zeros after each) → [.., n·step, ..].
      const n = shape[axis]!;
      const withAxis = [...shape.slice(0, axis + 1), 1, ...shape.slice(axis + 1)];
      const zerosShape = [...shape.slice(0, axis + 1), step - 1, ...shape.slice(axis + 1)];
      const spread = e.node('Concat', [e.node('Reshape', [g, e.ints(withAxis)]), e.zeros(zerosShape)], { axis: attr.int(axis + 1) });
      shape = [...shape];
      shape[axis] = n * step;
      g = e.node('Reshape', [spread, e.ints(shape)]);
    }
    const first = idx[0]!;
    pads[axis] = first;
    const after = x[axis]! - (first + shape[axis]!);
    if (after >= 0) pads[axis + x.length] = after;
    else cut.push({ axis, keep: x[axis]! - first });
  });
  if (cut.length > 0) {
    g = e.node('Slice', [g, e.ints(cut.map(() => 0)), e.ints(cut.map((c) => c.keep)), e.ints(cut.map((c) => c.axis))]);
  }
  if (pads.some((p) => p !== 0)) {
    const inner = g;
    g = e.node('Pad', [inner, e.ints(pads)], { mode: { kind: 'string', value: 'constant' } });
    e.paddedGradients.set(g, { inner, pads });
  }
  return [g];
});
// SpaceToDepth (channel (i·b + j)·C + c) is undone by DepthToSpace in DCR mode.
registerVjp('SpaceToDepth', (ctx) => [ctx.e.node('DepthToSpace', [dy0(ctx)], { blocksize: attr.int(intAttr(ctx.node, 'blocksize', 1)), mode: { kind: 'string', value: 'DCR' } })]);

registerVjp('DepthToSpace', (ctx) => {
  const e = ctx.e;
  const [n, c, h, w] = shapeOf(ctx, ctx.node.inputs[0]!) as [number, number, number, number];
  const b = intAttr(ctx.node, 'blocksize', 1);
  const mode = ctx.node.attributes.mode;
  const crd = mode !== undefined && mode.kind === 'string' && mode.value === 'CRD';
  if (!crd) return [e.node('SpaceToDepth', [dy0(ctx)], { blocksize: attr.int(b) })];
  // CRD: SpaceToDepth (channel (i·b + j)·C′ + c), then the b² blocks of H·W moved behind the channel,
  // block copies instead of a 6-D element transpose (8.6 → 2.0 ms on [8, 32, 64, 64], 1 thread).
  const oc = c / (b * b);
  const blocks = e.node('Reshape', [e.node('SpaceToDepth', [dy0(ctx)], { blocksize: attr.int(b) }), e.ints([n, b * b, oc, h, w])]);
  const moved = e.node('Transpose', [blocks], { perm: attr.ints([0, 2, 1, 3, 4]) });
  return [e.node('Reshape', [moved, e.ints([n, c, h, w])])];
});
registerVjp('Resize', (ctx) => {
  const e = ctx.e;
  const node = ctx.node;
  const mode = node.attributes.mode;
  if (mode === undefined || mode.kind !== 'string' || mode.value !== 'nearest') throw new Error(`ONNX autodiff: Resize ${node.name}: only nearest mode is supported`);
  const x = shapeOf(ctx, node.inputs[0]!);
  const y = shapeOf(ctx, node.outputs[0]!);
  if (x.length !== 4 || x[0] !== y[0] || x[1] !== y[1] || y[2]! % x[2]! !== 0 || y[3]! % x[3]! !== 0) {
    throw new Error(`ONNX autodiff: Resize ${node.name}: only integer spatial upsampling of NCHW is supported`);
  }
  const [n, c, h, w] = x as [number, number, number, number];
  const sh = y[2]! / h;
  const sw = y[3]! / w;
  // asymmetric + floor: output pixel (i, j) reads input (⌊i/sh⌋, ⌊j/sw⌋), i.e. sh×sw blocks.
  const blocks = e.node('Reshape', [dy0(ctx), e.ints([n, c, h, sh, w, sw])]);
  return [e.node('ReduceSum', [blocks, e.ints([3, 5])], { keepdims: attr.int(0) }), undefined, undefined, undefined];
});

// ---- reductions and products --------------------------------------------------------------------

function reduction(scaled: boolean): Vjp {
  return (ctx) => {
    const e = ctx.e;
    const x = shapeOf(ctx, ctx.node.inputs[0]!);
    const axes = reductionAxes(ctx.node, ctx.info);
    const kept = x.map((d, i) => (axes.includes(i) ? 1 : d));
    let g = e.node('Reshape', [dy0(ctx), e.ints(kept)]);
    if (scaled) g = mul(e, g, e.scalar(1 / axes.reduce((a, i) => a * x[i]!, 1)));
    return [e.node('Expand', [g, e.ints([...x])]), undefined];
  };
}
registerVjp('ReduceSum', reduction(false));
/** y = log Σ exp(x) over the axes: dx = dy · exp(x − y) (the softmax over those axes). */
registerVjp('ReduceLogSumExp', (ctx) => {
  const e = ctx.e;
  const x = shapeOf(ctx, ctx.node.inputs[0]!);
  const axes = reductionAxes(ctx.node, ctx.info);
  const kept = e.ints(x.map((d, i) => (axes.includes(i) ? 1 : d)));
  const y = e.node('Reshape', [ctx.node.outputs[0]!, kept]);
  const softmax = e.node('Exp', [sub(e, ctx.node.inputs[0]!, y)]);
  return [mul(e, softmax, e.node('Reshape', [dy0(ctx), kept])), undefined];
});
registerVjp('ReduceMean', reduction(true));

function swapLast(e: GraphEditor, v: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1]!, perm[rank - 2]!];
  return e.node('Transpose', [v], { perm: attr.ints(perm) });
}

registerVjp('MatMul', (ctx) => {
  const e = ctx.e;
  const [a, b] = ctx.node.inputs as [string, string];
  const sa = shapeOf(ctx, a);
  const sb = shapeOf(ctx, b);
  const dy = dy0(ctx);
  const sy = shapeOf(ctx, ctx.node.outputs[0]!);
  const batch = sy.slice(0, -2);
  const ga = ctx.needs[0] ? reduceTo(e, e.node('MatMul', [dy, swapLast(e, b, sb.length)]), [...batch, sa[sa.length - 2]!, sa[sa.length - 1]!], sa) : undefined;
  const gb = ctx.needs[1] ? reduceTo(e, e.node('MatMul', [swapLast(e, a, sa.length), dy]), [...batch, sb[sb.length - 2]!, sb[sb.length - 1]!], sb) : undefined;
  return [ga, gb];
});

registerVjp('Gather', (ctx) => {
  const e = ctx.e;
  const [data, indices] = ctx.node.inputs as [string, string];
  const axis = intAttr(ctx.node, 'axis', 0);
  const sd = shapeOf(ctx, data);
  if (axis !== 0 && axis !== -sd.length) throw new Error(`ONNX autodiff: Gather ${ctx.node.name}: only axis 0 is supported`);
  const k = sd[0]!;
  const rest = size(sd.slice(1));
  const n = size(shapeOf(ctx, indices));
  const flatIdx = e.node('Cast', [e.node('Reshape', [indices, e.ints([1, n])])], { to: attr.int(7) });
  const rows = BigInt64Array.from({ length: k }, (_, i) => BigInt(i));
  const oneHot = e.node('Cast', [e.node('Equal', [e.initializer('grad/code_range', [k, 1], rows), flatIdx])], { to: attr.int(1) }); // [K, n]
  const summed = e.node('MatMul', [oneHot, e.node('Reshape', [dy0(ctx), e.ints([n, rest])])]);
  return [e.node('Reshape', [summed, e.ints([...sd])]), undefined];
});

// ---- convolution and normalisation ------------------------------------------------------------

interface ConvGeometry {
  kh: number;
  kw: number;
  strides: readonly number[];
  /** ONNX order: top, left, bottom, right. */
  pads: readonly number[];
  outSize: readonly number[];
}

/**
 * dx of a convolution. Stride 1: a convolution of dy with the kernel transposed (in ↔ out) and
 * flipped, padded by k − 1 − p (ONNX Runtime runs Conv about 1.5× faster than ConvTranspose);
 * otherwise ConvTranspose of dy with the same weight, with output_padding for the rows the forward
 * stride skipped at the end.
 */
function convInputGradient(e: GraphEditor, dy: string, w: string, c: ConvGeometry & { inSize: readonly number[] }): string {
  const [pt, pl, pb, pr] = c.pads as [number, number, number, number];
  const { kh, kw } = c;
  if (c.strides.every((s) => s === 1) && pt < kh && pb < kh && pl < kw && pr < kw) {
    const flipped = e.node('Slice', [e.node('Transpose', [w], { perm: attr.ints([1, 0, 2, 3]) }), e.ints([-1, -1]), e.ints([-(2 ** 31), -(2 ** 31)]), e.ints([2, 3]), e.ints([-1, -1])]);
    return e.node('Conv', [dy, flipped], {
      kernel_shape: attr.ints([kh, kw]),
      strides: attr.ints([1, 1]),
      pads: attr.ints([kh - 1 - pt, kw - 1 - pl, kh - 1 - pb, kw - 1 - pr]),
      dilations: attr.ints([1, 1]),
      group: attr.int(1),
    });
  }
  const extra = [0, 1].map((i) => c.inSize[i]! - ((c.outSize[i]! - 1) * c.strides[i]! + [kh, kw][i]! - c.pads[i]! - c.pads[i + 2]!));
  return e.node('ConvTranspose', [dy, w], {
    kernel_shape: attr.ints([kh, kw]),
    strides: attr.ints(c.strides),
    pads: attr.ints(c.pads),
    output_padding: attr.ints(extra),
    dilations: attr.ints([1, 1]),
    group: attr.int(1),
  });
}

/**
 * dW[o, i, ky, kx] = Σ_n,y,x dy[n, o, y, x] · xpad[n, i, y·s + ky, x·s + kx]: per tap, the tap's
 * window of the padded input (a strided slice) [N, Cin, Ho·Wo] times dyᵀ [N, Ho·Wo, Cout]; the taps
 * stacked and summed over the batch → [kh, kw, Cin, Cout] → OIHW. (A Conv with dy as a dilated
 * kernel computes the same and measured 3–8× slower in ONNX Runtime.)
 */
function convWeightGradient(e: GraphEditor, x: string, dy: string, c: ConvGeometry & { cin: number; cout: number; batch: number }): string {
  const { kh, kw, strides, pads, cin, cout, batch } = c;
  const [ho, wo] = c.outSize as [number, number];
  const padded = pads.some((p) => p !== 0) ? e.node('Pad', [x, e.ints([0, 0, pads[0]!, pads[1]!, 0, 0, pads[2]!, pads[3]!])], { mode: { kind: 'string', value: 'constant' } }) : x;
  const dyT = e.node('Transpose', [e.node('Reshape', [dy, e.ints([batch, cout, ho * wo])])], { perm: attr.ints([0, 2, 1]) }); // [N, Ho·Wo, Cout]
  const strided = strides.some((s) => s !== 1);
  const whole = !strided && kh === 1 && kw === 1 && pads.every((p) => p === 0);
  const products: string[] = [];
  for (let ky = 0; ky < kh; ky++) {
    for (let kx = 0; kx < kw; kx++) {
      // One tap: its input window [N, Cin, Ho, Wo] (a strided slice of the padded input) times dyᵀ.
      const tap = whole ? padded : e.node('Slice', [padded, e.ints([ky, kx]), e.ints([ky + (ho - 1) * strides[0]! + 1, kx + (wo - 1) * strides[1]! + 1]), e.ints([2, 3]), e.ints([...strides])]);
      products.push(e.node('MatMul', [e.node('Reshape', [tap, e.ints([batch, cin, ho * wo])]), dyT])); // [N, Cin, Cout]
    }
  }
  const stacked = products.length === 1 ? products[0]! : e.node('Concat', products, { axis: attr.int(1) }); // [N, taps·Cin, Cout]
  const summed = sumOverBatch(e, stacked, batch, [kh * kw * cin, cout]); // [taps·Cin, Cout]
  return e.node('Transpose', [e.node('Reshape', [summed, e.ints([kh, kw, cin, cout])])], { perm: attr.ints([3, 2, 0, 1]) });
}

/**
 * How a weight gradient is formed. `auto`: the per-tap products below `im2colMinOutputPixels` output
 * pixels, above it the one of the three patch forms that writes the fewest floats (`patchFloats`);
 * the others force one form where it applies (tests).
 */
export type ConvWeightGradientForm = 'auto' | 'taps' | 'input-patches' | 'gradient-patches' | 'separable';

/**
 * Output planes of at least `im2colMinOutputPixels` pixels take a patch form, smaller ones the per-tap
 * products. With the input's patches the only form, from 64×64 up was best (session 6: VQ-VAE 6.5 → 9.0
 * slices/s; the prior's 16×16 maps 11 % slower with patches). With the three forms, from 16×16 up: the
 * VQ-VAE's 2-session step median 29.4 → 32.6 slices/s over 10 interleaved pairs, the prior unchanged
 * (median ratio 1.02 over 5) (docs/benchmarks.md, "Session 19").
 */
export const convVjpOptions: { im2colMinOutputPixels: number; weightGradient: ConvWeightGradientForm; heightShifts: 'gather' | 'conv'; directMinOutputPixels: number } = {
  im2colMinOutputPixels: 256,
  directMinOutputPixels: 4096,
  weightGradient: 'auto',
  heightShifts: 'gather',
};

type WeightGradientGeometry = ConvGeometry & { cin: number; cout: number; batch: number; inSize: readonly number[] };

/** The padding that turns a stride-1 convolution's dy back onto its input grid (dx's padding), or null. */
function backPads(c: WeightGradientGeometry): number[] | null {
  if (c.strides.some((s) => s !== 1)) return null;
  const [pt, pl, pb, pr] = c.pads as [number, number, number, number];
  const back = [c.kh - 1 - pt, c.kw - 1 - pl, c.kh - 1 - pb, c.kw - 1 - pr];
  return back.every((p) => p >= 0) ? back : null;
}

/**
 * Floats each patch form writes: the input's patches Cin·kh·kw·Ho·Wo; dy's patches on the input grid
 * Cout·kh·kw·H·W; the separable form, the input shifted along the width Cin·kw·H·Wo plus dy shifted
 * along the height Cout·kh·H·Wo. (The GEMMs do the same multiply-adds; the patches cross memory, and
 * a narrow side of 8 columns fills half of an AVX-512 register.) Null: the form does not apply.
 */
export function patchFloats(c: WeightGradientGeometry): Record<'input-patches' | 'gradient-patches' | 'separable', number | null> {
  const [h, w] = c.inSize as [number, number];
  const [ho, wo] = c.outSize as [number, number];
  const taps = c.kh * c.kw;
  const stride1 = backPads(c) !== null;
  return {
    'input-patches': c.cin * taps * ho * wo,
    'gradient-patches': stride1 ? c.cout * taps * h * w : null,
    separable: stride1 ? (c.cin * c.kw + c.cout * c.kh) * h * wo : null,
  };
}

function chosenWeightGradient(c: WeightGradientGeometry): Exclude<ConvWeightGradientForm, 'auto'> {
  const forced = convVjpOptions.weightGradient;
  const sizes = patchFloats(c);
  if (forced !== 'auto') return forced === 'taps' || sizes[forced] !== null ? forced : 'input-patches';
  if (c.outSize[0]! * c.outSize[1]! < convVjpOptions.im2colMinOutputPixels) return 'taps';
  // Ties keep the earlier form (fewer nodes): measured within noise of each other.
  let best: 'input-patches' | 'gradient-patches' | 'separable' = 'input-patches';
  for (const form of ['gradient-patches', 'separable'] as const) {
    const n = sizes[form];
    if (n !== null && n < sizes[best]!) best = form;
  }
  return best;
}

/** A grouped Conv with one-hot kernels: output channel g·taps + t of group g is tap `tapOf(t)` of its input channel. */
function oneHotConv(e: GraphEditor, x: string, stem: string, groups: number, kh: number, kw: number, tapOf: (t: number) => number, strides: readonly number[], pads: readonly number[]): string {
  const taps = kh * kw;
  const oneHot = new Float32Array(groups * taps * taps);
  for (let g = 0; g < groups; g++) for (let t = 0; t < taps; t++) oneHot[(g * taps + t) * taps + tapOf(t)] = 1;
  return e.node('Conv', [x, e.initializer(stem, [groups * taps, 1, kh, kw], oneHot)], {
    kernel_shape: attr.ints([kh, kw]),
    strides: attr.ints([...strides]),
    pads: attr.ints([...pads]),
    dilations: attr.ints([1, 1]),
    group: attr.int(groups),
  });
}

/**
 * Copies of v (`shape` [N, C, H, W]) shifted along the height only, [N, C·kh, Ho, W]: channel
 * c·kh + t is v's rows from `tapOf(t)` on, with `top`/`bottom` zero rows around v (the one-hot kh×1
 * Conv of `oneHotConv`, same layout). Whole rows are contiguous, so they are gathered (one copy of W
 * floats per row) after one Pad, where the grouped Conv writes every plane twice (its im2col, then
 * its GEMM).
 */
function heightShifts(e: GraphEditor, v: string, shape: readonly number[], kh: number, tapOf: (t: number) => number, top: number, bottom: number, stem: string): string {
  const [n, channels, h, w] = shape as [number, number, number, number];
  if (convVjpOptions.heightShifts === 'conv') return oneHotConv(e, v, stem, channels, kh, 1, tapOf, [1, 1], [top, 0, bottom, 0]);
  const padded = top > 0 || bottom > 0 ? e.node('Pad', [v, e.ints([0, 0, top, 0, 0, 0, bottom, 0])], { mode: { kind: 'string', value: 'constant' } }) : v;
  const rows = h + top + bottom - kh + 1;
  const index = new BigInt64Array(kh * rows);
  for (let t = 0; t < kh; t++) for (let u = 0; u < rows; u++) index[t * rows + u] = BigInt(u + tapOf(t));
  const gathered = e.node('Gather', [padded, e.initializer(`${stem}_rows`, [kh, rows], index)], { axis: attr.int(2) }); // [N, C, kh, Ho, W]
  return e.node('Reshape', [gathered, e.ints([n, channels * kh, rows, w])]);
}

/** Σ over the batch of a [N, rows, P] · [N, cols, P]ᵀ: [rows, cols]. */
function batchedGram(e: GraphEditor, a: string, b: string, batch: number, rows: number, cols: number, inner: number): string {
  // ONNX Runtime's GEMM copies (packs) the right operand; with the longer one on the left it packs the shorter.
  if (cols > rows) return e.node('Transpose', [batchedGram(e, b, a, batch, cols, rows, inner)], { perm: attr.ints([1, 0]) });
  const bT = e.node('Transpose', [e.node('Reshape', [b, e.ints([batch, cols, inner])])], { perm: attr.ints([0, 2, 1]) });
  const product = e.node('MatMul', [e.node('Reshape', [a, e.ints([batch, rows, inner])]), bT]);
  return sumOverBatch(e, product, batch, [rows, cols]);
}

/**
 * Σ over the leading axis of v [batch, ...rest] → [...rest], as a product with a row of ones: ONNX
 * Runtime's ReduceSum over axis 0 of the weight-gradient stacks ran 2–4× slower than this GEMV.
 */
function sumOverBatch(e: GraphEditor, v: string, batch: number, rest: readonly number[]): string {
  if (batch === 1) return e.node('Reshape', [v, e.ints([...rest])]);
  const inner = rest.reduce((a, b) => a * b, 1);
  const ones = e.initializer('grad/ones', [1, batch], new Float32Array(batch).fill(1));
  const row = e.node('MatMul', [ones, e.node('Reshape', [v, e.ints([batch, inner])])]); // [1, inner]
  return e.node('Reshape', [row, e.ints([...rest])]);
}

/**
 * dW by one im2col of the input: a grouped Conv with one-hot kernels (group = Cin, one output channel
 * per tap, the forward's strides and pads) gives the patches [N, Cin·kh·kw, Ho·Wo] in one pass, then one
 * batched MatMul with dyᵀ and a sum over the batch: [Cin·kh·kw, Cout] → OIHW.
 */
function convWeightGradientIm2col(e: GraphEditor, x: string, dy: string, c: WeightGradientGeometry): string {
  const { kh, kw, cin, cout, batch } = c;
  const [ho, wo] = c.outSize as [number, number];
  const patches = oneHotConv(e, x, 'grad/im2col', cin, kh, kw, (t) => t, c.strides, c.pads); // [N, Cin·taps, Ho, Wo]
  const summed = batchedGram(e, patches, dy, batch, cin * kh * kw, cout, ho * wo); // [Cin·taps, Cout]
  return e.node('Transpose', [e.node('Reshape', [summed, e.ints([cin, kh, kw, cout])])], { perm: attr.ints([3, 0, 1, 2]) });
}

/**
 * dW by one im2col of dy (stride 1): dW[o, i, ky, kx] = Σ x[i, u, v] · dy[o, u + pt − ky, v + pl − kx] over
 * the input grid, so dy's patches are a one-hot Conv with flipped taps and dx's padding, [N, Cout·taps, H·W],
 * times xᵀ. Cheaper than the input's patches when Cout < Cin.
 */
function convWeightGradientOfDyPatches(e: GraphEditor, x: string, dy: string, c: WeightGradientGeometry): string {
  const { kh, kw, cin, cout, batch } = c;
  const [h, w] = c.inSize as [number, number];
  const taps = kh * kw;
  const patches = oneHotConv(e, dy, 'grad/im2col_dy', cout, kh, kw, (t) => taps - 1 - t, [1, 1], backPads(c)!); // [N, Cout·taps, H, W]
  const summed = batchedGram(e, patches, x, batch, cout * taps, cin, h * w); // [Cout·taps, Cin]
  return e.node('Transpose', [e.node('Reshape', [summed, e.ints([cout, kh, kw, cin])])], { perm: attr.ints([0, 3, 1, 2]) });
}

/**
 * dW with the taps split between the operands (stride 1): the input shifted along the width only,
 * [N, Cin·kw, H, Wo] (a one-hot 1×kw Conv with the forward's left/right padding), against dy shifted
 * along the height only, [N, Cout·kh, H, Wo] (a one-hot kh×1 Conv with flipped taps and dx's top/bottom
 * padding): Σ over rows u of the input and columns v of the output of x[i, u, v + kx − pl] · dy[o, u + pt − ky, v]
 * = dW[o, i, ky, kx]. kw + kh patch planes per channel instead of kh·kw.
 */
function convWeightGradientSeparable(e: GraphEditor, x: string, dy: string, c: WeightGradientGeometry): string {
  const { kh, kw, cin, cout, batch } = c;
  const [h] = c.inSize as [number];
  const [, wo] = c.outSize as [number, number];
  const [, pl, , pr] = c.pads as [number, number, number, number];
  const [bt, , bb] = backPads(c)! as [number, number, number, number];
  const alongWidth = oneHotConv(e, x, 'grad/im2col_w', cin, 1, kw, (t) => t, [1, 1], [0, pl, 0, pr]); // [N, Cin·kw, H, Wo]
  const alongHeight = heightShifts(e, dy, [batch, cout, ...c.outSize], kh, (t) => kh - 1 - t, bt, bb, 'grad/im2col_h'); // [N, Cout·kh, H, Wo]
  const summed = batchedGram(e, alongWidth, alongHeight, batch, cin * kw, cout * kh, h * wo); // [Cin·kw, Cout·kh]
  return e.node('Transpose', [e.node('Reshape', [summed, e.ints([cin, kw, cout, kh])])], { perm: attr.ints([2, 0, 3, 1]) });
}

/**
 * dW by the custom ConvWeightGrad kernel (native/ort-kernels): the sums over the batch and the output
 * plane read x and dy where they lie, with no patches written to memory. Stride 1 only.
 */
function convWeightGradientDirect(e: GraphEditor, x: string, dy: string, c: WeightGradientGeometry): string {
  const out = e.fresh('grad/conv_weight_grad');
  e.nodes.push({ opType: 'ConvWeightGrad', name: e.fresh('grad/conv_weight_grad_node'), inputs: [x, dy], outputs: [out], attributes: { kernel_shape: attr.ints([c.kh, c.kw]), pads: attr.ints([...c.pads]) }, domain: CUSTOM_DOMAIN });
  return out;
}

/** Whether the custom kernel takes a weight gradient: stride 1 and an output plane of at least `directMinOutputPixels`. */
function takesDirectWeightGradient(c: WeightGradientGeometry): boolean {
  return c.strides.every((s) => s === 1) && c.outSize[0]! * c.outSize[1]! >= convVjpOptions.directMinOutputPixels;
}

function convWeightGradientOf(e: GraphEditor, x: string, dy: string, c: WeightGradientGeometry, customOperators: boolean): string {
  if (customOperators && takesDirectWeightGradient(c)) return convWeightGradientDirect(e, x, dy, c);
  switch (chosenWeightGradient(c)) {
    case 'taps':
      return convWeightGradient(e, x, dy, c);
    case 'input-patches':
      return convWeightGradientIm2col(e, x, dy, c);
    case 'gradient-patches':
      return convWeightGradientOfDyPatches(e, x, dy, c);
    case 'separable':
      return convWeightGradientSeparable(e, x, dy, c);
  }
}

registerVjp('Conv', (ctx) => {
  const e = ctx.e;
  const node = ctx.node;
  const [x, w, b] = node.inputs as [string, string, string | undefined];
  const sx = shapeOf(ctx, x);
  const sw = shapeOf(ctx, w);
  const sy = shapeOf(ctx, node.outputs[0]!);
  if (sx.length !== 4) throw new Error(`ONNX autodiff: Conv ${node.name}: only 2-D convolutions are supported`);
  if (intAttr(node, 'group', 1) !== 1) throw new Error(`ONNX autodiff: Conv ${node.name}: grouped convolutions are not supported`);
  const auto = node.attributes.auto_pad;
  if (auto !== undefined && !(auto.kind === 'string' && auto.value === 'NOTSET')) throw new Error(`ONNX autodiff: Conv ${node.name}: auto_pad is not supported`);
  const dil = intsAttr(node, 'dilations') ?? [1, 1];
  if (dil.some((d) => d !== 1)) throw new Error(`ONNX autodiff: Conv ${node.name}: dilations are not supported`);
  const strides = intsAttr(node, 'strides') ?? [1, 1];
  const pads = intsAttr(node, 'pads') ?? [0, 0, 0, 0];
  const [kh, kw] = [sw[2]!, sw[3]!];
  const dy = dy0(ctx);
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (ctx.needs[0]) out[0] = convInputGradient(e, dy, w, { kh, kw, strides, pads, inSize: [sx[2]!, sx[3]!], outSize: [sy[2]!, sy[3]!] });
  if (ctx.needs[1]) out[1] = convWeightGradientOf(e, x, dy, { kh, kw, strides, pads, cin: sx[1]!, cout: sw[0]!, batch: sx[0]!, inSize: [sx[2]!, sx[3]!], outSize: [sy[2]!, sy[3]!] }, ctx.customOperators ?? false);
  if (b !== undefined && b !== '' && ctx.needs[2]) out[2] = e.node('ReduceSum', [dy, e.ints([0, 2, 3])], { keepdims: attr.int(0) });
  return out;
});

/** InstanceNormalization with constant scale 1 and shift 0. */
function unitAffine(ctx: VjpContext): boolean {
  const [, scale, bias] = ctx.node.inputs as [string, string, string];
  const s = ctx.info.constants.get(scale);
  const b = ctx.info.constants.get(bias);
  return s !== undefined && b !== undefined && s.every((v) => v === 1) && b.every((v) => v === 0);
}

registerVjp('InstanceNormalization', (ctx) => {
  const e = ctx.e;
  const node = ctx.node;
  const [x, scale] = node.inputs as [string, string, string];
  const sx = shapeOf(ctx, x);
  const eps = floatAttr(node, 'epsilon', 1e-5);
  const axes = sx.map((_, i) => i).slice(2);
  const channelShape = sx.map((d, i) => (i === 1 ? d : 1));
  const dy = dy0(ctx);
  const mean = (v: string) => e.node('ReduceMean', [v], { axes: attr.ints(axes), keepdims: attr.int(1) });
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (unitAffine(ctx) && !ctx.needs[1] && !ctx.needs[2]) {
    // The GroupNorm of ../emit-blocks.ts: scale 1, shift 0, so the output is x̂ itself, and
    // rstd = 1/√(E[x²] − E[x]² + ε) needs one full-size product.
    const m = mean(x);
    const variance = sub(e, mean(mul(e, x, x)), mul(e, m, m));
    const rstd = e.node('Reciprocal', [e.node('Sqrt', [e.node('Add', [e.node('Max', [variance, e.scalar(0)]), e.scalar(eps)])])]);
    const y = ctx.node.outputs[0]!;
    out[0] = mul(e, rstd, sub(e, sub(e, dy, mean(dy)), mul(e, y, mean(mul(e, dy, y)))));
    return out;
  }
  const centred = sub(e, x, mean(x));
  const rstd = e.node('Reciprocal', [e.node('Sqrt', [e.node('Add', [mean(mul(e, centred, centred)), e.scalar(eps)])])]);
  const xhat = mul(e, centred, rstd);
  if (ctx.needs[0]) {
    const dxhat = mul(e, dy, e.node('Reshape', [scale, e.ints(channelShape)]));
    out[0] = mul(e, rstd, sub(e, sub(e, dxhat, mean(dxhat)), mul(e, xhat, mean(mul(e, dxhat, xhat)))));
  }
  const spatialAndBatch = [0, ...axes];
  if (ctx.needs[1]) out[1] = e.node('ReduceSum', [mul(e, dy, xhat), e.ints(spatialAndBatch)], { keepdims: attr.int(0) });
  if (ctx.needs[2]) out[2] = e.node('ReduceSum', [dy, e.ints(spatialAndBatch)], { keepdims: attr.int(0) });
  return out;
});

registerVjp('LayerNormalization', (ctx) => {
  const e = ctx.e;
  const node = ctx.node;
  if (node.outputs.length > 1 && node.outputs.slice(1).some((o) => o !== '')) throw new Error(`ONNX autodiff: LayerNormalization ${node.name}: only the first output is supported`);
  const [x, scale, bias] = node.inputs as [string, string, string | undefined];
  const sx = shapeOf(ctx, x);
  let axis = intAttr(node, 'axis', -1);
  if (axis < 0) axis += sx.length;
  const eps = floatAttr(node, 'epsilon', 1e-5);
  const axes = sx.map((_, i) => i).slice(axis);
  const lead = sx.map((_, i) => i).slice(0, axis);
  const dy = dy0(ctx);
  const mean = (v: string) => e.node('ReduceMean', [v], { axes: attr.ints(axes), keepdims: attr.int(1) });
  const centred = sub(e, x, mean(x));
  const rstd = e.node('Reciprocal', [e.node('Sqrt', [e.node('Add', [mean(mul(e, centred, centred)), e.scalar(eps)])])]);
  const xhat = mul(e, centred, rstd);
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (ctx.needs[0]) {
    const dxhat = mul(e, dy, scale);
    out[0] = mul(e, rstd, sub(e, sub(e, dxhat, mean(dxhat)), mul(e, xhat, mean(mul(e, dxhat, xhat)))));
  }
  const sum = (v: string) => (lead.length > 0 ? e.node('ReduceSum', [v, e.ints(lead)], { keepdims: attr.int(0) }) : v);
  if (ctx.needs[1]) out[1] = sum(mul(e, dy, xhat));
  if (bias !== undefined && bias !== '' && ctx.needs[2]) out[2] = sum(dy);
  return out;
});
