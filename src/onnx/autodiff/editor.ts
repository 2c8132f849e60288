/**
 * A mutable copy of an ONNX model (as built by ../graph.ts) that nodes, initializers, inputs and
 * outputs can be appended to, with fresh value names that collide with nothing in the model. The
 * reverse-mode pass (./backward.ts) writes its gradient nodes through one of these.
 */
import {
  DataType,
  type AttributeValue,
  type DataTypeCode,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  type OnnxValueInfo,
} from '../onnx-proto.js';

export type Attrs = Record<string, AttributeValue>;

/** Attribute shorthands. */
export const attr = {
  int: (value: number): AttributeValue => ({ kind: 'int', value }),
  ints: (value: readonly number[]): AttributeValue => ({ kind: 'ints', value }),
  float: (value: number): AttributeValue => ({ kind: 'float', value }),
};

export function intAttr(node: OnnxNode, name: string, fallback: number): number {
  const a = node.attributes[name];
  if (a === undefined) return fallback;
  if (a.kind !== 'int') throw new Error(`ONNX autodiff: ${node.opType} ${node.name}: attribute ${name} is not an int`);
  return a.value;
}

export function intsAttr(node: OnnxNode, name: string): readonly number[] | undefined {
  const a = node.attributes[name];
  if (a === undefined) return undefined;
  if (a.kind !== 'ints') throw new Error(`ONNX autodiff: ${node.opType} ${node.name}: attribute ${name} is not a list of ints`);
  return a.value;
}

export function floatAttr(node: OnnxNode, name: string, fallback: number): number {
  const a = node.attributes[name];
  if (a === undefined) return fallback;
  if (a.kind !== 'float') throw new Error(`ONNX autodiff: ${node.opType} ${node.name}: attribute ${name} is not a float`);
  return a.value;
}

function rawOf(values: Float32Array | BigInt64Array | Int32Array): Uint8Array {
  return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

/** Host values of an initializer (float32, int32 or int64 as numbers). */
export function tensorValues(t: OnnxTensor): Float32Array | number[] {
  const bytes = t.raw.slice();
  if (t.dataType === DataType.FLOAT) return new Float32Array(bytes.buffer, 0, bytes.byteLength / 4);
  if (t.dataType === DataType.INT64) return Array.from(new BigInt64Array(bytes.buffer, 0, bytes.byteLength / 8), Number);
  if (t.dataType === DataType.INT32) return Array.from(new Int32Array(bytes.buffer, 0, bytes.byteLength / 4));
  throw new Error(`ONNX autodiff: initializer ${t.name} has unsupported data type ${t.dataType}`);
}

export class GraphEditor {
  readonly nodes: OnnxNode[];
  readonly initializers: OnnxTensor[];
  readonly inputs: OnnxValueInfo[];
  readonly outputs: OnnxValueInfo[];
  /**
   * Gradients that are a constant Pad of a smaller value (the VJP of Slice), by the Pad's output:
   * ./backward.ts joins several such parts of one value with a Concat instead of summing full-size pads.
   */
  readonly paddedGradients = new Map<string, { inner: string; pads: readonly number[] }>();
  private readonly used = new Set<string>();
  private readonly constants = new Map<string, string>();

  constructor(private readonly model: OnnxModel) {
    const g = model.graph;
    this.nodes = [...g.nodes];
    this.initializers = [...g.initializers];
    this.inputs = [...g.inputs];
    this.outputs = [...g.outputs];
    for (const n of this.nodes) {
      this.used.add(n.name);
      for (const o of n.outputs) this.used.add(o);
    }
    for (const t of this.initializers) this.used.add(t.name);
    for (const i of this.inputs) this.used.add(i.name);
  }

  fresh(stem: string): string {
    let name = stem;
    for (let i = 1; this.used.has(name); i++) name = `${stem}_${i}`;
    this.used.add(name);
    return name;
  }

  node(opType: string, inputs: readonly string[], attrs: Attrs = {}, stem = `grad/${opType.toLowerCase()}`): string {
    return this.nodeMulti(opType, inputs, 1, attrs, stem)[0]!;
  }

  nodeMulti(opType: string, inputs: readonly string[], count: number, attrs: Attrs = {}, stem = `grad/${opType.toLowerCase()}`): string[] {
    const outputs = Array.from({ length: count }, (_, i) => this.fresh(count === 1 ? stem : `${stem}_out${i}`));
    this.nodes.push({ opType, name: this.fresh(`${stem}_node`), inputs, outputs, attributes: attrs });
    return outputs;
  }

  initializer(stem: string, dims: readonly number[], values: Float32Array | BigInt64Array | Int32Array): string {
    const dataType: DataTypeCode = values instanceof Float32Array ? DataType.FLOAT : values instanceof Int32Array ? DataType.INT32 : DataType.INT64;
    const name = this.fresh(stem);
    this.initializers.push({ name, dataType, dims: [...dims], raw: rawOf(values) });
    return name;
  }

  /** A shared int64 vector constant. */
  ints(values: readonly number[]): string {
    const key = `i64:${values.join(',')}`;
    let v = this.constants.get(key);
    if (v === undefined) {
      v = this.initializer('grad/const_i64', [values.length], BigInt64Array.from(values.map((x) => BigInt(x))));
      this.constants.set(key, v);
    }
    return v;
  }

  /** A shared float32 scalar constant. */
  scalar(value: number): string {
    const key = `f32:${value}`;
    let v = this.constants.get(key);
    if (v === undefined) {
      v = this.initializer('grad/const_f32', [], Float32Array.of(value));
      this.constants.set(key, v);
    }
    return v;
  }

  /** A float32 tensor of zeros of a static shape (broadcast from a scalar, no big initializer). */
  zeros(shape: readonly number[]): string {
    return this.node('Expand', [this.scalar(0), this.ints(shape)], {}, 'grad/zeros');
  }

  addOutput(info: OnnxValueInfo): void {
    this.outputs.push(info);
  }

  /** The model, without nodes none of whose outputs is used (e.g. pads a joined gradient replaced). */
  build(): OnnxModel {
    const needed = new Set<string>(this.outputs.map((o) => o.name));
    const kept: OnnxNode[] = [];
    for (let k = this.nodes.length - 1; k >= 0; k--) {
      const n = this.nodes[k]!;
      if (!n.outputs.some((o) => needed.has(o))) continue;
      kept.push(n);
      for (const i of n.inputs) needed.add(i);
    }
    kept.reverse();
    return {
      ...this.model,
      graph: { name: this.model.graph.name, nodes: kept, initializers: this.initializers.filter((t) => needed.has(t.name)), inputs: this.inputs, outputs: this.outputs },
    };
  }
}
