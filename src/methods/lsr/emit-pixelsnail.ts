/**
 * ONNX graph of the PixelSNAIL prior (src/methods/lsr/pixelsnail.ts), inference only: code maps
 * [B, h, w] int32 and slice positions [B] → either logits [B, h, w, K] or the NLL of each map's own
 * code at every position, −log softmax(logits)[code], [B, h, w]. Two graphs rather than one with two
 * outputs: ONNX Runtime computes every node whatever outputs are fetched.
 */
import type { Pad4 } from '../../models/blocks.js';
import type { PixelSnailConfig } from '../../models/config.js';
import { attentionMask } from './pixelsnail.js';
import { DataType } from '../../onnx/onnx-proto.js';
import { GraphBuilder, type Value } from '../../onnx/graph.js';
import {
  emitNllFromLogits,
  emitNllFromLogitsNchw,
  type PriorOutput,
  emitAdd,
  emitBatchBroadcast,
  emitConcat,
  emitConditionBias,
  emitConv,
  emitElu,
  emitOneHotConv,
  convWeightInputSlice,
  hostParam,
  emitConvGlu,
  emitPadSpatial,
  emitPositionColumn,
  emitShiftDown,
  emitShiftRight,
  feature,
  type DropoutHook,
  type Feature,
  type HostParams,
} from '../../onnx/emit-blocks.js';

type CausalKind = 'down' | 'downright' | 'pointwise';

// The same kernels and paddings as pixelsnail.ts.
const PADDING: Record<CausalKind, Pad4> = { down: [1, 0, 1, 1], downright: [1, 0, 1, 0], pointwise: [0, 0, 0, 0] };

function emitCausalConv(g: GraphBuilder, params: HostParams, prefix: string, x: Feature, kind: CausalKind): Feature {
  return emitConv(g, params, prefix, x, { padding: PADDING[kind] });
}

/** pixelsnail.ts gatedCausal. */
function emitGatedCausal(
  g: GraphBuilder,
  params: HostParams,
  prefix: string,
  kind: CausalKind,
  x: Feature,
  posColumn: Value,
  cfg: PixelSnailConfig,
  aux?: Feature,
  dropout?: DropoutHook,
): Feature {
  let h = emitCausalConv(g, params, `${prefix}.conv1`, emitElu(g, x), kind);
  if (aux !== undefined) h = emitAdd(g, h, emitConv(g, params, `${prefix}.aux`, emitElu(g, aux), { padding: 'valid' }));
  if (cfg.condChannels === 1) h = emitAdd(g, h, emitConditionBias(g, params, `${prefix}.cond`, posColumn));
  h = emitElu(g, h);
  if (dropout !== undefined) h = dropout(g, h, prefix);
  return emitAdd(g, emitConvGlu(g, params, `${prefix}.conv2`, h, { padding: PADDING[kind] }), x);
}

/** Coordinates in [-0.5, 0.5) of every position, NCHW [1, 2, h, w] (pixelsnail.ts background). */
function backgroundValues(height: number, width: number): Float32Array {
  const data = new Float32Array(2 * height * width);
  for (let i = 0; i < height; i++) {
    for (let j = 0; j < width; j++) {
      data[i * width + j] = (i - height / 2) / height;
      data[height * width + i * width + j] = (j - width / 2) / width;
    }
  }
  return data;
}

/** pixelsnail.ts causalAttention: single head, keys/values on d×d blocks, strict raster-order mask. */
function emitCausalAttention(g: GraphBuilder, params: HostParams, prefix: string, codes: Value, l: Feature, background: Feature, cfg: PixelSnailConfig): Feature {
  const a = cfg.attention!;
  const { height: h, width: w } = l;
  const d = a.downsample;
  const keys = (h / d) * (w / d);
  // kv = conv([oneHot, l, background]) with stride d: the one-hot part as gathered weight rows.
  const kvWeight = hostParam(params, `${prefix}.kv.w`);
  const k = cfg.codebookSize;
  const fromCodes = emitOneHotConv(g, `${prefix}.kv.codes`, codes, l, convWeightInputSlice(kvWeight, 0, k), params.get(`${prefix}.kv.b`), { stride: d, padding: [0, 0, 0, 0] });
  const rest = new Map([[`${prefix}.kv.rest.w`, convWeightInputSlice(kvWeight, k, kvWeight.shape[2])]]);
  const fromFeatures = emitConv(g, rest, `${prefix}.kv.rest`, emitConcat(g, [l, background]), { stride: d, padding: 'valid' });
  const kv = emitElu(g, emitAdd(g, fromCodes, fromFeatures));
  const key = g.reshape(emitConv(g, params, `${prefix}.key`, kv).value, [0, a.keyChannels, keys]); // [B, kc, keys]
  const value = g.reshape(emitConv(g, params, `${prefix}.value`, kv).value, [0, a.valueChannels, keys]); // [B, vc, keys]
  const qHidden = emitElu(g, emitConv(g, params, `${prefix}.q`, emitConcat(g, [l, background])));
  const query = g.transpose(g.reshape(emitConv(g, params, `${prefix}.query`, qHidden).value, [0, a.keyChannels, h * w]), [0, 2, 1]); // [B, hw, kc]
  const maskValues = attentionMask(h, w, d);
  const maskBias = Float32Array.from(maskValues, (m) => (1 - m) * -1e9);
  const mask = g.initializer(`${prefix}.mask`, [1, h * w, keys], maskValues);
  const scores = g.mul(g.matMul(query, key), g.scalar(1 / Math.sqrt(a.keyChannels)));
  const masked = g.add(scores, g.initializer(`${prefix}.mask_bias`, [1, h * w, keys], maskBias));
  const weights = g.mul(g.softmax(masked, 2), mask); // [B, hw, keys]
  const out = g.matMul(value, g.transpose(weights, [0, 2, 1])); // [B, vc, hw]
  return feature(g.reshape(out, [0, a.valueChannels, h, w]), a.valueChannels, h, w);
}


/**
 * `dropout`: training graphs' channel dropout after each gated block's hidden ELU (as pixelsnail.ts).
 * `nllForm`: 'logsumexp' (training graphs) computes the NLL from the NCHW logits without a log-softmax
 * (../../onnx/emit-blocks.ts emitNllFromLogitsNchw); the default keeps the log-softmax form the scoring
 * graphs were calibrated with.
 */
export function emitPixelSnail(params: HostParams, cfg: PixelSnailConfig, output: PriorOutput, dropout?: DropoutHook, nllForm: 'logsoftmax' | 'logsumexp' = 'logsoftmax'): GraphBuilder {
  const g = new GraphBuilder(`pixelsnail_${output}`);
  const { height: h, width: w, codebookSize: k } = cfg;
  const codes = g.input('codes', DataType.INT32, ['batch', h, w]);
  const pos = g.input('position', DataType.FLOAT, ['batch']);
  const posColumn = emitPositionColumn(g, pos);
  const background = feature(emitBatchBroadcast(g, g.initializer('background', [1, 2, h, w], backgroundValues(h, w)), codes, [2, h, w]), 2, h, w);

  // The input convolutions see only the one-hot codes: gathered weight rows, no one-hot tensor.
  const inputConv = (prefix: string, padding: Pad4) => emitOneHotConv(g, prefix, codes, cfg, hostParam(params, `${prefix}.w`), params.get(`${prefix}.b`), { padding });
  let u = emitShiftDown(g, inputConv('in.u', PADDING.down));
  let l = emitAdd(g, emitShiftDown(g, inputConv('in.lv', [0, 0, 1, 1])), emitShiftRight(g, inputConv('in.lh', [1, 0, 0, 0])));
  for (let b = 0; b < cfg.blocks; b++) {
    for (let r = 0; r < cfg.resBlocksPerBlock; r++) {
      u = emitGatedCausal(g, params, `block${b}.res${r}.u`, 'down', u, posColumn, cfg, undefined, dropout);
      l = emitGatedCausal(g, params, `block${b}.res${r}.l`, 'downright', l, posColumn, cfg, u, dropout);
    }
    if (cfg.attention !== null) {
      const attended = emitCausalAttention(g, params, `block${b}.attn`, codes, l, background, cfg);
      l = emitGatedCausal(g, params, `block${b}.out`, 'pointwise', l, posColumn, cfg, attended, dropout);
    }
  }
  const logitsNchw = emitConv(g, params, 'out', emitElu(g, l));
  if (output === 'nll' && nllForm === 'logsumexp') {
    g.output(emitNllFromLogitsNchw(g, logitsNchw, codes), 'nll', DataType.FLOAT, ['batch', h, w]);
    return g;
  }
  const logits = g.transpose(logitsNchw.value, [0, 2, 3, 1]);
  if (output === 'logits') {
    g.output(logits, 'logits', DataType.FLOAT, ['batch', h, w, k]);
  } else {
    g.output(emitNllFromLogits(g, logits, codes, k), 'nll', DataType.FLOAT, ['batch', h, w]);
  }
  return g;
}
