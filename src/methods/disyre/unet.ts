/**
 * The DISYRE restoration network as parameter specs and a TF.js forward function (NHWC). The ONNX
 * graph of the same computation is ./emit-unet.ts; ONNX Runtime runs training and inference, and this
 * TF.js forward pass exists for the parity test (test/disyre-unet.test.ts) and for initialisation.
 *
 *   cond [B, 2E] (sinusoidal t and z, ./embedding.ts) → dense → ELU → dense → ELU = c [B, H]
 *   x [B, S, S, 1] → conv3×3 'in' → for each level l: block 'enc<l>' (then a stride-2 conv 'down<l>'
 *   except at the last level); back up: conv3×3 'up<l>' at the coarse side, nearest 2× upsampling,
 *   concatenation with the encoder's output of level l, block 'dec<l>'; conv1×1 'out' → Δ;
 *   x̂ = x + Δ (the network predicts the correction of the input, the identity being its easy start).
 *   block(p): conv3×3 'p.conv1' + c·'p.cond.w' (per-channel bias from the conditions) → GroupNorm →
 *   ELU → conv3×3 'p.conv2' → GroupNorm → ELU.
 * The up-convolution runs before the upsampling (4× fewer multiply-adds than after it).
 */
import * as tf from '@tensorflow/tfjs';
import { conv, groupNorm } from '../../models/blocks.js';
import { initParams, param, ParamSpecList, type ParamMap, type ParamSpec } from '../../models/params.js';
import { upsampleNearest2x } from '../../engine/upsample.js';
import { condInputSize, hasSegmentationHead, levelSize, type DisyreConfig } from './config.js';

function addBlock(list: ParamSpecList, prefix: string, cin: number, cout: number, cond: number, positions: number): void {
  list.conv(`${prefix}.conv1`, 3, 3, cin, cout, positions, true);
  list.add(`${prefix}.cond.w`, [cond, cout], { kind: 'normal', std: 1 / Math.sqrt(cond) }, 2 * cond * cout);
  list.norm(`${prefix}.norm1`, cout);
  list.conv(`${prefix}.conv2`, 3, 3, cout, cout, positions, true);
  list.norm(`${prefix}.norm2`, cout);
}

/** Names, shapes, initialisation and FLOPs of every parameter the config implies. */
export function disyreParamSpecs(cfg: DisyreConfig): ParamSpec[] {
  const list = new ParamSpecList();
  const e = condInputSize(cfg);
  const h = cfg.condDim;
  list.add('cond.fc1.w', [e, h], { kind: 'normal', std: 1 / Math.sqrt(e) }, 2 * e * h);
  list.add('cond.fc1.b', [h], { kind: 'zeros' });
  list.add('cond.fc2.w', [h, h], { kind: 'normal', std: 1 / Math.sqrt(h) }, 2 * h * h);
  list.add('cond.fc2.b', [h], { kind: 'zeros' });
  const ch = cfg.channels;
  const last = ch.length - 1;
  const px = (l: number) => levelSize(cfg, l) ** 2;
  list.conv('in', 3, 3, 1, ch[0]!, px(0), true);
  for (let l = 0; l <= last; l++) {
    addBlock(list, `enc${l}`, ch[l]!, ch[l]!, h, px(l));
    if (l < last) list.conv(`down${l}`, 3, 3, ch[l]!, ch[l + 1]!, px(l + 1), true);
  }
  for (let l = last - 1; l >= 0; l--) {
    list.conv(`up${l}`, 3, 3, ch[l + 1]!, ch[l]!, px(l + 1), true);
    addBlock(list, `dec${l}`, 2 * ch[l]!, ch[l]!, h, px(l));
  }
  // A small start for the correction: x̂ ≈ x at first.
  list.conv('out', 1, 1, ch[0]!, 1, px(0), true, 0.1);
  if (hasSegmentationHead(cfg)) list.conv('seg', 1, 1, ch[0]!, 1, px(0), true);
  return list.specs;
}

export function initDisyre(cfg: DisyreConfig, seed: number | string): ParamMap {
  return initParams(disyreParamSpecs(cfg), seed);
}

function dense(params: ParamMap, prefix: string, x: tf.Tensor2D): tf.Tensor2D {
  return tf.add(tf.matMul(x, param(params, `${prefix}.w`) as unknown as tf.Tensor2D), param(params, `${prefix}.b`));
}

/** The conditioning vector c [B, H] of the blocks. */
export function disyreCondition(params: ParamMap, cond: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.elu(dense(params, 'cond.fc2', tf.elu(dense(params, 'cond.fc1', cond)))) as tf.Tensor2D);
}

function block(params: ParamMap, cfg: DisyreConfig, prefix: string, x: tf.Tensor4D, c: tf.Tensor2D): tf.Tensor4D {
  const cout = (param(params, `${prefix}.conv1.w`).shape as number[])[3]!;
  const bias = tf.reshape(tf.matMul(c, param(params, `${prefix}.cond.w`) as unknown as tf.Tensor2D), [-1, 1, 1, cout]);
  let h = tf.add(conv(params, `${prefix}.conv1`, x), bias) as tf.Tensor4D;
  h = tf.elu(groupNorm(params, `${prefix}.norm1`, h, cfg.normGroups));
  h = conv(params, `${prefix}.conv2`, h);
  return tf.elu(groupNorm(params, `${prefix}.norm2`, h, cfg.normGroups));
}

/** x̂ [B, S, S, 1] from the input x [B, S, S, 1] and the conditioning input cond [B, 2E]. */
export function disyreForward(params: ParamMap, cfg: DisyreConfig, x: tf.Tensor4D, cond: tf.Tensor2D): tf.Tensor4D {
  return tf.tidy(() => {
    const { xhat, seg } = disyreHeads(params, cfg, x, cond);
    seg?.dispose();
    return xhat;
  });
}

/** x̂ and, when the config has the head, the segmentation probability [B, S, S, 1] (sigmoid of 'seg'). */
export function disyreHeads(params: ParamMap, cfg: DisyreConfig, x: tf.Tensor4D, cond: tf.Tensor2D): { xhat: tf.Tensor4D; seg: tf.Tensor4D | null } {
  const heads = tf.tidy(() => {
    const c = disyreCondition(params, cond);
    const last = cfg.channels.length - 1;
    const skips: tf.Tensor4D[] = [];
    let h = conv(params, 'in', x);
    for (let l = 0; l <= last; l++) {
      h = block(params, cfg, `enc${l}`, h, c);
      skips.push(h);
      if (l < last) h = conv(params, `down${l}`, h, { stride: 2 });
    }
    for (let l = last - 1; l >= 0; l--) {
      h = upsampleNearest2x(conv(params, `up${l}`, h));
      h = block(params, cfg, `dec${l}`, tf.concat([h, skips[l]!], 3), c);
    }
    const xhat = tf.add(x, conv(params, 'out', h)) as tf.Tensor4D;
    return hasSegmentationHead(cfg) ? [xhat, tf.sigmoid(conv(params, 'seg', h)) as tf.Tensor4D] : [xhat];
  });
  return { xhat: heads[0]!, seg: heads[1] ?? null };
}
