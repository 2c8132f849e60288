/**
 * The parameter-only rearrangements of a training graph, hoisted out of the step. Chains of
 * Reshape, Transpose, Slice, zero Pad and Expand that start at a parameter (the NCHWc weight
 * blocking of ./nchwc.ts, the flipped and transposed weights of the input-gradient convolutions)
 * give the same values at every step of one weights version, and ONNX Runtime runs Transpose and
 * Slice over these small rank-4 to rank-6 tensors at ~5–7 ns an element.
 *
 * Every such value is a fixed selection of its parameter's elements, so `hoistParameterPrelude`
 * computes it once as an index table (the chain run on 1, 2, 3, … with ./host-ops.ts; 0 where a pad
 * puts a zero) and makes the value a graph input. `flattenPrelude` composes the tables with the
 * parameters' bindings, and `fillFlatPrelude` fills the values from the flat weights for each weights
 * version with one indexed copy.
 */
import { DataType, type OnnxModel, type OnnxNode, type OnnxValueInfo } from './onnx-proto.js';
import { intsAttr, tensorValues } from './autodiff/editor.js';
import type { ParamBinding } from './autodiff/trainable.js';
import type { HostTensor } from '../io/tensor-bundle.js';
import { expand, pad, slice, transpose } from './host-ops.js';

export interface PreludeOutput {
  readonly name: string;
  readonly shape: readonly number[];
  /** The parameter (graph input) the value selects from. */
  readonly param: string;
  /** 1 + the parameter element each element copies; 0: the element is 0. */
  readonly index: Int32Array;
}

export interface ParamPrelude {
  /** The nodes taken out of the graph. */
  readonly nodes: readonly OnnxNode[];
  /** Values the step graph now takes as inputs. */
  readonly outputs: readonly PreludeOutput[];
}

const REARRANGING = new Set(['Identity', 'Reshape', 'Transpose', 'Slice', 'Pad', 'Expand']);

/** Larger values stay in the graph (e.g. a parameter broadcast to an activation's shape). */
export const PRELUDE_MAX_ELEMENTS = 1 << 18;

/** Index tables are float32 during the chain: exact up to 2²⁴ elements per parameter. */
const MAX_PARAM_ELEMENTS = 1 << 24;

function rearrange(node: OnnxNode, x: HostTensor, ints: (name: string) => readonly number[] | undefined): HostTensor | undefined {
  const constant = (i: number) => (node.inputs[i] === undefined || node.inputs[i] === '' ? undefined : ints(node.inputs[i]!));
  switch (node.opType) {
    case 'Identity':
      return x;
    case 'Reshape': {
      const target = constant(1);
      if (target === undefined) return undefined;
      const dims = target.map((d, k) => (d === 0 ? x.shape[k]! : d));
      const known = dims.reduce((a, d) => (d === -1 ? a : a * d), 1);
      return { shape: dims.map((d) => (d === -1 ? x.values.length / known : d)), values: x.values };
    }
    case 'Transpose':
      return transpose(x, intsAttr(node, 'perm') ?? x.shape.map((_, k) => x.shape.length - 1 - k));
    case 'Slice': {
      const starts = constant(1);
      const ends = constant(2);
      if (starts === undefined || ends === undefined) return undefined;
      return slice(x, starts, ends, constant(3) ?? starts.map((_, k) => k), constant(4) ?? starts.map(() => 1));
    }
    case 'Pad': {
      const mode = node.attributes.mode;
      const pads = constant(1);
      // Only zero padding keeps "0 = a zero element"; a constant_value input is left to the graph.
      if (pads === undefined || (node.inputs[2] ?? '') !== '' || (node.inputs[3] ?? '') !== '') return undefined;
      if (mode !== undefined && !(mode.kind === 'string' && mode.value === 'constant')) return undefined;
      return pad(x, pads, 0);
    }
    case 'Expand': {
      const shape = constant(1);
      return shape === undefined ? undefined : expand(x, shape);
    }
    default:
      return undefined;
  }
}

/**
 * Splits `model` into the rearrangements of its parameters (`params`: graph inputs fed with
 * weights, with their shapes) and the rest. Returns the model unchanged and a null prelude when
 * nothing qualifies.
 */
export function hoistParameterPrelude(model: OnnxModel, params: ReadonlyMap<string, readonly number[]>): { model: OnnxModel; prelude: ParamPrelude | null } {
  const graph = model.graph;
  const ints = new Map<string, readonly number[]>();
  for (const t of graph.initializers) {
    if (t.dataType === DataType.INT64 || t.dataType === DataType.INT32) ints.set(t.name, tensorValues(t) as number[]);
  }
  const graphOutputs = new Set(graph.outputs.map((o) => o.name));
  // Each hoisted value: its parameter and its index table (1-based, as float32 while it moves).
  const tables = new Map<string, { param: string; table: HostTensor }>();
  for (const [name, shape] of params) {
    const count = shape.reduce((a, b) => a * b, 1);
    if (count < MAX_PARAM_ELEMENTS) tables.set(name, { param: name, table: { shape, values: Float32Array.from({ length: count }, (_, i) => i + 1) } });
  }
  const hoisted: OnnxNode[] = [];
  const rest: OnnxNode[] = [];
  for (const node of graph.nodes) {
    const source = tables.get(node.inputs[0] ?? '');
    const eligible =
      source !== undefined &&
      (node.domain ?? '') === '' &&
      REARRANGING.has(node.opType) &&
      node.outputs.length === 1 &&
      !graphOutputs.has(node.outputs[0]!) &&
      node.inputs.slice(1).every((i) => i === '' || ints.has(i));
    const table = eligible ? rearrange(node, source.table, (name) => ints.get(name)) : undefined;
    if (table !== undefined && table.values.length <= PRELUDE_MAX_ELEMENTS) {
      tables.set(node.outputs[0]!, { param: source!.param, table });
      hoisted.push(node);
    } else {
      rest.push(node);
    }
  }
  if (hoisted.length === 0) return { model, prelude: null };

  const usedByRest = new Set<string>(graphOutputs);
  for (const n of rest) for (const i of n.inputs) usedByRest.add(i);
  const outputs: PreludeOutput[] = hoisted
    .map((n) => n.outputs[0]!)
    .filter((v) => usedByRest.has(v))
    .map((name) => {
      const { param, table } = tables.get(name)!;
      return { name, shape: [...table.shape], param, index: Int32Array.from(table.values) };
    });
  const inputs: OnnxValueInfo[] = [
    ...graph.inputs.filter((i) => !params.has(i.name) || usedByRest.has(i.name)),
    ...outputs.map((o) => ({ name: o.name, dataType: DataType.FLOAT, shape: o.shape })),
  ];
  const initializers = graph.initializers.filter((t) => usedByRest.has(t.name));
  return { model: { ...model, graph: { ...graph, nodes: rest, inputs, initializers } }, prelude: { nodes: hoisted, outputs } };
}

/** A prelude value read straight from the flat weights: element i is weights[flat[i]], or fill[i] where flat[i] < 0. */
export interface FlatPreludeOutput {
  readonly name: string;
  readonly shape: readonly number[];
  readonly flat: Int32Array;
  /** Values where flat < 0 (pads and the bindings' constants); null: all zero. */
  readonly fill: Float32Array | null;
}

/**
 * The prelude's index tables composed with the bindings of its parameters (graph input element →
 * flat weight, ./autodiff/trainable.ts), so that each weights version fills the values from the flat
 * weights in one indexed copy, without first copying the parameters they select from.
 */
export function flattenPrelude(prelude: ParamPrelude, bindings: readonly ParamBinding[]): FlatPreludeOutput[] {
  const byInput = new Map(bindings.map((b) => [b.input, b]));
  return prelude.outputs.map((o) => {
    const b = byInput.get(o.param);
    if (b === undefined) throw new Error(`param prelude: ${o.param} is not a parameter binding`);
    const flat = new Int32Array(o.index.length).fill(-1);
    let fill: Float32Array | null = null;
    for (let i = 0; i < flat.length; i++) {
      const at = o.index[i]!;
      if (at === 0) continue;
      const k = b.index[at - 1]!;
      if (k >= 0) flat[i] = k;
      else if (b.constants !== null && b.constants[at - 1] !== 0) (fill ??= new Float32Array(flat.length))[i] = b.constants[at - 1]!;
    }
    return { name: o.name, shape: o.shape, flat, fill };
  });
}

/** The values of flattened prelude outputs for one weights vector. */
export function fillFlatPrelude(outputs: readonly FlatPreludeOutput[], weights: Float32Array): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const o of outputs) {
    const values = o.fill === null ? new Float32Array(o.flat.length) : o.fill.slice();
    const flat = o.flat;
    for (let i = 0; i < flat.length; i++) {
      const k = flat[i]!;
      if (k >= 0) values[i] = weights[k]!;
    }
    out.set(o.name, values);
  }
  return out;
}
