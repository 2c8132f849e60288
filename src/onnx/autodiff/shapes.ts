/**
 * Static shapes of every value of a model, given concrete shapes for its inputs (training graphs
 * run at a fixed batch size), and the values of small integer tensors (shape vectors, axes, pads)
 * where they are constant. The vector–Jacobian products need both: a broadcast gradient is summed
 * back to its input's shape, a Slice is undone by a Pad of known extent.
 */
import { DataType, type OnnxModel, type OnnxNode } from '../onnx-proto.js';
import { intAttr, intsAttr, tensorValues } from './editor.js';

export type Shape = readonly number[];

export interface ShapeInfo {
  readonly shapes: Map<string, Shape>;
  /** Values of constant integer tensors (int32/int64 initializers, Shape outputs and what is computed from them). */
  readonly ints: Map<string, number[]>;
  /** Element type per value: 'float', 'int' or 'bool'. */
  readonly kinds: Map<string, 'float' | 'int' | 'bool'>;
  /** Values of small float initializers (≤ 8 elements: scalars, Resize scales). */
  readonly floats: Map<string, number[]>;
  /** Values of every float initializer (constants of the graph; parameters fed as inputs are not here). */
  readonly constants: Map<string, Float32Array>;
}

export function size(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Numpy-style broadcast of two shapes. */
export function broadcastShapes(a: Shape, b: Shape, where: string): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`ONNX autodiff: ${where}: shapes [${a.join(',')}] and [${b.join(',')}] do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

function kindOf(dataType: number): 'float' | 'int' | 'bool' {
  if (dataType === DataType.FLOAT || dataType === 11) return 'float';
  if (dataType === DataType.BOOL) return 'bool';
  return 'int';
}

/** ONNX Slice semantics for one axis: clamped start, end and step → indices. */
export function sliceIndices(dim: number, start: number, end: number, step: number): number[] {
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  const out: number[] = [];
  if (step > 0) {
    s = clamp(s, 0, dim);
    e = clamp(e, 0, dim);
    for (let i = s; i < e; i += step) out.push(i);
  } else {
    s = clamp(s, 0, dim - 1);
    e = clamp(e, -1, dim - 1);
    for (let i = s; i > e; i += step) out.push(i);
  }
  return out;
}

export interface SliceSpec {
  axes: number[];
  starts: number[];
  ends: number[];
  steps: number[];
}

export function sliceSpec(node: OnnxNode, info: ShapeInfo): SliceSpec {
  const get = (i: number) => {
    const name = node.inputs[i];
    if (name === undefined || name === '') return undefined;
    const v = info.ints.get(name);
    if (v === undefined) throw new Error(`ONNX autodiff: Slice ${node.name}: input ${i} is not constant`);
    return v;
  };
  const rank = info.shapes.get(node.inputs[0]!)!.length;
  const starts = get(1)!;
  const ends = get(2)!;
  const axes = (get(3) ?? starts.map((_, i) => i)).map((a) => normAxis(a, rank));
  const steps = get(4) ?? starts.map(() => 1);
  return { axes, starts, ends, steps };
}

function reduceAxes(node: OnnxNode, info: ShapeInfo, rank: number): number[] {
  const name = node.inputs[1];
  let axes: number[] | undefined;
  if (name !== undefined && name !== '') axes = info.ints.get(name);
  else axes = intsAttr(node, 'axes') as number[] | undefined;
  if (axes === undefined || axes.length === 0) return Array.from({ length: rank }, (_, i) => i);
  return axes.map((a) => normAxis(a, rank));
}

export function reductionAxes(node: OnnxNode, info: ShapeInfo): number[] {
  return reduceAxes(node, info, info.shapes.get(node.inputs[0]!)!.length);
}

function convOutput(size: number, kernel: number, stride: number, begin: number, end: number, dilation: number): number {
  return Math.floor((size + begin + end - dilation * (kernel - 1) - 1) / stride) + 1;
}

const UNARY_SAME = new Set(['Identity', 'Exp', 'Neg', 'Sigmoid', 'Tanh', 'Abs', 'Relu', 'Sqrt', 'Log', 'Sign', 'Reciprocal', 'Softmax', 'LogSoftmax', 'Elu', 'Erf', 'Softplus', 'Dropout', 'Not']);
const ELEMENTWISE = new Set(['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Pow', 'Sum', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Where']);
const COMPARISONS = new Set(['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Not']);

/** Shapes of every value; `inputShapes` fixes the graph inputs' symbolic dimensions. */
export function inferShapes(model: OnnxModel, inputShapes: Readonly<Record<string, Shape>>): ShapeInfo {
  const shapes = new Map<string, Shape>();
  const ints = new Map<string, number[]>();
  const kinds = new Map<string, 'float' | 'int' | 'bool'>();
  const floats = new Map<string, number[]>();
  const constants = new Map<string, Float32Array>();
  const info: ShapeInfo = { shapes, ints, kinds, floats, constants };
  for (const t of model.graph.initializers) {
    shapes.set(t.name, t.dims);
    kinds.set(t.name, kindOf(t.dataType));
    if (t.dataType !== DataType.FLOAT) ints.set(t.name, tensorValues(t) as number[]);
    else {
      constants.set(t.name, tensorValues(t) as Float32Array);
      if (t.raw.byteLength <= 32) floats.set(t.name, Array.from(tensorValues(t) as Float32Array));
    }
  }
  for (const i of model.graph.inputs) {
    const given = inputShapes[i.name];
    const shape = given ?? i.shape.map((d) => {
      if (typeof d !== 'number') throw new Error(`ONNX autodiff: input ${i.name} has symbolic dimension ${d}: give its shape`);
      return d;
    });
    shapes.set(i.name, shape);
    kinds.set(i.name, kindOf(i.dataType));
  }
  for (const node of model.graph.nodes) inferNode(node, info);
  return info;
}

function inferNode(node: OnnxNode, info: ShapeInfo): void {
  const { shapes, ints, kinds } = info;
  const inShape = (i: number): Shape => {
    const s = shapes.get(node.inputs[i]!);
    if (s === undefined) throw new Error(`ONNX autodiff: ${node.opType} ${node.name}: no shape for input ${node.inputs[i]}`);
    return s;
  };
  const constInts = (i: number): number[] => {
    const v = ints.get(node.inputs[i]!);
    if (v === undefined) throw new Error(`ONNX autodiff: ${node.opType} ${node.name}: input ${node.inputs[i]} is not a constant`);
    return v;
  };
  const set = (i: number, shape: Shape, kind: 'float' | 'int' | 'bool' = kinds.get(node.inputs[0]!) ?? 'float') => {
    shapes.set(node.outputs[i]!, shape);
    kinds.set(node.outputs[i]!, kind);
  };
  const x = node.inputs.length > 0 && node.inputs[0] !== '' ? node.inputs[0]! : undefined;
  const op = node.opType;
  if (UNARY_SAME.has(op)) {
    set(0, inShape(0), op === 'Not' ? 'bool' : undefined);
    if (op === 'Identity' && ints.has(x!)) ints.set(node.outputs[0]!, ints.get(x!)!);
    return;
  }
  if (ELEMENTWISE.has(op)) {
    let s: Shape = inShape(0);
    for (let i = 1; i < node.inputs.length; i++) s = broadcastShapes(s, inShape(i), `${op} ${node.name}`);
    const kind = COMPARISONS.has(op) ? 'bool' : op === 'Where' ? kinds.get(node.inputs[1]!) : undefined;
    set(0, s, kind);
    return;
  }
  switch (op) {
    case 'Cast': {
      const to = intAttr(node, 'to', DataType.FLOAT);
      set(0, inShape(0), kindOf(to));
      if (ints.has(x!)) ints.set(node.outputs[0]!, ints.get(x!)!);
      return;
    }
    case 'Shape': {
      set(0, [inShape(0).length], 'int');
      ints.set(node.outputs[0]!, [...inShape(0)]);
      return;
    }
    case 'Reshape': {
      const target = constInts(1);
      const src = inShape(0);
      const out = target.map((d, i) => (d === 0 ? src[i]! : d));
      const known = out.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      set(
        0,
        out.map((d) => (d === -1 ? size(src) / known : d)),
      );
      if (ints.has(x!)) ints.set(node.outputs[0]!, ints.get(x!)!);
      return;
    }
    case 'Transpose': {
      const src = inShape(0);
      const perm = intsAttr(node, 'perm') ?? src.map((_, i) => src.length - 1 - i);
      set(0, perm.map((p) => src[p]!));
      return;
    }
    case 'Concat': {
      const first = inShape(0);
      const axis = normAxis(intAttr(node, 'axis', 0), first.length);
      const out = [...first];
      out[axis] = node.inputs.reduce((a, _, i) => a + inShape(i)[axis]!, 0);
      set(0, out);
      if (node.inputs.every((n) => ints.has(n))) ints.set(node.outputs[0]!, node.inputs.flatMap((n) => ints.get(n)!));
      return;
    }
    case 'Split': {
      const src = inShape(0);
      const axis = normAxis(intAttr(node, 'axis', 0), src.length);
      const parts = node.inputs[1] !== undefined && node.inputs[1] !== '' ? constInts(1) : node.outputs.map(() => src[axis]! / node.outputs.length);
      parts.forEach((p, i) => {
        const s = [...src];
        s[axis] = p;
        set(i, s);
      });
      return;
    }
    case 'Slice': {
      const src = inShape(0);
      const spec = sliceSpec(node, info);
      const out = [...src];
      spec.axes.forEach((a, i) => (out[a] = sliceIndices(src[a]!, spec.starts[i]!, spec.ends[i]!, spec.steps[i]!).length));
      set(0, out);
      if (ints.has(x!) && src.length === 1) {
        const idx = sliceIndices(src[0]!, spec.starts[0]!, spec.ends[0]!, spec.steps[0]!);
        ints.set(node.outputs[0]!, idx.map((i) => ints.get(x!)![i]!));
      }
      return;
    }
    case 'Pad': {
      const src = inShape(0);
      const pads = constInts(1);
      set(
        0,
        src.map((d, i) => d + pads[i]! + pads[i + src.length]!),
      );
      return;
    }
    case 'Expand': {
      set(0, broadcastShapes(inShape(0), constInts(1), `Expand ${node.name}`));
      return;
    }
    case 'MatMul': {
      const a = inShape(0);
      const b = inShape(1);
      if (a.length < 2 || b.length < 2) throw new Error(`ONNX autodiff: MatMul ${node.name}: rank-1 operands are not supported`);
      const batch = broadcastShapes(a.slice(0, -2), b.slice(0, -2), `MatMul ${node.name}`);
      set(0, [...batch, a[a.length - 2]!, b[b.length - 1]!]);
      return;
    }
    case 'ReduceSum':
    case 'ReduceLogSumExp':
    case 'ReduceMean':
    case 'ReduceMax': {
      const src = inShape(0);
      const axes = reduceAxes(node, info, src.length);
      const keep = intAttr(node, 'keepdims', 1) === 1;
      const out: number[] = [];
      src.forEach((d, i) => {
        if (!axes.includes(i)) out.push(d);
        else if (keep) out.push(1);
      });
      set(0, out);
      return;
    }
    case 'ArgMin':
    case 'ArgMax': {
      const src = inShape(0);
      const axis = normAxis(intAttr(node, 'axis', 0), src.length);
      const keep = intAttr(node, 'keepdims', 1) === 1;
      const out: number[] = [];
      src.forEach((d, i) => {
        if (i !== axis) out.push(d);
        else if (keep) out.push(1);
      });
      set(0, out, 'int');
      return;
    }
    case 'Gather': {
      const data = inShape(0);
      const idx = inShape(1);
      const axis = normAxis(intAttr(node, 'axis', 0), data.length);
      set(0, [...data.slice(0, axis), ...idx, ...data.slice(axis + 1)]);
      if (ints.has(x!) && ints.has(node.inputs[1]!) && data.length === 1) {
        const d = ints.get(x!)!;
        ints.set(node.outputs[0]!, ints.get(node.inputs[1]!)!.map((i) => d[i < 0 ? i + d.length : i]!));
      }
      return;
    }
    case 'OneHot': {
      const depth = constInts(1)[0]!;
      const idx = inShape(0);
      const axis = normAxis(intAttr(node, 'axis', -1), idx.length + 1);
      const out = [...idx];
      out.splice(axis, 0, depth);
      set(0, out, 'float');
      return;
    }
    case 'Conv': {
      const src = inShape(0);
      const w = inShape(1);
      const spatial = src.length - 2;
      const strides = intsAttr(node, 'strides') ?? Array(spatial).fill(1);
      const dil = intsAttr(node, 'dilations') ?? Array(spatial).fill(1);
      const pads = intsAttr(node, 'pads') ?? Array(2 * spatial).fill(0);
      const kernel = w.slice(2);
      set(0, [src[0]!, w[0]!, ...kernel.map((k, i) => convOutput(src[i + 2]!, k, strides[i]!, pads[i]!, pads[i + spatial]!, dil[i]!))]);
      return;
    }
    case 'PlaneSums': {
      // com.moodlsr: dy, x [N, C, H, W] → Σ dy, Σ dy·x over each plane, [N, C, 1, 1] each.
      const [n, c] = inShape(0) as [number, number];
      set(0, [n, c, 1, 1], 'float');
      set(1, [n, c, 1, 1], 'float');
      return;
    }
    case 'PlaneCombine':
      // com.moodlsr: a·dy − b·x + c per plane.
      set(0, inShape(0), 'float');
      return;
    case 'EluExp': {
      // com.moodlsr (native/ort-kernels): x → [elu(x), exp(min(x, 0))].
      set(0, inShape(0), 'float');
      set(1, inShape(0), 'float');
      return;
    }
    case 'ConvWeightGrad': {
      // com.moodlsr (native/ort-kernels): x [N, Cin, H, W], dy [N, Cout, Ho, Wo] → dW [Cout, Cin, kh, kw].
      const kernel = intsAttr(node, 'kernel_shape')!;
      set(0, [inShape(1)[1]!, inShape(0)[1]!, ...kernel], 'float');
      return;
    }
    case 'ConvTranspose': {
      const src = inShape(0);
      const w = inShape(1);
      const spatial = src.length - 2;
      const group = intAttr(node, 'group', 1);
      const given = intsAttr(node, 'output_shape');
      const strides = intsAttr(node, 'strides') ?? Array(spatial).fill(1);
      const pads = intsAttr(node, 'pads') ?? Array(2 * spatial).fill(0);
      const outPad = intsAttr(node, 'output_padding') ?? Array(spatial).fill(0);
      const kernel = w.slice(2);
      const out = given ?? kernel.map((k, i) => strides[i]! * (src[i + 2]! - 1) + outPad[i]! + k - pads[i]! - pads[i + spatial]!);
      set(0, [src[0]!, w[1]! * group, ...out]);
      return;
    }
    case 'InstanceNormalization':
    case 'BatchNormalization':
      set(0, inShape(0));
      return;
    case 'LayerNormalization': {
      const src = inShape(0);
      let axis = intAttr(node, 'axis', -1);
      if (axis < 0) axis += src.length;
      set(0, src);
      // Mean and 1/σ: the normalised axes reduced to 1.
      for (const i of [1, 2]) if ((node.outputs[i] ?? '') !== '') set(i, src.map((d, k) => (k < axis ? d : 1)));
      return;
    }
    case 'Resize': {
      const src = inShape(0);
      const scales = node.inputs[2];
      if (scales === undefined || scales === '') throw new Error(`ONNX autodiff: Resize ${node.name}: only scales are supported`);
      const factors = info.floats.get(scales);
      if (factors === undefined) throw new Error(`ONNX autodiff: Resize ${node.name}: scales are not a constant`);
      set(0, src.map((d, i) => Math.floor(d * factors[i]!)));
      return;
    }
    case 'DepthToSpace': {
      const [n, c, h, w] = inShape(0) as [number, number, number, number];
      const b = intAttr(node, 'blocksize', 1);
      set(0, [n, c / (b * b), h * b, w * b]);
      return;
    }
    case 'SpaceToDepth': {
      const [n, c, h, w] = inShape(0) as [number, number, number, number];
      const b = intAttr(node, 'blocksize', 1);
      set(0, [n, c * b * b, h / b, w / b]);
      return;
    }
    default:
      throw new Error(`ONNX autodiff: no shape rule for operator ${op} (node ${node.name})`);
  }
}

