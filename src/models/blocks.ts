/**
 * Network building blocks as pure functions over NHWC tensors and a flat parameter map.
 * Only ops with kernels (and, with src/engine/gradients.ts, gradients) on cpu and wasm are used.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng, type Rng } from '../engine/random.js';
import { param, type ParamMap } from './params.js';

export interface ForwardOptions {
  /** Dropout on while training; off (deterministic) otherwise. */
  training: boolean;
  /** Seed of the dropout masks of this forward pass (ignored when not training). */
  seed?: number;
}

/** Hands out one seed per dropout site, in call order, so a forward pass is reproducible. */
export interface DropoutContext {
  training: boolean;
  rate: number;
  rng: Rng | null;
}

export function dropoutContext(opts: ForwardOptions, rate: number): DropoutContext {
  const active = opts.training && rate > 0;
  return { training: opts.training, rate, rng: active ? createRng(opts.seed ?? 0) : null };
}

/**
 * Channel dropout (a whole feature map per sample, like PyTorch's Dropout2d): the mask is the same
 * at every position, so it cannot leak information across positions in the causal prior.
 */
export function channelDropout(x: tf.Tensor4D, ctx: DropoutContext): tf.Tensor4D {
  if (ctx.rng === null) return x;
  const [b, , , c] = x.shape;
  return tf.dropout(x, ctx.rate, [b, 1, 1, c], ctx.rng.seed()) as tf.Tensor4D;
}

export type Pad4 = [top: number, bottom: number, left: number, right: number];

/** conv2d with `w` = `${prefix}.w` and an optional `${prefix}.b`. */
export function conv(
  params: ParamMap,
  prefix: string,
  x: tf.Tensor4D,
  opts: { stride?: number; padding?: 'same' | 'valid' } = {},
): tf.Tensor4D {
  const w = param(params, `${prefix}.w`) as unknown as tf.Tensor4D;
  let y = tf.conv2d(x, w, opts.stride ?? 1, opts.padding ?? 'same');
  const b = params[`${prefix}.b`];
  if (b !== undefined) y = tf.add(y, b);
  return y;
}

/** Zero padding of the spatial axes. */
export function padSpatial(x: tf.Tensor4D, [top, bottom, left, right]: Pad4): tf.Tensor4D {
  if (top === 0 && bottom === 0 && left === 0 && right === 0) return x;
  return tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]);
}

/** Largest divisor of `channels` that is ≤ `maxGroups`. */
export function groupsFor(channels: number, maxGroups: number): number {
  for (let g = Math.min(maxGroups, channels); g > 1; g--) if (channels % g === 0) return g;
  return 1;
}

/**
 * GroupNorm (Wu & He 2018) with scale `${prefix}.g` and shift `${prefix}.b`: statistics per sample
 * and group of channels over all positions, so train and inference behave the same and results do
 * not depend on what else is in the batch.
 */
export function groupNorm(params: ParamMap, prefix: string, x: tf.Tensor4D, maxGroups: number, eps = 1e-5): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const g = groupsFor(c, maxGroups);
  const grouped = tf.reshape(x, [b, h, w, g, c / g]);
  const { mean, variance } = tf.moments(grouped, [1, 2, 4], true);
  const normed = tf.reshape(tf.div(tf.sub(grouped, mean), tf.sqrt(tf.add(variance, eps))), [b, h, w, c]);
  return tf.add(tf.mul(normed, param(params, `${prefix}.g`)), param(params, `${prefix}.b`));
}

/** Gated linear unit over channels: first half · σ(second half). */
export function glu(x: tf.Tensor4D): tf.Tensor4D {
  const [a, b] = tf.split(x, 2, 3) as [tf.Tensor4D, tf.Tensor4D];
  return tf.mul(a, tf.sigmoid(b));
}

/** A constant plane per sample holding its condition value: [B] → [B, h, w, 1]. */
export function conditionPlane(pos: tf.Tensor1D, h: number, w: number): tf.Tensor4D {
  return tf.mul(tf.reshape(pos, [-1, 1, 1, 1]), tf.ones([1, h, w, 1]));
}

/**
 * Per-channel additive conditioning, `pos · w + b` with `${prefix}.w`, `${prefix}.b` of [C]:
 * exactly a 1×1 convolution of the constant condition plane, at no spatial cost. [B] → [B,1,1,C].
 */
export function conditionBias(params: ParamMap, prefix: string, pos: tf.Tensor1D): tf.Tensor4D {
  const w = param(params, `${prefix}.w`);
  const b = param(params, `${prefix}.b`);
  return tf.add(tf.mul(tf.reshape(pos, [-1, 1, 1, 1]), tf.reshape(w, [1, 1, 1, -1])), tf.reshape(b, [1, 1, 1, -1]));
}

/**
 * One-hot float32 encoding. tfjs-backend-wasm 4.22's OneHot ignores a float32 dtype and writes
 * int32 bit patterns (1 reads as 1.4e-45), so build it as int32 and cast.
 */
export function oneHotFloat(indices: tf.Tensor, depth: number): tf.Tensor {
  return tf.cast(tf.oneHot(tf.cast(indices, 'int32'), depth), 'float32');
}

/** Shifts the map down by one row (zeros enter at the top). */
export function shiftDown(x: tf.Tensor4D): tf.Tensor4D {
  const [, h] = x.shape;
  return padSpatial(tf.slice(x, [0, 0, 0, 0], [-1, h - 1, -1, -1]), [1, 0, 0, 0]);
}

/** Shifts the map right by one column (zeros enter at the left). */
export function shiftRight(x: tf.Tensor4D): tf.Tensor4D {
  const [, , w] = x.shape;
  return padSpatial(tf.slice(x, [0, 0, 0, 0], [-1, -1, w - 1, -1]), [0, 0, 1, 0]);
}

/** −log p(code | prefix) in nats per position from logits [B,h,w,K] and codes [B,h,w]. */
export function nllFromLogits(logits: tf.Tensor4D, codes: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => {
    const k = logits.shape[3];
    const logp = tf.logSoftmax(logits);
    return tf.neg(tf.sum(tf.mul(logp, oneHotFloat(codes, k)), 3)) as tf.Tensor3D;
  });
}
