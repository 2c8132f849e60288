/**
 * PixelSNAIL-style autoregressive prior over VQ-VAE code maps (raster order), as parameter specs +
 * pure forward functions. One pass gives the logits of every position.
 *
 * Causality (the output at position p depends only on codes at positions < p) is built from two
 * streams, as in PixelCNN++ / the paper's code, using shifted convolutions instead of masked
 * kernels (same receptive fields as masked type-A / type-B kernels, without the wasted zero taps):
 *  - the vertical stream u[i, j] sees only rows < i: "down" convs (2×3 kernel over rows i−1..i);
 *  - the horizontal stream l[i, j] sees rows < i and row i left of j: "down-right" convs (2×2
 *    over rows i−1..i, columns j−1..j) plus u through a 1×1 conv.
 * The first layer on the one-hot codes is shifted (down by one row / right by one column): the
 * type-A step that excludes the centre; every later conv includes its centre (type B) but only
 * sees features that are already strictly causal.
 *
 * Attention (single head, at the end of every block): keys/values are computed from
 * [one-hot codes, l, coordinates] on blocks of d×d positions (d = attention.downsample); the query
 * at p may use block Q only when the block's last position is < p (strict), so p never sees its
 * own code. Masked scores get −1e9 before the softmax and the softmax is multiplied by the 0/1
 * mask after it, so positions with nothing to attend to (p = 0) get exactly zero.
 *
 * No normalisation: a norm over positions would mix future into past. Dropout is channel-wise
 * (the same mask at every position). Every residual block adds a per-channel function of the
 * slice position.
 */
import * as tf from '@tensorflow/tfjs';
import type { PixelSnailConfig } from '../../models/config.js';
import {
  channelDropout,
  conditionBias,
  conv,
  dropoutContext,
  glu,
  nllFromLogits,
  oneHotFloat,
  padSpatial,
  shiftDown,
  shiftRight,
  type DropoutContext,
  type ForwardOptions,
  type Pad4,
} from '../../models/blocks.js';
import { initParams, ParamSpecList, type ParamMap, type ParamSpec } from '../../models/params.js';

export { nllFromLogits } from '../../models/blocks.js';

type CausalKind = 'down' | 'downright' | 'pointwise';

const KERNEL: Record<CausalKind, [number, number]> = { down: [2, 3], downright: [2, 2], pointwise: [1, 1] };
const PADDING: Record<CausalKind, Pad4> = { down: [1, 0, 1, 1], downright: [1, 0, 1, 0], pointwise: [0, 0, 0, 0] };

/** Residual-branch output convs start small so that the un-normalised stack starts near identity. */
const RESIDUAL_GAIN = 0.1;

function addGatedSpecs(
  list: ParamSpecList,
  prefix: string,
  kind: CausalKind,
  channels: number,
  positions: number,
  cfg: PixelSnailConfig,
  auxChannels: number,
): void {
  const [kh, kw] = KERNEL[kind];
  list.conv(`${prefix}.conv1`, kh, kw, channels, channels, positions, true);
  if (auxChannels > 0) list.conv(`${prefix}.aux`, 1, 1, auxChannels, channels, positions, false);
  if (cfg.condChannels === 1) {
    list.add(`${prefix}.cond.w`, [channels], { kind: 'zeros' });
    list.add(`${prefix}.cond.b`, [channels], { kind: 'zeros' });
  }
  list.conv(`${prefix}.conv2`, kh, kw, channels, 2 * channels, positions, true, RESIDUAL_GAIN);
}

export function pixelsnailParamSpecs(cfg: PixelSnailConfig): ParamSpec[] {
  const list = new ParamSpecList();
  const k = cfg.codebookSize;
  const c = cfg.channels;
  const n = cfg.height * cfg.width;
  list.conv('in.u', 2, 3, k, c, n, true);
  list.conv('in.lv', 1, 3, k, c, n, true);
  list.conv('in.lh', 2, 1, k, c, n, false);
  for (let b = 0; b < cfg.blocks; b++) {
    for (let r = 0; r < cfg.resBlocksPerBlock; r++) {
      addGatedSpecs(list, `block${b}.res${r}.u`, 'down', c, n, cfg, 0);
      addGatedSpecs(list, `block${b}.res${r}.l`, 'downright', c, n, cfg, c);
    }
    const a = cfg.attention;
    if (a !== null) {
      const d = a.downsample;
      list.conv(`block${b}.attn.kv`, d, d, k + c + 2, c, n / (d * d), true);
      list.conv(`block${b}.attn.key`, 1, 1, c, a.keyChannels, n / (d * d), true);
      list.conv(`block${b}.attn.value`, 1, 1, c, a.valueChannels, n / (d * d), true);
      list.conv(`block${b}.attn.q`, 1, 1, c + 2, c, n, true);
      list.conv(`block${b}.attn.query`, 1, 1, c, a.keyChannels, n, true);
      addGatedSpecs(list, `block${b}.out`, 'pointwise', c, n, cfg, a.valueChannels);
    }
  }
  list.conv('out', 1, 1, c, k, n, true);
  return list.specs;
}

export function initPixelSnail(cfg: PixelSnailConfig, seed: number | string): ParamMap {
  return initParams(pixelsnailParamSpecs(cfg), seed);
}

function causalConv(params: ParamMap, prefix: string, x: tf.Tensor4D, kind: CausalKind): tf.Tensor4D {
  return conv(params, prefix, padSpatial(x, PADDING[kind]), { padding: 'valid' });
}

function gatedCausal(
  params: ParamMap,
  prefix: string,
  kind: CausalKind,
  x: tf.Tensor4D,
  pos: tf.Tensor1D,
  cfg: PixelSnailConfig,
  drop: DropoutContext,
  aux?: tf.Tensor4D,
): tf.Tensor4D {
  let h = causalConv(params, `${prefix}.conv1`, tf.elu(x), kind);
  if (aux !== undefined) h = tf.add(h, conv(params, `${prefix}.aux`, tf.elu(aux), { padding: 'valid' }));
  if (cfg.condChannels === 1) h = tf.add(h, conditionBias(params, `${prefix}.cond`, pos));
  h = channelDropout(tf.elu(h), drop);
  return tf.add(glu(causalConv(params, `${prefix}.conv2`, h, kind)), x);
}

const maskCache = new Map<string, Float32Array>();

/**
 * 0/1 matrix [h·w, (h/d)·(w/d)]: query position p may attend key block Q iff the last position of
 * Q (its bottom-right code) comes strictly before p in raster order.
 */
export function attentionMask(height: number, width: number, downsample: number): Float32Array {
  const key = `${height}x${width}/${downsample}`;
  const cached = maskCache.get(key);
  if (cached !== undefined) return cached;
  const bh = height / downsample;
  const bw = width / downsample;
  const mask = new Float32Array(height * width * bh * bw);
  for (let p = 0; p < height * width; p++) {
    for (let qi = 0; qi < bh; qi++) {
      for (let qj = 0; qj < bw; qj++) {
        const last = (qi * downsample + downsample - 1) * width + qj * downsample + downsample - 1;
        if (last < p) mask[p * bh * bw + qi * bw + qj] = 1;
      }
    }
  }
  maskCache.set(key, mask);
  return mask;
}

/** Coordinates in [-0.5, 0.5) of every position: [1, h, w, 2]. */
function background(height: number, width: number): tf.Tensor4D {
  const data = new Float32Array(height * width * 2);
  for (let i = 0; i < height; i++) {
    for (let j = 0; j < width; j++) {
      data[2 * (i * width + j)] = (i - height / 2) / height;
      data[2 * (i * width + j) + 1] = (j - width / 2) / width;
    }
  }
  return tf.tensor4d(data, [1, height, width, 2]);
}

function causalAttention(
  params: ParamMap,
  prefix: string,
  oneHot: tf.Tensor4D,
  l: tf.Tensor4D,
  bg: tf.Tensor4D,
  cfg: PixelSnailConfig,
): tf.Tensor4D {
  const a = cfg.attention!;
  const [b, h, w] = l.shape;
  const d = a.downsample;
  const keys = (h / d) * (w / d);
  const bgBatch = tf.tile(bg, [b, 1, 1, 1]);
  const kv = tf.elu(conv(params, `${prefix}.kv`, tf.concat([oneHot, l, bgBatch], 3), { stride: d, padding: 'valid' }));
  const key = tf.reshape(conv(params, `${prefix}.key`, kv), [b, keys, a.keyChannels]);
  const value = tf.reshape(conv(params, `${prefix}.value`, kv), [b, keys, a.valueChannels]);
  const qHidden = tf.elu(conv(params, `${prefix}.q`, tf.concat([l, bgBatch], 3)));
  const query = tf.reshape(conv(params, `${prefix}.query`, qHidden), [b, h * w, a.keyChannels]);
  const mask = tf.tensor3d(attentionMask(h, w, d), [1, h * w, keys]);
  const scores = tf.mul(tf.matMul(query, key, false, true), 1 / Math.sqrt(a.keyChannels));
  const masked = tf.add(scores, tf.mul(tf.sub(1, mask), -1e9));
  const weights = tf.mul(tf.softmax(masked), mask);
  return tf.reshape(tf.matMul(weights, value), [b, h, w, a.valueChannels]);
}

function checkCodes(codes: tf.Tensor3D, pos: tf.Tensor1D, cfg: PixelSnailConfig): void {
  const [b, h, w] = codes.shape;
  if (h !== cfg.height || w !== cfg.width) {
    throw new Error(`prior input must be code maps [B,${cfg.height},${cfg.width}], got [${codes.shape.join(',')}]`);
  }
  if (codes.dtype !== 'int32') throw new Error(`code maps must be int32, got ${codes.dtype}`);
  if (pos.shape[0] !== b) throw new Error(`slice positions: expected ${b} values, got ${pos.shape[0]}`);
}

/** Logits of p(code at p | codes before p, position) for every position: codes [B,h,w] int32 → [B,h,w,K]. */
export function priorLogits(
  params: ParamMap,
  cfg: PixelSnailConfig,
  codes: tf.Tensor3D,
  pos: tf.Tensor1D,
  opts: ForwardOptions = { training: false },
): tf.Tensor4D {
  checkCodes(codes, pos, cfg);
  const drop = dropoutContext(opts, cfg.dropout);
  return tf.tidy(() => {
    const x = oneHotFloat(codes, cfg.codebookSize) as tf.Tensor4D;
    const bg = background(cfg.height, cfg.width);
    let u = shiftDown(causalConv(params, 'in.u', x, 'down'));
    let l: tf.Tensor4D = tf.add(
      shiftDown(conv(params, 'in.lv', padSpatial(x, [0, 0, 1, 1]), { padding: 'valid' })),
      shiftRight(conv(params, 'in.lh', padSpatial(x, [1, 0, 0, 0]), { padding: 'valid' })),
    );
    for (let b = 0; b < cfg.blocks; b++) {
      for (let r = 0; r < cfg.resBlocksPerBlock; r++) {
        u = gatedCausal(params, `block${b}.res${r}.u`, 'down', u, pos, cfg, drop);
        l = gatedCausal(params, `block${b}.res${r}.l`, 'downright', l, pos, cfg, drop, u);
      }
      if (cfg.attention !== null) {
        const attended = causalAttention(params, `block${b}.attn`, x, l, bg, cfg);
        l = gatedCausal(params, `block${b}.out`, 'pointwise', l, pos, cfg, drop, attended);
      }
    }
    return conv(params, 'out', tf.elu(l));
  });
}

/** NLL in nats of each code given the codes before it: [B,h,w]. */
export function priorNll(
  params: ParamMap,
  cfg: PixelSnailConfig,
  codes: tf.Tensor3D,
  pos: tf.Tensor1D,
  opts: ForwardOptions = { training: false },
): tf.Tensor3D {
  return tf.tidy(() => nllFromLogits(priorLogits(params, cfg, codes, pos, opts), codes));
}

/** Mean NLL (nats per code): the training loss of the prior. */
export function priorLoss(
  params: ParamMap,
  cfg: PixelSnailConfig,
  codes: tf.Tensor3D,
  pos: tf.Tensor1D,
  opts: ForwardOptions = { training: true },
): tf.Scalar {
  return tf.tidy(() => tf.mean(priorNll(params, cfg, codes, pos, opts)) as tf.Scalar);
}
