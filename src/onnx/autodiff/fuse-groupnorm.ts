/**
 * GroupNorm with its per-channel affine, differentiated as one unit. ../emit-blocks.ts emits it as
 *   Reshape [N, G, L] → InstanceNormalization (scale 1, shift 0) → Reshape [N, C, H, W] → Mul γ → Add β,
 * whose per-operator VJPs recompute the rows' statistics and take about eight full-size passes. In a
 * training graph the chain is rewritten and its gradient formed at once:
 * - forward: LayerNormalization over the rows (the same normalisation, which also outputs 1/σ per
 *   row), and the affine as one BatchNormalization pass (mean 0, variance 1: x̂·γ + β);
 * - backward, with S0 = Σ_hw dy and S1 = Σ_hw dy·x̂ per sample and channel (dβ, dγ are their sums over
 *   the batch) and T0, T1 their γ-weighted sums over each group of L elements:
 *   dx = (rstd·γ)·dy − x̂·(rstd·T1/L) − rstd·T0/L,
 *   one reduction, one batched dot product (S1) and three passes (a BatchNormalization for the first and
 *   last terms).
 * A per-sample bias added right after the chain (the VQ-VAE's slice condition, [N, C, 1, 1]) joins the
 * affine: the BatchNormalization then runs over rows [1, N·C, H·W] with β + bias per (sample, channel),
 * one full-size pass fewer; the bias's gradient is S0.
 */
import type { OnnxNode } from '../onnx-proto.js';
import { attr, floatAttr, type GraphEditor } from './editor.js';
import type { Shape, ShapeInfo } from './shapes.js';
import { CUSTOM_DOMAIN } from './vjp.js';

export interface GroupNormChain {
  readonly reshapeIn: OnnxNode;
  readonly norm: OnnxNode;
  readonly reshapeOut: OnnxNode;
  readonly scale: OnnxNode;
  readonly shift: OnnxNode;
  /** x [N, C, H, W], γ and β [C, 1, 1]. */
  readonly x: string;
  readonly gamma: string;
  readonly beta: string;
  readonly shape: Shape;
  readonly groups: number;
  /**
   * A per-sample, per-channel bias [N, C, 1, 1] added right after the affine (the VQ-VAE's slice
   * condition), folded into the affine's pass; its gradient is S0.
   */
  readonly sampleBias?: { readonly add: OnnxNode; readonly value: string };
}

function isUnit(info: ShapeInfo, name: string | undefined, value: number): boolean {
  const c = name === undefined ? undefined : info.constants.get(name);
  return c !== undefined && c.every((v) => v === value);
}

/** Every GroupNorm + affine chain whose intermediate values have no other consumer. */
export function findGroupNormChains(nodes: readonly OnnxNode[], info: ShapeInfo): GroupNormChain[] {
  const consumers = new Map<string, OnnxNode[]>();
  const producers = new Map<string, OnnxNode>();
  for (const n of nodes) {
    for (const i of n.inputs) {
      const list = consumers.get(i);
      if (list === undefined) consumers.set(i, [n]);
      else list.push(n);
    }
    for (const o of n.outputs) producers.set(o, n);
  }
  const only = (value: string, opType: string): OnnxNode | undefined => {
    const list = consumers.get(value) ?? [];
    return list.length === 1 && list[0]!.opType === opType ? list[0] : undefined;
  };
  const chains: GroupNormChain[] = [];
  for (const norm of nodes) {
    if (norm.opType !== 'InstanceNormalization' || !isUnit(info, norm.inputs[1], 1) || !isUnit(info, norm.inputs[2], 0)) continue;
    const grouped = norm.inputs[0]!;
    const reshapeIn = producers.get(grouped);
    if (reshapeIn?.opType !== 'Reshape' || (consumers.get(grouped) ?? []).length !== 1) continue;
    const x = reshapeIn.inputs[0]!;
    const shape = info.shapes.get(x);
    const groupedShape = info.shapes.get(grouped);
    if (shape === undefined || shape.length !== 4 || groupedShape === undefined || groupedShape.length !== 3) continue;
    const reshapeOut = only(norm.outputs[0]!, 'Reshape');
    if (reshapeOut === undefined || info.shapes.get(reshapeOut.outputs[0]!)?.join(',') !== shape.join(',')) continue;
    const scale = only(reshapeOut.outputs[0]!, 'Mul');
    if (scale === undefined || scale.inputs[0] !== reshapeOut.outputs[0]) continue;
    const shift = only(scale.outputs[0]!, 'Add');
    if (shift === undefined || shift.inputs[0] !== scale.outputs[0]) continue;
    const channelShape = [shape[1]!, 1, 1].join(',');
    const gamma = scale.inputs[1]!;
    const beta = shift.inputs[1]!;
    if (info.shapes.get(gamma)?.join(',') !== channelShape || info.shapes.get(beta)?.join(',') !== channelShape) continue;
    const next = only(shift.outputs[0]!, 'Add');
    const other = next === undefined ? undefined : next.inputs.find((i) => i !== shift.outputs[0]);
    const sampleShape = [shape[0]!, shape[1]!, 1, 1].join(',');
    const sampleBias =
      next !== undefined && other !== undefined && next.inputs.length === 2 && info.shapes.get(other)?.join(',') === sampleShape && info.shapes.get(next.outputs[0]!)?.join(',') === shape.join(',')
        ? { add: next, value: other }
        : undefined;
    chains.push({ reshapeIn, norm, reshapeOut, scale, shift, x, gamma, beta, shape, groups: groupedShape[1]!, ...(sampleBias !== undefined ? { sampleBias } : {}) });
  }
  return chains;
}

function replaceNode(e: GraphEditor, old: OnnxNode, replacement: readonly OnnxNode[]): void {
  const at = e.nodes.indexOf(old);
  if (at < 0) throw new Error(`ONNX autodiff: node ${old.name} is not in the graph`);
  e.nodes.splice(at, 1, ...replacement);
}

/**
 * Rewrites the chain's forward nodes (see the file comment) and returns the gradients of x, γ and β
 * (undefined where `needs` says none) given dy, the gradient of the chain's output.
 */
export function groupNormChainVjp(
  e: GraphEditor,
  chain: GroupNormChain,
  dy: string,
  needs: { x: boolean; gamma: boolean; beta: boolean; sampleBias?: boolean },
  customOperators = false,
): { x?: string; gamma?: string; beta?: string; sampleBias?: string } {
  const [n, c, h, w] = chain.shape as [number, number, number, number];
  const g = chain.groups;
  const perGroup = c / g;
  const rowLength = perGroup * h * w;
  const xhat = chain.reshapeOut.outputs[0]!;

  // Forward: LayerNormalization (Y, no mean, 1/σ), and the affine as one BatchNormalization.
  const rstd = e.fresh(`${chain.norm.name}/inv_std`);
  const unit = e.initializer(`${chain.norm.name}/unit_scale`, [rowLength], new Float32Array(rowLength).fill(1));
  replaceNode(e, chain.norm, [
    {
      opType: 'LayerNormalization',
      name: e.fresh(`${chain.norm.name}/as_layernorm`),
      inputs: [chain.norm.inputs[0]!, unit],
      outputs: [chain.norm.outputs[0]!, '', rstd],
      attributes: { axis: attr.int(2), epsilon: attr.float(floatAttr(chain.norm, 'epsilon', 1e-5)) },
    },
  ]);
  const emit = (opType: string, inputs: readonly string[], stem: string): [string, OnnxNode] => {
    const out = e.fresh(stem);
    return [out, { opType, name: e.fresh(`${stem}_node`), inputs, outputs: [out], attributes: {} }];
  };
  const fused: OnnxNode[] = [];
  const value = (opType: string, inputs: readonly string[], stem: string): string => {
    const [out, node] = emit(opType, inputs, stem);
    fused.push(node);
    return out;
  };
  const bias = chain.sampleBias;
  // Per channel, or with a per-sample bias per (sample, channel) over rows [1, N·C, H·W].
  const channels = bias === undefined ? c : n * c;
  const perChannel = (v: string) => value('Reshape', [v, e.ints([1, c])], `${v}/row`);
  const gammaFlat = bias === undefined ? value('Reshape', [chain.gamma, e.ints([c])], `${chain.gamma}/flat`) : value('Reshape', [value('Expand', [perChannel(chain.gamma), e.ints([n, c])], `${chain.gamma}/per_sample`), e.ints([channels])], `${chain.gamma}/flat`);
  const betaFlat =
    bias === undefined
      ? value('Reshape', [chain.beta, e.ints([c])], `${chain.beta}/flat`)
      : value('Reshape', [value('Add', [perChannel(chain.beta), value('Reshape', [bias.value, e.ints([n, c])], `${bias.value}/rows`)], `${chain.beta}/per_sample`), e.ints([channels])], `${chain.beta}/flat`);
  const zeros = e.initializer(`${chain.scale.name}/zero_mean`, [channels], new Float32Array(channels));
  const ones = e.initializer(`${chain.scale.name}/unit_variance`, [channels], new Float32Array(channels).fill(1));
  const last = bias?.add ?? chain.shift;
  const affineIn = bias === undefined ? xhat : value('Reshape', [xhat, e.ints([1, channels, h * w])], `${xhat}/rows`);
  const affineOut = bias === undefined ? last.outputs[0]! : e.fresh(`${chain.scale.name}/affine_rows`);
  fused.push({ opType: 'BatchNormalization', name: e.fresh(`${chain.scale.name}/affine`), inputs: [affineIn, gammaFlat, betaFlat, zeros, ones], outputs: [affineOut], attributes: { epsilon: attr.float(0) } });
  if (bias !== undefined) fused.push({ opType: 'Reshape', name: e.fresh(`${chain.scale.name}/affine_nchw_node`), inputs: [affineOut, e.ints([n, c, h, w])], outputs: [last.outputs[0]!], attributes: {} });
  // In the place of the chain's last node: the per-sample bias is computed after the normalisation.
  replaceNode(e, last, fused);
  replaceNode(e, chain.scale, []);
  if (bias !== undefined) replaceNode(e, chain.shift, []);

  // Backward.
  const custom = (opType: string, inputs: readonly string[], outputs: number): string[] => {
    const names = Array.from({ length: outputs }, (_, i) => e.fresh(`grad/${opType.toLowerCase()}${outputs > 1 ? `_out${i}` : ''}`));
    e.nodes.push({ opType, name: e.fresh(`grad/${opType.toLowerCase()}_node`), inputs, outputs: names, attributes: {}, domain: CUSTOM_DOMAIN });
    return names;
  };
  let s0: string;
  let s1: string;
  if (customOperators) {
    // Both sums in one pass over dy and x̂ (native/ort-kernels, PlaneSums).
    [s0, s1] = custom('PlaneSums', [dy, xhat], 2) as [string, string];
  } else {
    s0 = e.node('ReduceSum', [dy, e.ints([2, 3])], { keepdims: attr.int(1) }); // [N, C, 1, 1]
    // S1 as N·C dot products (a batched MatMul reads dy and x̂ once; Mul + ReduceSum also wrote and re-read the product).
    const rowsOf = (v: string) => e.node('Reshape', [v, e.ints([n * c, 1, h * w])]);
    s1 = e.node('Reshape', [e.node('MatMul', [rowsOf(dy), e.node('Transpose', [rowsOf(xhat)], { perm: attr.ints([0, 2, 1]) })]), e.ints([n, c, 1, 1])]);
  }
  const out: { x?: string; gamma?: string; beta?: string; sampleBias?: string } = {};
  if (needs.sampleBias === true) out.sampleBias = s0;
  const overBatch = (v: string) => e.node('ReduceSum', [v, e.ints([0])], { keepdims: attr.int(0) }); // [C, 1, 1]
  if (needs.beta) out.beta = overBatch(s0);
  if (needs.gamma) out.gamma = overBatch(s1);
  if (!needs.x) return out;
  const gammaGrouped = e.node('Reshape', [chain.gamma, e.ints([1, g, perGroup])]);
  const groupSum = (s: string) => e.node('ReduceSum', [e.node('Mul', [e.node('Reshape', [s, e.ints([n, g, perGroup])]), gammaGrouped]), e.ints([2])], { keepdims: attr.int(1) }); // [N, G, 1]
  const perRow = e.node('Mul', [rstd, e.scalar(1 / rowLength)]);
  const toChannels = (v: string) => e.node('Reshape', [e.node('Expand', [v, e.ints([n, g, perGroup])]), e.ints([n * c])]);
  const a = e.node('Reshape', [e.node('Mul', [rstd, gammaGrouped]), e.ints([n * c])]); // rstd·γ
  const b = e.node('Reshape', [toChannels(e.node('Mul', [perRow, groupSum(s1)])), e.ints([n, c, 1, 1])]); // rstd·T1/L
  const negC0 = toChannels(e.node('Neg', [e.node('Mul', [perRow, groupSum(s0)])])); // −rstd·T0/L
  if (customOperators) {
    // dx = a·dy − b·x̂ + c in one pass (native/ort-kernels, PlaneCombine).
    out.x = custom('PlaneCombine', [dy, xhat, a, b, negC0], 1)[0]!;
    return out;
  }
  const rows = e.ints([1, n * c, h * w]);
  const zeroMean = e.initializer(`${chain.scale.name}/grad_zero_mean`, [n * c], new Float32Array(n * c));
  const unitVariance = e.initializer(`${chain.scale.name}/grad_unit_variance`, [n * c], new Float32Array(n * c).fill(1));
  const linear = e.node('BatchNormalization', [e.node('Reshape', [dy, rows]), a, negC0, zeroMean, unitVariance], { epsilon: attr.float(0) });
  out.x = e.node('Sub', [e.node('Reshape', [linear, e.ints([n, c, h, w])]), e.node('Mul', [xhat, b])]);
  return out;
}
