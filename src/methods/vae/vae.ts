/**
 * The convolutional VAE baseline as parameter specs + pure forward functions. The convolutional
 * encoder and decoder are the VQ-VAE's own (src/models/vqvae.ts, same parameter names, same slice
 * position conditioning); between them, instead of the codebook:
 *
 *   encoder grid [B,h,w,Cd] → flatten → dense → μ [B,L], dense → log σ² [B,L]
 *   z = μ + σ·ε (ε ~ N(0, I), seeded) while training; z = μ at inference (as Zimmerer et al. evaluate)
 *   z → dense → [B,h,w,Cd] → VQ-VAE decoder → x̂
 *
 * Likelihood p(x | z) = Π N(x_i; x̂_i, σ²) with σ = cfg.recStd. Per slice:
 *   KL  = ½ Σ_l (μ² + σ_l² − 1 − log σ_l²)                    (closed form against N(0, I))
 *   rec = Σ_i (x_i − x̂_i)² / (2σ²)                            (− log p minus its constant)
 * The dropped constant P·(log σ + ½ log 2π) (P pixels) is the same for every slice, so it changes
 * no ranking and keeps both terms ≥ 0 (the sample calibration expects non-negative scores).
 * The training loss is the negative ELBO per pixel, mean over the batch: (KL + rec) / P. Dividing
 * by P leaves the optimum alone and keeps gradients O(1) under the grad-value clip of 1.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng } from '../../engine/random.js';
import type { ForwardOptions } from '../../models/blocks.js';
import { initParams, param, ParamSpecList, type ParamMap, type ParamSpec } from '../../models/params.js';
import { vaeConvConfig, vaeFlatSize, vaeGridSize, type VaeConfig } from './config.js';
import { CODEBOOK, vqvaeDecode, vqvaeEncode, vqvaeParamSpecs } from '../../models/vqvae.js';

/** Names, shapes, initialisation and FLOPs of every parameter implied by the config. */
export function vaeParamSpecs(cfg: VaeConfig): ParamSpec[] {
  const list = new ParamSpecList();
  for (const s of vqvaeParamSpecs(vaeConvConfig(cfg))) {
    if (s.name !== CODEBOOK) list.add(s.name, s.shape, s.init, s.flops);
  }
  const flat = vaeFlatSize(cfg);
  const l = cfg.latentDim;
  list.add('enc.mu.w', [flat, l], { kind: 'normal', std: 1 / Math.sqrt(flat) }, 2 * flat * l);
  list.add('enc.mu.b', [l], { kind: 'zeros' });
  // Small start for log σ²: the posterior starts near N(μ, 1) instead of with random scales.
  list.add('enc.logvar.w', [flat, l], { kind: 'normal', std: 0.1 / Math.sqrt(flat) }, 2 * flat * l);
  list.add('enc.logvar.b', [l], { kind: 'zeros' });
  list.add('dec.dense.w', [l, flat], { kind: 'normal', std: 1 / Math.sqrt(l) }, 2 * flat * l);
  list.add('dec.dense.b', [flat], { kind: 'zeros' });
  return list.specs;
}

export function initVae(cfg: VaeConfig, seed: number | string): ParamMap {
  return initParams(vaeParamSpecs(cfg), seed);
}

function dense(params: ParamMap, prefix: string, x: tf.Tensor2D): tf.Tensor2D {
  return tf.add(tf.matMul(x, param(params, `${prefix}.w`) as unknown as tf.Tensor2D), param(params, `${prefix}.b`));
}

/** Posterior parameters: x [B,H,W,C], pos [B] → μ, log σ² [B,L]. */
export function vaeEncode(
  params: ParamMap,
  cfg: VaeConfig,
  x: tf.Tensor4D,
  pos: tf.Tensor1D,
  opts: ForwardOptions = { training: false },
): { mu: tf.Tensor2D; logvar: tf.Tensor2D } {
  return tf.tidy(() => {
    const { z } = vqvaeEncode(params, vaeConvConfig(cfg), x, pos, opts);
    const flat = tf.reshape(z, [z.shape[0], -1]) as tf.Tensor2D;
    return { mu: dense(params, 'enc.mu', flat), logvar: dense(params, 'enc.logvar', flat) };
  });
}

/** Decoder: z [B,L], pos [B] → x̂ [B,H,W,C]. */
export function vaeDecode(params: ParamMap, cfg: VaeConfig, z: tf.Tensor2D, pos: tf.Tensor1D, opts: ForwardOptions = { training: false }): tf.Tensor4D {
  if (z.shape[1] !== cfg.latentDim) throw new Error(`VAE decoder input must be [B,${cfg.latentDim}], got [${z.shape.join(',')}]`);
  return tf.tidy(() => {
    const g = vaeGridSize(cfg);
    const grid = tf.reshape(dense(params, 'dec.dense', z), [z.shape[0], g, g, cfg.denseChannels]) as tf.Tensor4D;
    return vqvaeDecode(params, vaeConvConfig(cfg), grid, pos, opts);
  });
}

/** KL(N(μ, σ²) ‖ N(0, I)) per sample: ½ Σ (μ² + exp(log σ²) − 1 − log σ²), [B,L] → [B]. */
export function klDivergence(mu: tf.Tensor2D, logvar: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => tf.mul(tf.sum(tf.sub(tf.add(tf.square(mu), tf.exp(logvar)), tf.add(logvar, 1)), 1), 0.5) as tf.Tensor1D);
}

/** Standard normal noise of shape [rows, cols] from the seeded stream (same seed, same values). */
export function reparameterisationNoise(rows: number, cols: number, seed: number): Float32Array {
  const rng = createRng(`${seed}:reparameterise`);
  return Float32Array.from({ length: rows * cols }, () => rng.normal());
}

/** z = μ + exp(½ log σ²) · ε with seeded ε. */
export function reparameterise(mu: tf.Tensor2D, logvar: tf.Tensor2D, seed: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, l] = mu.shape;
    const eps = tf.tensor2d(reparameterisationNoise(b, l, seed), [b, l]);
    return tf.add(mu, tf.mul(tf.exp(tf.mul(logvar, 0.5)), eps));
  });
}

export interface VaeTerms {
  /** KL term per sample, [B]. */
  kl: tf.Tensor1D;
  /** Σ (x − x̂)² / (2σ²) per sample, [B]. */
  rec: tf.Tensor1D;
  xhat: tf.Tensor4D;
  mu: tf.Tensor2D;
  logvar: tf.Tensor2D;
}

export interface VaeForwardOptions extends ForwardOptions {
  /** Draw z with the reparameterisation (seeded by `seed`); false: z = μ. Default: `training`. */
  sample?: boolean;
}

/** The two ELBO terms of every sample; differentiable w.r.t. the parameters and the input. */
export function vaeTerms(params: ParamMap, cfg: VaeConfig, x: tf.Tensor4D, pos: tf.Tensor1D, opts: VaeForwardOptions = { training: false }): VaeTerms {
  return tf.tidy(() => {
    const { mu, logvar } = vaeEncode(params, cfg, x, pos, opts);
    const z = opts.sample ?? opts.training ? reparameterise(mu, logvar, opts.seed ?? 0) : mu;
    const xhat = vaeDecode(params, cfg, z, pos, opts);
    const kl = klDivergence(mu, logvar);
    const rec = tf.div(tf.sum(tf.square(tf.sub(x, xhat)), [1, 2, 3]), 2 * cfg.recStd ** 2) as tf.Tensor1D;
    return { kl, rec, xhat, mu, logvar };
  });
}

export interface VaeLoss {
  /** mean over the batch of (KL + rec) / pixels: the negative ELBO per pixel (constant dropped). */
  loss: tf.Scalar;
  /** mean |x̂ − x| (comparable with the VQ-VAE's rec). */
  l1: tf.Scalar;
  /** mean KL per sample (nats). */
  kl: tf.Scalar;
  /** mean rec term per sample (nats, constant dropped). */
  recNll: tf.Scalar;
  xhat: tf.Tensor4D;
}

/** Full forward with the training loss (z sampled while training). */
export function vaeLoss(params: ParamMap, cfg: VaeConfig, x: tf.Tensor4D, pos: tf.Tensor1D, opts: VaeForwardOptions = { training: true }): VaeLoss {
  return tf.tidy(() => {
    const t = vaeTerms(params, cfg, x, pos, opts);
    const pixels = x.shape[1] * x.shape[2] * x.shape[3];
    const loss = tf.div(tf.mean(tf.add(t.kl, t.rec)), pixels) as tf.Scalar;
    return { loss, l1: tf.mean(tf.abs(tf.sub(t.xhat, x))) as tf.Scalar, kl: tf.mean(t.kl) as tf.Scalar, recNll: tf.mean(t.rec) as tf.Scalar, xhat: t.xhat };
  });
}
