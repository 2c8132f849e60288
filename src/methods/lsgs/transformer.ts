/**
 * The global-sensitive transformer prior of LSGS (Wang et al., "local-sensitive VQVAE and
 * global-sensitive transformers") over VQ-VAE code maps, as parameter specs + pure forward functions.
 *
 * Tokens: the h×w codes of a map in raster order. Input embedding = code embedding (a [K, D] table)
 * + learned 2-D position embedding (row table [h, D] + column table [w, D]) + slice-position
 * conditioning `pos·w + b` ([D] each, zero at start). Then `layers` pre-norm blocks
 * (x += attn(LN(x)); x += MLP(LN(x)), GELU, dropout on both residual branches while training), a
 * final LayerNorm and a linear head to K logits per position.
 *
 * Bidirectional (causal = false, the LSGS prior): full self-attention; the output at position i sees
 * every code of the map, its own observed code included. Trained to repair tampered maps (see
 * src/methods/lsgs/tamper.ts), it gives in one pass, for every i, the distribution of the original code at i
 * given the whole observed map: the "p(sᵢ | all other codes)" of the method, with the observed sᵢ as
 * possibly corrupt evidence (excluding it exactly would need one pass per position).
 *
 * Causal (causal = true, the ablation): next-code prediction. The token sequence is shifted right by
 * one position behind a learned start vector, position embeddings stay those of the predicted
 * position, and attention is masked to j ≤ i, so the output at i depends only on codes before i.
 */
import * as tf from '@tensorflow/tfjs';
import { type ForwardOptions, oneHotFloat } from '../../models/blocks.js';
import type { PresetName, Region } from '../../models/config.js';
import { initParams, param, ParamSpecList, type ParamMap, type ParamSpec } from '../../models/params.js';
import { nllFromLogits } from '../../models/blocks.js';
import { createRng, type Rng } from '../../engine/random.js';

export interface TransformerConfig {
  /** K: number of distinct codes (the VQ-VAE codebook size). */
  codebookSize: number;
  height: number;
  width: number;
  /** D: token width. */
  dim: number;
  layers: number;
  heads: number;
  /** Hidden width of the MLP. */
  mlpDim: number;
  /** Dropout on the residual branches while training. */
  dropout: number;
  /** 1: add the slice-position conditioning to every token; 0: unconditioned. */
  condChannels: 0 | 1;
  /** false: full attention (LSGS); true: causal mask + next-code prediction (ablation). */
  causal: boolean;
}

function fail(reason: string): never {
  throw new Error(`invalid transformer config: ${reason}`);
}

export function validateTransformerConfig(raw: unknown): TransformerConfig {
  if (typeof raw !== 'object' || raw === null) fail('not an object');
  const c = raw as Partial<TransformerConfig>;
  for (const key of ['codebookSize', 'height', 'width', 'dim', 'layers', 'heads', 'mlpDim'] as const) {
    const v = c[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(`${key} must be a positive integer (got ${JSON.stringify(v)})`);
  }
  if (c.dim! % c.heads! !== 0) fail(`dim ${c.dim} is not divisible by heads ${c.heads}`);
  if (typeof c.dropout !== 'number' || !(c.dropout >= 0 && c.dropout < 1)) fail('dropout must be in [0, 1)');
  if (c.condChannels !== 0 && c.condChannels !== 1) fail('condChannels must be 0 or 1');
  if (typeof c.causal !== 'boolean') fail('causal must be true or false');
  return c as TransformerConfig;
}

/**
 * compact: CPU-sized (3 layers × 64 wide, 4 heads, MLP 2×; 0.105 GFLOP per 16×16 map, a training
 * step of 8 maps ≈ 1.5–3 s on one wasm thread, attention products dominating);
 * reference: a GPU-sized prior (8 layers × 256, 8 heads, MLP 4×). Grid and K come from the VQ-VAE.
 */
export function transformerPreset(preset: PresetName, region: Region, causal = false): TransformerConfig {
  const grid = preset === 'reference' ? (region === 'brain' ? 20 : 10) : region === 'brain' ? 16 : 10;
  const sizes = preset === 'reference' ? { dim: 256, layers: 8, heads: 8, mlpDim: 1024 } : { dim: 64, layers: 3, heads: 4, mlpDim: 128 };
  return { codebookSize: 128, height: grid, width: grid, ...sizes, dropout: 0.1, condChannels: 1, causal };
}

function dense(list: ParamSpecList, prefix: string, fanIn: number, fanOut: number, tokens: number, gain = 1): void {
  list.add(`${prefix}.w`, [fanIn, fanOut], { kind: 'normal', std: gain / Math.sqrt(fanIn) }, 2 * tokens * fanIn * fanOut);
  list.add(`${prefix}.b`, [fanOut], { kind: 'zeros' });
}

export function transformerParamSpecs(cfg: TransformerConfig): ParamSpec[] {
  const list = new ParamSpecList();
  const d = cfg.dim;
  const n = cfg.height * cfg.width;
  const embed = { kind: 'normal' as const, std: 0.02 };
  list.add('embed.code', [cfg.codebookSize, d], embed);
  list.add('embed.row', [cfg.height, d], embed);
  list.add('embed.col', [cfg.width, d], embed);
  if (cfg.condChannels === 1) {
    list.add('embed.cond.w', [d], { kind: 'zeros' });
    list.add('embed.cond.b', [d], { kind: 'zeros' });
  }
  if (cfg.causal) list.add('embed.start', [d], embed);
  // Residual-branch outputs scaled by 1/√(2·layers) (GPT-2), so the stack starts near identity.
  const residualGain = 1 / Math.sqrt(2 * cfg.layers);
  for (let l = 0; l < cfg.layers; l++) {
    list.norm(`layer${l}.norm1`, d);
    dense(list, `layer${l}.attn.qkv`, d, 3 * d, n);
    dense(list, `layer${l}.attn.out`, d, d, n, residualGain);
    list.norm(`layer${l}.norm2`, d);
    dense(list, `layer${l}.mlp.fc1`, d, cfg.mlpDim, n);
    dense(list, `layer${l}.mlp.fc2`, cfg.mlpDim, d, n, residualGain);
  }
  list.norm('out.norm', d);
  dense(list, 'out.head', d, cfg.codebookSize, n);
  return list.specs;
}

/** One pass over a whole map: the dense layers plus the attention products (QKᵀ and AV). */
export function transformerFlops(cfg: TransformerConfig): number {
  const n = cfg.height * cfg.width;
  const dense = transformerParamSpecs(cfg).reduce((a, s) => a + (s.flops ?? 0), 0);
  return dense + cfg.layers * 2 * 2 * n * n * cfg.dim;
}

export function initTransformer(cfg: TransformerConfig, seed: number | string): ParamMap {
  return initParams(transformerParamSpecs(cfg), seed);
}

function linear(params: ParamMap, prefix: string, x: tf.Tensor2D): tf.Tensor2D {
  return tf.add(matMulExplicitGrad(x, param(params, `${prefix}.w`)), param(params, `${prefix}.b`)) as tf.Tensor2D;
}

function layerNorm(params: ParamMap, prefix: string, x: tf.Tensor2D, eps = 1e-5): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, 1, true);
  const normed = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(normed, param(params, `${prefix}.g`)), param(params, `${prefix}.b`));
}

/** GELU, tanh approximation. */
function gelu(x: tf.Tensor2D): tf.Tensor2D {
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
}

/** Additive attention mask [1, N, N]: −1e9 where key j > query i. */
function causalMask(n: number): tf.Tensor3D {
  const data = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) data[i * n + j] = -1e9;
  return tf.tensor3d(data, [1, n, n]);
}

/** Swaps the last two axes. */
function swapLast(x: tf.Tensor): tf.Tensor {
  return x.rank === 2 ? tf.transpose(x) : tf.transpose(x, [0, 2, 1]);
}

/**
 * a·b for rank-2 or rank-3 (batched) tensors, with a gradient that uses explicit transposes instead
 * of matMul's transpose flags: tfjs-backend-wasm 4.22 runs a flagged matMul about 10× slower than a
 * transpose + plain matMul (measured 61 vs 7 ms for the weight gradient of a 2048×64 · 64×192
 * product), and the stock matMul gradient uses the flags. Same values. (Batched products stay one
 * call: splitting them into 2-D products made the kernels faster but a training step slower, from
 * the per-op overhead.)
 */
export const matMulExplicitGrad = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.matMul(dy as tf.Tensor3D, swapLast(saved[1]!) as tf.Tensor3D), tf.matMul(swapLast(saved[0]!) as tf.Tensor3D, dy as tf.Tensor3D)],
  };
}) as never) as unknown as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

function attention(params: ParamMap, prefix: string, x: tf.Tensor2D, b: number, n: number, cfg: TransformerConfig): tf.Tensor2D {
  const h = cfg.heads;
  const dh = cfg.dim / h;
  const qkv = linear(params, `${prefix}.qkv`, x);
  const [q, k, v] = tf.split(qkv, 3, 1).map((t) => tf.reshape(tf.transpose(tf.reshape(t, [b, n, h, dh]), [0, 2, 1, 3]), [b * h, n, dh])) as tf.Tensor3D[];
  let scores = tf.mul(matMulExplicitGrad(q!, swapLast(k!)), 1 / Math.sqrt(dh)) as tf.Tensor3D;
  if (cfg.causal) scores = tf.add(scores, causalMask(n));
  const mixed = tf.reshape(matMulExplicitGrad(tf.softmax(scores), v!), [b, h, n, dh]);
  return linear(params, `${prefix}.out`, tf.reshape(tf.transpose(mixed, [0, 2, 1, 3]), [b * n, cfg.dim]));
}

function residualDropout(x: tf.Tensor2D, rng: Rng | null, rate: number): tf.Tensor2D {
  return rng === null ? x : (tf.dropout(x, rate, undefined, rng.seed()) as tf.Tensor2D);
}

function checkCodes(codes: tf.Tensor3D, pos: tf.Tensor1D, cfg: TransformerConfig): void {
  const [b, h, w] = codes.shape;
  if (h !== cfg.height || w !== cfg.width) throw new Error(`transformer input must be code maps [B,${cfg.height},${cfg.width}], got [${codes.shape.join(',')}]`);
  if (codes.dtype !== 'int32') throw new Error(`code maps must be int32, got ${codes.dtype}`);
  if (pos.shape[0] !== b) throw new Error(`slice positions: expected ${b} values, got ${pos.shape[0]}`);
}

/** Token embeddings [B·N, D] of the (possibly shifted) code maps. */
function embed(params: ParamMap, cfg: TransformerConfig, codes: tf.Tensor3D, pos: tf.Tensor1D): tf.Tensor2D {
  const [b, h, w] = codes.shape;
  const n = h * w;
  const d = cfg.dim;
  let tokens = tf.reshape(tf.gather(param(params, 'embed.code'), tf.reshape(codes, [-1])), [b, n, d]) as tf.Tensor3D;
  if (cfg.causal) {
    const start = tf.tile(tf.reshape(param(params, 'embed.start'), [1, 1, d]), [b, 1, 1]) as tf.Tensor3D;
    tokens = tf.concat([start, tf.slice(tokens, [0, 0, 0], [b, n - 1, d])], 1);
  }
  const row = tf.reshape(param(params, 'embed.row'), [1, h, 1, d]);
  const col = tf.reshape(param(params, 'embed.col'), [1, 1, w, d]);
  let x: tf.Tensor = tf.add(tf.reshape(tokens, [b, h, w, d]), tf.add(row, col));
  if (cfg.condChannels === 1) {
    const cond = tf.add(tf.mul(tf.reshape(pos, [b, 1, 1, 1]), tf.reshape(param(params, 'embed.cond.w'), [1, 1, 1, d])), tf.reshape(param(params, 'embed.cond.b'), [1, 1, 1, d]));
    x = tf.add(x, cond);
  }
  return tf.reshape(x, [b * n, d]);
}

/** Logits [B,h,w,K] for every position of code maps [B,h,w] (int32) with slice positions [B]. */
export function transformerLogits(
  params: ParamMap,
  cfg: TransformerConfig,
  codes: tf.Tensor3D,
  pos: tf.Tensor1D,
  opts: ForwardOptions = { training: false },
): tf.Tensor4D {
  checkCodes(codes, pos, cfg);
  const rng = opts.training && cfg.dropout > 0 ? createRng(opts.seed ?? 0) : null;
  return tf.tidy(() => {
    const [b, h, w] = codes.shape;
    const n = h * w;
    let x = embed(params, cfg, codes, pos);
    for (let l = 0; l < cfg.layers; l++) {
      x = tf.add(x, residualDropout(attention(params, `layer${l}.attn`, layerNorm(params, `layer${l}.norm1`, x), b, n, cfg), rng, cfg.dropout));
      const hidden = gelu(linear(params, `layer${l}.mlp.fc1`, layerNorm(params, `layer${l}.norm2`, x)));
      x = tf.add(x, residualDropout(linear(params, `layer${l}.mlp.fc2`, hidden), rng, cfg.dropout));
    }
    const logits = linear(params, 'out.head', layerNorm(params, 'out.norm', x));
    return tf.reshape(logits, [b, h, w, cfg.codebookSize]);
  });
}

/** NLL (nats) of each observed code under the transformer: [B,h,w]. */
export function transformerNll(params: ParamMap, cfg: TransformerConfig, codes: tf.Tensor3D, pos: tf.Tensor1D): tf.Tensor3D {
  return tf.tidy(() => nllFromLogits(transformerLogits(params, cfg, codes, pos), codes));
}

export interface RepairLoss {
  /** Σ over positions of weight · CE(target), averaged over maps. */
  loss: tf.Scalar;
  /** Mean CE over the tampered positions of the batch (0 when none). */
  ceTampered: tf.Scalar;
  /** Mean CE over the untampered positions of the batch (0 when none). */
  ceUntampered: tf.Scalar;
}

/**
 * The repair loss: the network sees `input` (tampered codes) and is scored on `targets` (the original
 * codes) with per-position `weights` [B,h,w] (src/methods/lsgs/tamper.ts: each map's weights sum to 1, so
 * the loss is the mean over maps of (1−β)·mean CE(tampered) + β·mean CE(untampered)).
 */
export function transformerRepairLoss(
  params: ParamMap,
  cfg: TransformerConfig,
  input: tf.Tensor3D,
  targets: tf.Tensor3D,
  weights: tf.Tensor3D,
  tampered: tf.Tensor3D,
  pos: tf.Tensor1D,
  opts: ForwardOptions = { training: true },
): RepairLoss {
  return tf.tidy(() => {
    const logits = transformerLogits(params, cfg, input, pos, opts);
    const ce = tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), oneHotFloat(targets, cfg.codebookSize)), 3)) as tf.Tensor3D;
    const b = input.shape[0];
    const loss = tf.div(tf.sum(tf.mul(ce, weights)), b) as tf.Scalar;
    const groupMean = (mask: tf.Tensor): tf.Scalar => tf.div(tf.sum(tf.mul(ce, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
    return { loss, ceTampered: groupMean(tampered), ceUntampered: groupMean(tf.sub(1, tampered)) };
  });
}
