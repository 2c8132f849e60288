/**
 * Turns a model emitter (which bakes parameters into initializers, transposed, split or tabled on
 * the host: ../emit-blocks.ts) into a graph whose parameters are fed per run, without touching the
 * emitter: it is run twice on tagged parameters, element k of the flat layout holding +(k+1) in
 * one run and −(k+1) in the other. An initializer element that flips sign is parameter element k;
 * one that does not is a constant (a zero padding row, a unit scale). Every initializer that holds
 * parameter elements becomes a graph input with an index map, so the host fills it from the flat
 * weights before a run and scatters its gradient back into the flat layout after.
 */
import { DataType, type OnnxModel } from '../onnx-proto.js';
import type { HostTensor } from '../../io/tensor-bundle.js';
import { tensorValues } from './editor.js';
import { initializersToInputs } from './backward.js';

export interface FlatLayout {
  readonly entries: readonly { name: string; shape: readonly number[]; offset: number; size: number }[];
  readonly total: number;
}

/** One parameter-holding graph input: element j is weights[index[j]], or constants[j] where index[j] < 0. */
export interface ParamBinding {
  readonly input: string;
  readonly dims: readonly number[];
  readonly index: Int32Array;
  readonly constants: Float32Array | null;
}

export interface TrainableModel {
  readonly model: OnnxModel;
  readonly bindings: readonly ParamBinding[];
  /** Parameters the graph does not use (their gradient is zero). */
  readonly unused?: readonly string[];
}

function tagged(layout: FlatLayout, sign: 1 | -1): Map<string, HostTensor> {
  const params = new Map<string, HostTensor>();
  for (const e of layout.entries) {
    params.set(e.name, { shape: [...e.shape], values: Float32Array.from({ length: e.size }, (_, i) => sign * (e.offset + i + 1)) });
  }
  return params;
}

/** Runs `emit` on tagged parameters and returns its model with every parameter-derived initializer as an input. */
export function traceParams(layout: FlatLayout, emit: (params: ReadonlyMap<string, HostTensor>) => OnnxModel): TrainableModel {
  if (layout.total >= 2 ** 24) throw new Error(`ONNX training: ${layout.total} parameters are too many to trace exactly in float32`);
  const plus = emit(tagged(layout, 1));
  const minus = emit(tagged(layout, -1));
  const others = new Map(minus.graph.initializers.map((t) => [t.name, t]));
  const bindings: ParamBinding[] = [];
  const covered = new Uint8Array(layout.total);
  for (const t of plus.graph.initializers) {
    if (t.dataType !== DataType.FLOAT) continue;
    const other = others.get(t.name);
    if (other === undefined) throw new Error(`ONNX training: the emitter is not deterministic (initializer ${t.name})`);
    const a = tensorValues(t) as Float32Array;
    const b = tensorValues(other) as Float32Array;
    const index = new Int32Array(a.length).fill(-1);
    let params = 0;
    for (let j = 0; j < a.length; j++) {
      if (a[j] === b[j]) continue;
      const k = a[j]! - 1;
      if (a[j] !== -b[j]! || !Number.isInteger(k) || k < 0 || k >= layout.total) {
        throw new Error(`ONNX training: initializer ${t.name} computes with parameter values on the host; emit that computation in the graph`);
      }
      index[j] = k;
      covered[k] = 1;
      params++;
    }
    if (params === 0) continue;
    const constants = params === a.length ? null : Float32Array.from(a, (v, j) => (index[j]! < 0 ? v : 0));
    bindings.push({ input: t.name, dims: [...t.dims], index, constants });
  }
  const missing = layout.entries.filter((e) => !covered.subarray(e.offset, e.offset + e.size).every((c) => c === 1));
  const model = initializersToInputs(plus, bindings.map((b) => b.input));
  return { model, bindings, ...(missing.length > 0 ? { unused: missing.map((e) => e.name) } : {}) };
}

/** The input's values for the flat `weights`. */
export function bindingValues(b: ParamBinding, weights: Float32Array): Float32Array {
  const out = b.constants === null ? new Float32Array(b.index.length) : b.constants.slice();
  const index = b.index;
  for (let j = 0; j < index.length; j++) {
    const k = index[j]!;
    if (k >= 0) out[j] = weights[k]!;
  }
  return out;
}

/** Adds the gradient of the binding's input into the flat gradient (several inputs may share a parameter). */
export function scatterGradient(b: ParamBinding, grad: Float32Array, flat: Float32Array): void {
  const index = b.index;
  for (let j = 0; j < index.length; j++) {
    const k = index[j]!;
    if (k >= 0) flat[k] += grad[j]!;
  }
}
