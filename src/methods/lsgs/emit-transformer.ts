/**
 * ONNX graph of the LSGS transformer prior (src/methods/lsgs/transformer.ts), inference only (no dropout):
 * code maps [B, h, w] int32 and slice positions [B] → logits [B, h, w, K], or the NLL of each map's
 * own code at every position [B, h, w] (as ./emit-pixelsnail.ts; two graphs, since ONNX Runtime
 * computes every node whatever outputs are fetched). Both attention kinds: full (LSGS) and causal
 * (the next-code ablation, shifted input behind the learned start vector).
 *
 * Tokens stay [B, N, D] (N = h·w) where transformer.ts flattens to [B·N, D]: MatMul broadcasts the
 * weights over the batch, so the values are the same.
 */
import type { TransformerConfig } from './transformer.js';
import { DataType } from '../../onnx/onnx-proto.js';
import { GraphBuilder, type Value } from '../../onnx/graph.js';
import { emitBatchBroadcast, emitPositionColumn, hostParam, type HostParams } from '../../onnx/emit-blocks.js';
import { emitNllFromLogits, type PriorOutput } from '../../onnx/emit-blocks.js';

/** transformer.ts linear: x·W + b over the last axis. */
function emitLinear(g: GraphBuilder, params: HostParams, prefix: string, x: Value): Value {
  const w = hostParam(params, `${prefix}.w`);
  const b = hostParam(params, `${prefix}.b`);
  return g.add(g.matMul(x, g.initializer(`${prefix}.w`, w.shape, w.values)), g.initializer(`${prefix}.b`, b.shape, b.values));
}

/** transformer.ts layerNorm: biased variance over the last axis, ε = 1e-5, then ·g + b. */
function emitLayerNorm(g: GraphBuilder, params: HostParams, prefix: string, x: Value, eps = 1e-5): Value {
  const scale = hostParam(params, `${prefix}.g`);
  const shift = hostParam(params, `${prefix}.b`);
  return g.node(
    'LayerNormalization',
    [x, g.initializer(`${prefix}.g`, scale.shape, scale.values), g.initializer(`${prefix}.b`, shift.shape, shift.values)],
    { axis: -1, epsilon: { float: eps } },
    prefix,
  );
}

/** transformer.ts gelu (tanh approximation): ½x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
function emitGelu(g: GraphBuilder, x: Value): Value {
  const cube = g.mul(g.mul(x, x), x);
  const inner = g.mul(g.add(x, g.mul(cube, g.scalar(0.044715))), g.scalar(Math.sqrt(2 / Math.PI)));
  return g.mul(g.mul(x, g.scalar(0.5)), g.add(g.scalar(1), g.node('Tanh', [inner])));
}

/** Additive causal mask [1, 1, N, N]: −1e9 where key j > query i (transformer.ts causalMask). */
function causalMaskValues(n: number): Float32Array {
  const data = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) data[i * n + j] = -1e9;
  return data;
}

/** transformer.ts attention: multi-head scaled dot-product self-attention over the N tokens of each map. */
function emitAttention(g: GraphBuilder, params: HostParams, prefix: string, x: Value, cfg: TransformerConfig, mask: Value | null): Value {
  const n = cfg.height * cfg.width;
  const heads = cfg.heads;
  const dh = cfg.dim / heads;
  const [q, k, v] = g.split(emitLinear(g, params, `${prefix}.qkv`, x), 3, 2).map((t) => g.reshape(t, [0, n, heads, dh]));
  const query = g.transpose(q!, [0, 2, 1, 3]); // [B, H, N, dh]
  const keyT = g.transpose(k!, [0, 2, 3, 1]); // [B, H, dh, N]
  const value = g.transpose(v!, [0, 2, 1, 3]); // [B, H, N, dh]
  let scores = g.mul(g.matMul(query, keyT), g.scalar(1 / Math.sqrt(dh)));
  if (mask !== null) scores = g.add(scores, mask);
  const mixed = g.matMul(g.softmax(scores, 3), value); // [B, H, N, dh]
  return emitLinear(g, params, `${prefix}.out`, g.reshape(g.transpose(mixed, [0, 2, 1, 3]), [0, n, cfg.dim]));
}

/** transformer.ts embed: code + row + column embeddings (+ start shift when causal) + slice-position term. */
function emitEmbedding(g: GraphBuilder, params: HostParams, cfg: TransformerConfig, codes: Value, pos: Value): Value {
  const { height: h, width: w, dim: d } = cfg;
  const n = h * w;
  const table = hostParam(params, 'embed.code');
  let tokens = g.reshape(g.gather(g.initializer('embed.code', table.shape, table.values), codes), [0, n, d]);
  if (cfg.causal) {
    const start = emitBatchBroadcast(g, g.initializer('embed.start', [1, 1, d], hostParam(params, 'embed.start').values), codes, [1, d]);
    tokens = g.concat([start, g.slice(tokens, [0], [n - 1], [1])], 1);
  }
  // row[i] + col[j] as a graph Add of two constants (ONNX Runtime folds it; the sums are tf.add(row, col)'s).
  const row = g.initializer('embed.row', [h, 1, d], hostParam(params, 'embed.row').values);
  const col = g.initializer('embed.col', [1, w, d], hostParam(params, 'embed.col').values);
  const grid = g.reshape(g.add(row, col), [1, n, d]);
  let x = g.add(tokens, grid);
  if (cfg.condChannels === 1) {
    const posColumn = g.reshape(emitPositionColumn(g, pos), [-1, 1, 1]);
    const cond = g.add(
      g.mul(posColumn, g.initializer('embed.cond.w', [1, 1, d], hostParam(params, 'embed.cond.w').values)),
      g.initializer('embed.cond.b', [1, 1, d], hostParam(params, 'embed.cond.b').values),
    );
    x = g.add(x, cond);
  }
  return x;
}

/** Training graphs apply dropout to each residual branch [B, N, d] here, in forward order; inference has none. */
export type ResidualDropoutHook = (g: GraphBuilder, branch: Value, site: string) => Value;

export function emitTransformer(params: HostParams, cfg: TransformerConfig, output: PriorOutput, dropout?: ResidualDropoutHook): GraphBuilder {
  const g = new GraphBuilder(`transformer_${output}`);
  const { height: h, width: w, codebookSize: k } = cfg;
  const n = h * w;
  const codes = g.input('codes', DataType.INT32, ['batch', h, w]);
  const pos = g.input('position', DataType.FLOAT, ['batch']);
  const mask = cfg.causal ? g.initializer('causal_mask', [1, 1, n, n], causalMaskValues(n)) : null;
  let x = emitEmbedding(g, params, cfg, codes, pos);
  for (let l = 0; l < cfg.layers; l++) {
    const drop = (branch: Value, site: string) => (dropout === undefined ? branch : dropout(g, branch, `layer${l}.${site}`));
    x = g.add(x, drop(emitAttention(g, params, `layer${l}.attn`, emitLayerNorm(g, params, `layer${l}.norm1`, x), cfg, mask), 'attn'));
    const hidden = emitGelu(g, emitLinear(g, params, `layer${l}.mlp.fc1`, emitLayerNorm(g, params, `layer${l}.norm2`, x)));
    x = g.add(x, drop(emitLinear(g, params, `layer${l}.mlp.fc2`, hidden), 'mlp'));
  }
  const logits = g.reshape(emitLinear(g, params, 'out.head', emitLayerNorm(g, params, 'out.norm', x)), [0, h, w, k]);
  if (output === 'logits') g.output(logits, 'logits', DataType.FLOAT, ['batch', h, w, k]);
  else g.output(emitNllFromLogits(g, logits, codes, k), 'nll', DataType.FLOAT, ['batch', h, w]);
  return g;
}
