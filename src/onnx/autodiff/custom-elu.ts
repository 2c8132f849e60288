/**
 * ELU forward passes in one custom kernel. ../graph.ts writes ELU as max(x, exp(min(x, 0)) − 1): four
 * full-size passes (Min, Exp, Sub, Max), whose Exp value the ELU's vector–Jacobian product reuses
 * (./vjp.ts, `eluPattern`). In a gradient graph that may use the project's custom kernels
 * (BackwardOptions.customOperators), each such chain becomes one `EluExp` node of the com.moodlsr
 * domain (native/ort-kernels): x → [y, exp(min(x, 0))], one read and two writes. ./backward.ts applies it.
 */
import type { OnnxModel, OnnxNode } from '../onnx-proto.js';
import type { ShapeInfo } from './shapes.js';
import { CUSTOM_DOMAIN } from './vjp.js';

/**
 * The model with every Min → Exp → Sub → Max ELU chain (intermediates used nowhere else) as one EluExp
 * node; `info` holds the graph's small float constants (./shapes.ts).
 */
export function fuseEluChains(model: OnnxModel, info: ShapeInfo): { model: OnnxModel; fused: number } {
  const scalarOf = (name: string): number | undefined => info.floats.get(name)?.[0];
  const nodes = model.graph.nodes;
  const producers = new Map<string, OnnxNode>();
  const uses = new Map<string, number>();
  for (const n of nodes) {
    for (const o of n.outputs) producers.set(o, n);
    for (const i of n.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
  }
  for (const o of model.graph.outputs) uses.set(o.name, (uses.get(o.name) ?? 0) + 1);
  const replaced = new Map<OnnxNode, OnnxNode | null>(); // null: dropped
  for (const max of nodes) {
    if (max.opType !== 'Max' || (max.domain ?? '') !== '' || max.inputs.length !== 2) continue;
    const [x, shifted] = max.inputs as [string, string];
    const sub = producers.get(shifted);
    if (sub?.opType !== 'Sub' || uses.get(shifted) !== 1 || scalarOf(sub.inputs[1]!) !== 1) continue;
    const exp = producers.get(sub.inputs[0]!);
    if (exp?.opType !== 'Exp') continue;
    const min = producers.get(exp.inputs[0]!);
    if (min?.opType !== 'Min' || min.inputs[0] !== x || scalarOf(min.inputs[1]!) !== 0 || uses.get(min.outputs[0]!) !== 1) continue;
    if ([min, exp, sub, max].some((n) => replaced.has(n))) continue;
    replaced.set(min, null);
    replaced.set(exp, null);
    replaced.set(sub, null);
    replaced.set(max, { opType: 'EluExp', name: `${max.name}/elu_exp`, inputs: [x], outputs: [max.outputs[0]!, exp.outputs[0]!], attributes: {}, domain: CUSTOM_DOMAIN });
  }
  if (replaced.size === 0) return { model, fused: 0 };
  const out: OnnxNode[] = [];
  for (const n of nodes) {
    const r = replaced.get(n);
    if (r === undefined) out.push(n);
    else if (r !== null) out.push(r);
  }
  const extraOpsets = [...(model.extraOpsets ?? []).filter((o) => o.domain !== CUSTOM_DOMAIN), { domain: CUSTOM_DOMAIN, version: 1 }];
  return { model: { ...model, extraOpsets, graph: { ...model.graph, nodes: out } }, fused: replaced.size / 4 };
}
