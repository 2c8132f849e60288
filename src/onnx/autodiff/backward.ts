/**
 * Reverse-mode differentiation of an ONNX model built with ../graph.ts: `backward` appends, in
 * reverse topological order, the vector–Jacobian products (./vjp.ts) of every node between the
 * parameters and the scalar loss, sums the gradients of values used more than once, and exposes
 * d loss / d param as graph outputs `grad/<param>`.
 *
 * `stopGradient` marks a value as constant for differentiation (an Identity node whose name says
 * so), which is how the straight-through estimator and the VQ losses are written.
 */
import { DataType, type OnnxModel } from '../onnx-proto.js';
import type { GraphBuilder, Value } from '../graph.js';
import { fuseEluChains } from './custom-elu.js';
import { attr, GraphEditor } from './editor.js';
import { findGatedProducts, gatedProductVjp } from './fuse-gated.js';
import { findGroupNormChains, groupNormChainVjp, type GroupNormChain } from './fuse-groupnorm.js';
import { inferShapes, type Shape, type ShapeInfo } from './shapes.js';
import { CUSTOM_DOMAIN, NON_DIFFERENTIABLE, vjpOf } from './vjp.js';

export const STOP_GRADIENT = 'stop_gradient';

/** Identity in the forward pass, no gradient in the backward pass. */
export function stopGradient(g: GraphBuilder, x: Value): Value {
  return g.node('Identity', [x], {}, STOP_GRADIENT);
}

export function gradientName(param: string): string {
  return `grad/${param}`;
}

export interface BackwardOptions {
  /** Concrete shapes of the graph inputs with symbolic dimensions (training graphs run at a fixed batch). */
  inputShapes: Readonly<Record<string, Shape>>;
  /** Differentiate GroupNorm + affine chains as one unit (./fuse-groupnorm.ts; default true). */
  fuseGroupNorm?: boolean;
  /** Differentiate a · σ(b) products as one unit (./fuse-gated.ts; default true). */
  fuseGatedProducts?: boolean;
  /**
   * Emit this project's custom operators where they apply (the com.moodlsr domain: ConvWeightGrad in
   * ./vjp.ts, PlaneSums/PlaneCombine in ./fuse-groupnorm.ts, EluExp in ./custom-elu.ts): only sessions
   * of ../native-session.ts can run the result. Default false.
   */
  customOperators?: boolean;
}

export interface BackwardResult {
  model: OnnxModel;
  /** Output name of each parameter's gradient. */
  gradients: Map<string, string>;
  info: ShapeInfo;
}

/** Appends the gradient of the scalar `loss` w.r.t. every name of `params` (graph inputs or initializers). */
export function backward(model: OnnxModel, loss: string, params: readonly string[], opts: BackwardOptions): BackwardResult {
  const info = inferShapes(model, opts.inputShapes);
  const lossShape = info.shapes.get(loss);
  if (lossShape === undefined) throw new Error(`ONNX autodiff: loss ${loss} is not a value of the graph`);
  if (lossShape.some((d) => d !== 1)) throw new Error(`ONNX autodiff: loss ${loss} must be a scalar, its shape is [${lossShape.join(',')}]`);
  const nodes = model.graph.nodes;
  const stops = (name: string, opType: string) => opType === 'Identity' && name.startsWith(STOP_GRADIENT);

  // Values that depend on a parameter through differentiable float paths.
  const active = new Set<string>(params);
  for (const p of params) if (!info.shapes.has(p)) throw new Error(`ONNX autodiff: parameter ${p} is not in the graph`);
  for (const n of nodes) {
    if (NON_DIFFERENTIABLE.has(n.opType) || stops(n.name, n.opType)) continue;
    if (n.inputs.some((i) => active.has(i))) for (const o of n.outputs) if (info.kinds.get(o) === 'float') active.add(o);
  }
  // Values the loss depends on.
  const needed = new Set<string>([loss]);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k]!;
    if (n.outputs.some((o) => needed.has(o))) for (const i of n.inputs) needed.add(i);
  }

  const producers = new Map<string, (typeof nodes)[number]>();
  for (const n of nodes) for (const o of n.outputs) producers.set(o, n);
  const e = new GraphEditor(model);
  const grads = new Map<string, string[]>();
  const gradOf = (v: string): string | undefined => {
    const parts = grads.get(v);
    if (parts === undefined) return undefined;
    if (parts.length > 1) {
      const joined = joinPaddedParts(e, parts, info.shapes.get(v)!);
      grads.set(v, [joined.length > 1 ? e.node('Sum', joined, {}, 'grad/accumulate') : joined[0]!]);
    }
    return grads.get(v)![0];
  };
  const chains = new Map<(typeof nodes)[number], GroupNormChain>();
  if (opts.fuseGroupNorm ?? true) for (const chain of findGroupNormChains(nodes, info)) chains.set(chain.sampleBias?.add ?? chain.shift, chain);
  const gated = opts.fuseGatedProducts ?? true ? findGatedProducts(nodes, info) : new Map();
  const isFloatActive = (v: string) => v !== '' && active.has(v) && info.kinds.get(v) === 'float';
  const addGrad = (input: string, g: string) => {
    const list = grads.get(input);
    if (list === undefined) grads.set(input, [g]);
    else list.push(g);
  };
  const seed = e.node('Expand', [e.scalar(1), e.ints([...lossShape])], {}, 'grad/seed');
  grads.set(loss, [seed]);

  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k]!;
    if (!node.outputs.some((o) => active.has(o) && needed.has(o) && grads.has(o))) continue;
    const chain = chains.get(node);
    if (chain !== undefined) {
      const bias = chain.sampleBias?.value;
      const chainNeeds = { x: isFloatActive(chain.x), gamma: isFloatActive(chain.gamma), beta: isFloatActive(chain.beta), sampleBias: bias !== undefined && isFloatActive(bias) };
      if (!chainNeeds.x && !chainNeeds.gamma && !chainNeeds.beta && !chainNeeds.sampleBias) continue;
      const d = groupNormChainVjp(e, chain, gradOf(node.outputs[0]!)!, chainNeeds, opts.customOperators ?? false);
      if (d.x !== undefined) addGrad(chain.x, d.x);
      if (d.gamma !== undefined) addGrad(chain.gamma, d.gamma);
      if (d.beta !== undefined) addGrad(chain.beta, d.beta);
      if (d.sampleBias !== undefined) addGrad(bias!, d.sampleBias);
      continue;
    }
    const product = gated.get(node);
    if (product !== undefined) {
      const productNeeds = { a: isFloatActive(product.a), b: isFloatActive(product.b) };
      if (!productNeeds.a && !productNeeds.b) continue;
      const d = gatedProductVjp(e, product, gradOf(node.outputs[0]!)!, productNeeds);
      if (d.a !== undefined) addGrad(product.a, d.a);
      if (d.b !== undefined) addGrad(product.b, d.b);
      continue;
    }
    const needs = node.inputs.map(isFloatActive);
    if (!needs.some(Boolean)) continue;
    const vjp = vjpOf(node.opType);
    if (vjp === undefined) throw new Error(`ONNX autodiff: no vector-Jacobian product for operator ${node.opType} (node ${node.name})`);
    const dy = node.outputs.map((o) => gradOf(o));
    const dx = vjp({ e, node, info, dy, needs, producer: (v) => producers.get(v), customOperators: opts.customOperators ?? false });
    node.inputs.forEach((input, i) => {
      const g = dx[i];
      if (needs[i] && g !== undefined) addGrad(input, g);
    });
  }

  const gradients = new Map<string, string>();
  for (const p of params) {
    const shape = info.shapes.get(p)!;
    const g = gradOf(p) ?? e.zeros(shape);
    const name = gradientName(p);
    e.node('Identity', [g], {}, name);
    const out = e.nodes[e.nodes.length - 1]!.outputs[0]!;
    if (out !== name) throw new Error(`ONNX autodiff: output name ${name} is taken`);
    e.addOutput({ name, dataType: DataType.FLOAT, shape });
    gradients.set(p, name);
  }
  const built = opts.customOperators === true ? fuseEluChains(e.build(), info).model : e.build();
  const custom = built.graph.nodes.some((n) => n.domain === CUSTOM_DOMAIN);
  const withOpsets = custom ? { ...built, extraOpsets: [...(built.extraOpsets ?? []).filter((o) => o.domain !== CUSTOM_DOMAIN), { domain: CUSTOM_DOMAIN, version: 1 }] } : built;
  return { model: withOpsets, gradients, info };
}

/**
 * Gradient parts that are pads of disjoint blocks of one value (the VJPs of Slices that split it,
 * e.g. the taps of a convolution folded into an embedding table) joined by one Concat along the
 * axis where the blocks do not overlap, each padded only along the other axes: two passes over the
 * value instead of a full-size Pad per part and a Sum over all of them. Other parts are returned as
 * they are, for the caller to sum.
 */
export function joinPaddedParts(e: GraphEditor, parts: readonly string[], shape: Shape): string[] {
  const padded = parts.filter((p) => e.paddedGradients.has(p));
  if (padded.length < 2) return [...parts];
  const rank = shape.length;
  const blocks = padded.map((p) => {
    const { inner, pads } = e.paddedGradients.get(p)!;
    return { inner, pads, range: (axis: number): [number, number] => [pads[axis]!, shape[axis]! - pads[axis + rank]!] };
  });
  for (let axis = 0; axis < rank; axis++) {
    const sorted = [...blocks].sort((a, b) => a.range(axis)[0] - b.range(axis)[0]);
    if (!sorted.every((b, i) => i === 0 || sorted[i - 1]!.range(axis)[1] <= b.range(axis)[0])) continue;
    const pieces: string[] = [];
    let cursor = 0;
    const gap = (length: number) => e.zeros(shape.map((d, i) => (i === axis ? length : d)));
    for (const b of sorted) {
      const [start, end] = b.range(axis);
      if (start > cursor) pieces.push(gap(start - cursor));
      const others = b.pads.map((p, i) => (i % rank === axis ? 0 : p));
      pieces.push(others.some((p) => p !== 0) ? e.node('Pad', [b.inner, e.ints(others)], { mode: { kind: 'string', value: 'constant' } }) : b.inner);
      cursor = end;
    }
    if (cursor < shape[axis]!) pieces.push(gap(shape[axis]! - cursor));
    const joined = e.node('Concat', pieces, { axis: attr.int(axis) }, 'grad/join');
    return [joined, ...parts.filter((p) => !e.paddedGradients.has(p))];
  }
  return [...parts];
}

/** The same model with the named float initializers turned into graph inputs (their values are fed per run). */
export function initializersToInputs(model: OnnxModel, names: readonly string[]): OnnxModel {
  const wanted = new Set(names);
  const inputs = [...model.graph.inputs];
  const initializers = model.graph.initializers.filter((t) => {
    if (!wanted.has(t.name)) return true;
    if (t.dataType !== DataType.FLOAT) throw new Error(`ONNX autodiff: initializer ${t.name} is not float32`);
    inputs.push({ name: t.name, dataType: DataType.FLOAT, shape: t.dims });
    wanted.delete(t.name);
    return false;
  });
  if (wanted.size > 0) throw new Error(`ONNX autodiff: no initializers ${[...wanted].join(', ')}`);
  return { ...model, graph: { ...model.graph, inputs, initializers } };
}
