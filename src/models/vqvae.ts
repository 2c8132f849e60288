/**
 * The VQ-VAE of Naval Marimont & Tarroni 2021 as parameter specs + pure forward functions.
 *
 * Encoder: 7×7 conv (padded) of [slice, position plane] → C0, norm; per level: gated residual
 * blocks → 5×5 stride-2 conv → norm; one more gated block; 1×1 conv to D. Decoder: 3×3 conv of
 * [zq, position plane] → C_L, norm; per level: gated blocks → 2× upsample (nearest + 3×3 conv, or
 * 6×6 stride-2 transposed conv) → norm; one gated block; ELU; 1×1 conv to the image (linear).
 *
 * Gated residual block: h = conv1(elu(norm(x) + cond(pos))); elu; channel dropout; conv2 → 2C;
 * norm; GLU; + x.
 *
 * Normalisation: GroupNorm instead of the paper's BatchNorm. Training here runs at batch ≤ 8 (wasm
 * memory), where batch statistics are noisy, and at inference a batch holds 15 restorations of one
 * slice, which BatchNorm in batch mode would couple and in eval mode would leave to running averages
 * that drift from the training statistics. GroupNorm is per sample: identical in training and
 * inference, no state to save. Because a per-sample norm maps a constant plane to zero, the slice
 * position is added *after* the norm, as a learned per-channel bias `pos·w + b` (equal to a 1×1
 * conv of the concatenated position plane), rather than concatenated before it.
 */
import * as tf from '@tensorflow/tfjs';
import { vqvaeLatentSize, vqvaeLevels, type VqvaeConfig } from './config.js';
import {
  channelDropout,
  conditionBias,
  conditionPlane,
  conv,
  dropoutContext,
  glu,
  groupNorm,
  type DropoutContext,
  type ForwardOptions,
} from './blocks.js';
import { initParams, param, ParamSpecList, type ParamMap, type ParamSpec } from './params.js';
import { upsampleNearest2x } from '../engine/upsample.js';
import { lookupCodes, nearestCodes, quantize } from '../engine/vq.js';

export const CODEBOOK = 'codebook.E';

function addGatedBlockSpecs(list: ParamSpecList, prefix: string, channels: number, positions: number, cfg: VqvaeConfig): void {
  list.norm(`${prefix}.norm1`, channels);
  if (cfg.condChannels === 1) {
    list.add(`${prefix}.cond.w`, [channels], { kind: 'zeros' });
    list.add(`${prefix}.cond.b`, [channels], { kind: 'zeros' });
  }
  list.conv(`${prefix}.conv1`, 3, 3, channels, channels, positions, true);
  list.conv(`${prefix}.conv2`, 3, 3, channels, 2 * channels, positions, false);
  list.norm(`${prefix}.norm2`, 2 * channels);
}

/** Names, shapes, initialisation and FLOPs of every parameter implied by the config. */
export function vqvaeParamSpecs(cfg: VqvaeConfig): ParamSpec[] {
  const list = new ParamSpecList();
  const ch = cfg.channels;
  const levels = vqvaeLevels(cfg);
  const side = (level: number) => cfg.inputSize / 2 ** level;
  const area = (level: number) => side(level) ** 2;

  list.conv('enc.stem', 7, 7, cfg.inChannels + cfg.condChannels, ch[0], area(0), false);
  list.norm('enc.stem.norm', ch[0]);
  for (let l = 0; l < levels; l++) {
    for (let k = 0; k < cfg.blocksPerLevel; k++) addGatedBlockSpecs(list, `enc.level${l}.block${k}`, ch[l], area(l), cfg);
    list.conv(`enc.level${l}.down`, 5, 5, ch[l], ch[l + 1], area(l + 1), false);
    list.norm(`enc.level${l}.down.norm`, ch[l + 1]);
  }
  addGatedBlockSpecs(list, 'enc.out.block', ch[levels], area(levels), cfg);
  list.conv('enc.preq', 1, 1, ch[levels], cfg.codeDim, area(levels), true);

  const k = cfg.codebookSize;
  list.add(CODEBOOK, [k, cfg.codeDim], { kind: 'uniform', lo: -1 / k, hi: 1 / k });

  list.conv('dec.stem', 3, 3, cfg.codeDim + cfg.condChannels, ch[levels], area(levels), false);
  list.norm('dec.stem.norm', ch[levels]);
  for (let l = levels; l >= 1; l--) {
    for (let b = 0; b < cfg.blocksPerLevel; b++) addGatedBlockSpecs(list, `dec.level${l}.block${b}`, ch[l], area(l), cfg);
    if (cfg.upsample === 'nearest-conv') {
      list.conv(`dec.level${l}.up`, 3, 3, ch[l], ch[l - 1], area(l - 1), false);
    } else {
      // conv2dTranspose filter layout is [kh, kw, out, in]; 6×6 stride 2 = 9 taps per output pixel.
      const w = `dec.level${l}.up.w`;
      list.add(w, [6, 6, ch[l - 1], ch[l]], { kind: 'normal', std: 1 / Math.sqrt(9 * ch[l]) }, 2 * area(l - 1) * 9 * ch[l] * ch[l - 1]);
    }
    list.norm(`dec.level${l}.up.norm`, ch[l - 1]);
  }
  addGatedBlockSpecs(list, 'dec.out.block', ch[0], area(0), cfg);
  list.conv('dec.out', 1, 1, ch[0], cfg.inChannels, area(0), true);
  return list.specs;
}

export function initVqvae(cfg: VqvaeConfig, seed: number | string): ParamMap {
  return initParams(vqvaeParamSpecs(cfg), seed);
}

function gatedBlock(
  params: ParamMap,
  prefix: string,
  x: tf.Tensor4D,
  pos: tf.Tensor1D,
  cfg: VqvaeConfig,
  drop: DropoutContext,
): tf.Tensor4D {
  let h = groupNorm(params, `${prefix}.norm1`, x, cfg.normGroups);
  if (cfg.condChannels === 1) h = tf.add(h, conditionBias(params, `${prefix}.cond`, pos));
  h = tf.elu(conv(params, `${prefix}.conv1`, tf.elu(h)));
  h = channelDropout(h, drop);
  h = groupNorm(params, `${prefix}.norm2`, conv(params, `${prefix}.conv2`, h), cfg.normGroups);
  return tf.add(glu(h), x);
}

function withPositionPlane(x: tf.Tensor4D, pos: tf.Tensor1D, cfg: VqvaeConfig): tf.Tensor4D {
  if (cfg.condChannels === 0) return x;
  const [, h, w] = x.shape;
  return tf.concat([x, conditionPlane(pos, h, w)], 3);
}

function checkImage(x: tf.Tensor4D, pos: tf.Tensor1D, cfg: VqvaeConfig): void {
  const [b, h, w, c] = x.shape;
  if (h !== cfg.inputSize || w !== cfg.inputSize || c !== cfg.inChannels) {
    throw new Error(`VQ-VAE input must be [B,${cfg.inputSize},${cfg.inputSize},${cfg.inChannels}], got [${x.shape.join(',')}]`);
  }
  if (pos.shape[0] !== b) throw new Error(`slice positions: expected ${b} values, got ${pos.shape[0]}`);
}

/** Pre-quantisation encodings: x [B,H,W,C], pos [B] → z [B,h,w,D]. */
export function vqvaeEncode(
  params: ParamMap,
  cfg: VqvaeConfig,
  x: tf.Tensor4D,
  pos: tf.Tensor1D,
  opts: ForwardOptions = { training: false },
): { z: tf.Tensor4D } {
  checkImage(x, pos, cfg);
  const drop = dropoutContext(opts, cfg.dropout);
  const z = tf.tidy(() => {
    let h = groupNorm(params, 'enc.stem.norm', conv(params, 'enc.stem', withPositionPlane(x, pos, cfg)), cfg.normGroups);
    for (let l = 0; l < vqvaeLevels(cfg); l++) {
      for (let k = 0; k < cfg.blocksPerLevel; k++) h = gatedBlock(params, `enc.level${l}.block${k}`, h, pos, cfg, drop);
      h = groupNorm(params, `enc.level${l}.down.norm`, conv(params, `enc.level${l}.down`, h, { stride: 2 }), cfg.normGroups);
    }
    h = gatedBlock(params, 'enc.out.block', h, pos, cfg, drop);
    return conv(params, 'enc.preq', h);
  });
  return { z };
}

/** Decoder from (straight-through) quantised vectors: zq [B,h,w,D], pos [B] → x̂ [B,H,W,C]. */
export function vqvaeDecode(
  params: ParamMap,
  cfg: VqvaeConfig,
  zq: tf.Tensor4D,
  pos: tf.Tensor1D,
  opts: ForwardOptions = { training: false },
): tf.Tensor4D {
  const latent = vqvaeLatentSize(cfg);
  if (zq.shape[1] !== latent || zq.shape[2] !== latent || zq.shape[3] !== cfg.codeDim) {
    throw new Error(`VQ-VAE decoder input must be [B,${latent},${latent},${cfg.codeDim}], got [${zq.shape.join(',')}]`);
  }
  // A distinct stream from the encoder's, so encoder and decoder masks differ for one seed.
  const drop = dropoutContext({ ...opts, seed: (opts.seed ?? 0) + 0x9e3779b9 }, cfg.dropout);
  return tf.tidy(() => {
    let h = groupNorm(params, 'dec.stem.norm', conv(params, 'dec.stem', withPositionPlane(zq, pos, cfg)), cfg.normGroups);
    for (let l = vqvaeLevels(cfg); l >= 1; l--) {
      for (let k = 0; k < cfg.blocksPerLevel; k++) h = gatedBlock(params, `dec.level${l}.block${k}`, h, pos, cfg, drop);
      if (cfg.upsample === 'nearest-conv') {
        h = conv(params, `dec.level${l}.up`, upsampleNearest2x(h));
      } else {
        const [b, hh, ww] = h.shape;
        const w = param(params, `dec.level${l}.up.w`) as unknown as tf.Tensor4D;
        h = tf.conv2dTranspose(h, w, [b, 2 * hh, 2 * ww, w.shape[2]], 2, 'same');
      }
      h = groupNorm(params, `dec.level${l}.up.norm`, h, cfg.normGroups);
    }
    h = gatedBlock(params, 'dec.out.block', h, pos, cfg, drop);
    return conv(params, 'dec.out', tf.elu(h));
  });
}

/** Decodes code maps: indices [B,h,w] int32, pos [B] → x̂ [B,H,W,C]. */
export function vqvaeDecodeCodes(params: ParamMap, cfg: VqvaeConfig, indices: tf.Tensor3D, pos: tf.Tensor1D): tf.Tensor4D {
  return tf.tidy(() => {
    const zq = lookupCodes(indices, param(params, CODEBOOK) as unknown as tf.Tensor2D) as tf.Tensor4D;
    return vqvaeDecode(params, cfg, zq, pos);
  });
}

/** Nearest codes of the slices: x [B,H,W,C], pos [B] → [B,h,w] int32. Inference. */
export function vqvaeEncodeCodes(params: ParamMap, cfg: VqvaeConfig, x: tf.Tensor4D, pos: tf.Tensor1D): tf.Tensor3D {
  return tf.tidy(() => {
    const { z } = vqvaeEncode(params, cfg, x, pos);
    return nearestCodes(z, param(params, CODEBOOK) as unknown as tf.Tensor2D);
  });
}

export interface VqvaeLoss {
  /** rec + codebook + β·commit. */
  loss: tf.Scalar;
  /** mean |x̂ − x|. */
  rec: tf.Scalar;
  codebook: tf.Scalar;
  commit: tf.Scalar;
  indices: tf.Tensor3D;
  xhat: tf.Tensor4D;
}

/** Full forward with the training losses; differentiable w.r.t. every parameter. */
export function vqvaeLoss(
  params: ParamMap,
  cfg: VqvaeConfig,
  x: tf.Tensor4D,
  pos: tf.Tensor1D,
  opts: ForwardOptions = { training: true },
): VqvaeLoss {
  return tf.tidy(() => {
    const { z } = vqvaeEncode(params, cfg, x, pos, opts);
    const q = quantize(z, param(params, CODEBOOK) as unknown as tf.Tensor2D);
    const xhat = vqvaeDecode(params, cfg, q.zq, pos, opts);
    const rec = tf.mean(tf.abs(tf.sub(xhat, x))) as tf.Scalar;
    const loss = tf.addN([rec, q.codebookLoss, tf.mul(q.commitmentLoss, cfg.commitmentWeight)]) as tf.Scalar;
    return { loss, rec, codebook: q.codebookLoss, commit: q.commitmentLoss, indices: q.indices, xhat };
  });
}
