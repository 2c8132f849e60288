/**
 * Gated products o = a · σ(b) (the GLU of the gated blocks, ../emit-blocks.ts) differentiated as one
 * unit. Op by op, the Mul gives da = dy·s and ds = dy·a, then the Sigmoid ds·s·(1 − s): five
 * full-size passes. Since a·(1 − s) = a − o, db = da·(a − o): three passes (da, a − o, db), and no ds.
 */
import type { OnnxNode } from '../onnx-proto.js';
import type { GraphEditor } from './editor.js';
import type { ShapeInfo } from './shapes.js';

export interface GatedProduct {
  readonly mul: OnnxNode;
  readonly a: string;
  readonly b: string;
  /** σ(b), consumed by `mul` only. */
  readonly s: string;
}

/** Every Mul of a value and a Sigmoid whose output has no other consumer, all three of one shape. */
export function findGatedProducts(nodes: readonly OnnxNode[], info: ShapeInfo): Map<OnnxNode, GatedProduct> {
  const uses = new Map<string, number>();
  const producers = new Map<string, OnnxNode>();
  for (const n of nodes) {
    for (const i of n.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
    for (const o of n.outputs) producers.set(o, n);
  }
  const sameShape = (...values: string[]) => {
    const shapes = values.map((v) => info.shapes.get(v)?.join(','));
    return shapes[0] !== undefined && shapes.every((s) => s === shapes[0]);
  };
  const found = new Map<OnnxNode, GatedProduct>();
  for (const mul of nodes) {
    if (mul.opType !== 'Mul' || mul.inputs.length !== 2 || mul.inputs[0] === mul.inputs[1]) continue;
    for (const side of [1, 0]) {
      const s = mul.inputs[side]!;
      const a = mul.inputs[1 - side]!;
      const sigmoid = producers.get(s);
      if (sigmoid?.opType !== 'Sigmoid' || uses.get(s) !== 1 || !sameShape(a, s, mul.outputs[0]!)) continue;
      found.set(mul, { mul, a, b: sigmoid.inputs[0]!, s });
      break;
    }
  }
  return found;
}

/** The gradients of a and b (undefined where `needs` says none) given dy, the gradient of the product. */
export function gatedProductVjp(e: GraphEditor, g: GatedProduct, dy: string, needs: { a: boolean; b: boolean }): { a?: string; b?: string } {
  const da = e.node('Mul', [dy, g.s]);
  return {
    ...(needs.a ? { a: da } : {}),
    ...(needs.b ? { b: e.node('Mul', [da, e.node('Sub', [g.a, g.mul.outputs[0]!])]) } : {}),
  };
}
