/**
 * ONNX model messages (onnx/onnx.proto, IR version 8) as plain objects, and their protobuf
 * encoding with ./protobuf.ts. Only the fields the graph emitters use: tensors carry raw
 * little-endian data, shapes may name symbolic dimensions.
 */
import { ProtoWriter } from './protobuf.js';

/** TensorProto.DataType values. */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9 } as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

const ATTRIBUTE_TYPE = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export interface OnnxTensor {
  readonly name: string;
  readonly dataType: DataTypeCode;
  readonly dims: readonly number[];
  /** Little-endian element bytes. */
  readonly raw: Uint8Array;
}

export type AttributeValue =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'tensor'; readonly value: OnnxTensor };

export interface OnnxNode {
  readonly opType: string;
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  /** Operator set domain; absent: the default ONNX domain. */
  readonly domain?: string;
}

/** A dimension: a fixed size or a symbolic name such as 'batch'. */
export type Dim = number | string;

export interface OnnxValueInfo {
  readonly name: string;
  readonly dataType: DataTypeCode;
  readonly shape: readonly Dim[];
}

export interface OnnxGraph {
  readonly name: string;
  readonly nodes: readonly OnnxNode[];
  readonly initializers: readonly OnnxTensor[];
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
}

export interface OnnxModel {
  readonly graph: OnnxGraph;
  readonly opset: number;
  /** Operator sets of other domains the nodes use (e.g. ONNX Runtime's com.microsoft.nchwc). */
  readonly extraOpsets?: readonly { readonly domain: string; readonly version: number }[];
  readonly producerName: string;
  readonly producerVersion: string;
  readonly docString?: string;
}

export const IR_VERSION = 8;

function writeTensor(w: ProtoWriter, t: OnnxTensor): void {
  if (t.dims.length > 0) w.packedInts(1, t.dims);
  w.int(2, t.dataType);
  w.string(8, t.name);
  w.bytes(9, t.raw);
}

function writeAttribute(w: ProtoWriter, name: string, a: AttributeValue): void {
  w.string(1, name);
  switch (a.kind) {
    case 'float':
      w.float(2, a.value);
      w.int(20, ATTRIBUTE_TYPE.FLOAT);
      break;
    case 'int':
      w.int(3, a.value);
      w.int(20, ATTRIBUTE_TYPE.INT);
      break;
    case 'string':
      w.string(4, a.value);
      w.int(20, ATTRIBUTE_TYPE.STRING);
      break;
    case 'tensor':
      w.message(5, (m) => writeTensor(m, a.value));
      w.int(20, ATTRIBUTE_TYPE.TENSOR);
      break;
    case 'floats':
      w.packedFloats(7, a.value);
      w.int(20, ATTRIBUTE_TYPE.FLOATS);
      break;
    case 'ints':
      w.packedInts(8, a.value);
      w.int(20, ATTRIBUTE_TYPE.INTS);
      break;
  }
}

function writeNode(w: ProtoWriter, n: OnnxNode): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.opType);
  for (const [name, a] of Object.entries(n.attributes)) w.message(5, (m) => writeAttribute(m, name, a));
  if (n.domain !== undefined && n.domain !== '') w.string(7, n.domain);
}

function writeValueInfo(w: ProtoWriter, v: OnnxValueInfo): void {
  w.string(1, v.name);
  // TypeProto.tensor_type { elem_type, shape { dim { dim_value | dim_param } } }
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, v.dataType);
      tensor.message(2, (shape) => {
        for (const d of v.shape) shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      });
    }),
  );
}

function writeGraph(w: ProtoWriter, g: OnnxGraph): void {
  for (const n of g.nodes) w.message(1, (m) => writeNode(m, n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, (m) => writeTensor(m, t));
  for (const i of g.inputs) w.message(11, (m) => writeValueInfo(m, i));
  for (const o of g.outputs) w.message(12, (m) => writeValueInfo(m, o));
}

/** Serialises a ModelProto. */
export function encodeModel(model: OnnxModel): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, IR_VERSION);
  w.string(2, model.producerName);
  w.string(3, model.producerVersion);
  if (model.docString !== undefined) w.string(6, model.docString);
  w.message(7, (m) => writeGraph(m, model.graph));
  w.message(8, (m) => {
    m.string(1, '');
    m.int(2, model.opset);
  });
  for (const o of model.extraOpsets ?? []) {
    w.message(8, (m) => {
      m.string(1, o.domain);
      m.int(2, o.version);
    });
  }
  return w.finish();
}
