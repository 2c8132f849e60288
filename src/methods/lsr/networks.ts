/**
 * The two networks of latent space restoration (VQ-VAE + autoregressive prior) as loaded from a
 * weights folder, and the prior's batched inference steps shared by the sample score, the pixel score,
 * the calibration and the worker job: code maps → per-code NLL, code maps → logits (the VQ-VAE's steps,
 * slices → code maps → images, are the shared ones of src/inference/vqvae-steps.ts, re-exported here).
 *
 * Every function here takes and returns plain typed arrays; tensors live only inside tf.tidy (or are
 * disposed right after being read), so nothing leaks across calls.
 */
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { InputFileError } from '../../errors.js';
import {
  binaryPath,
  disposeParams,
  loadModel,
  manifestPath,
  priorLogits,
  priorNll,
  vqvaeLatentSize,
  type ParamMap,
  type PixelSnailConfig,
  type VqvaeConfig,
} from '../../models/index.js';
import { batches, take, type VqvaeNetwork } from '../../inference/vqvae-steps.js';

export { batches, decodeCodeMaps, encodeSlices, type VqvaeNetwork } from '../../inference/vqvae-steps.js';

export const VQVAE_NAME = 'vqvae';
export const PRIOR_NAME = 'pixelsnail';

export interface PriorNetwork {
  readonly cfg: PixelSnailConfig;
  readonly params: ParamMap;
}

export interface LsrNetworks {
  readonly vqvae: VqvaeNetwork;
  readonly prior: PriorNetwork;
}

/** Latent grid of the prior: height, width, positions per map, codebook size. */
export function latentGeometry(prior: PriorNetwork): { height: number; width: number; positions: number; codes: number } {
  const { height, width, codebookSize } = prior.cfg;
  return { height, width, positions: height * width, codes: codebookSize };
}

/**
 * Loads `<dir>/vqvae.{json,bin}` and `<dir>/pixelsnail.{json,bin}` and checks that they fit together
 * (same codebook size, the prior's grid = the VQ-VAE's latent grid). Errors name the file.
 */
export function loadLsrNetworks(dir: string): LsrNetworks {
  for (const name of [VQVAE_NAME, PRIOR_NAME]) {
    for (const file of [manifestPath(dir, name), binaryPath(dir, name)]) {
      if (!existsSync(file)) throw new InputFileError(file, `missing: the lsr method needs ${name}.json and ${name}.bin in ${dir}`);
    }
  }
  const vq = loadModel<VqvaeConfig>(dir, VQVAE_NAME, 'vqvae');
  let prior;
  try {
    prior = loadModel<PixelSnailConfig>(dir, PRIOR_NAME, 'pixelsnail');
  } catch (err) {
    disposeParams(vq.params);
    throw err;
  }
  const latent = vqvaeLatentSize(vq.config);
  const problem =
    prior.config.codebookSize !== vq.config.codebookSize
      ? `prior codebook size ${prior.config.codebookSize} differs from the VQ-VAE's ${vq.config.codebookSize}`
      : prior.config.height !== latent || prior.config.width !== latent
        ? `prior grid ${prior.config.height}×${prior.config.width} differs from the VQ-VAE latent grid ${latent}×${latent}`
        : null;
  if (problem !== null) {
    disposeParams(vq.params);
    disposeParams(prior.params);
    throw new InputFileError(manifestPath(dir, PRIOR_NAME), problem);
  }
  return { vqvae: { cfg: vq.config, params: vq.params }, prior: { cfg: prior.config, params: prior.params } };
}

export function disposeLsrNetworks(nets: LsrNetworks): void {
  disposeParams(nets.vqvae.params);
  disposeParams(nets.prior.params);
}

/** −log p(code | previous codes) in nats for every code of `count` maps: float32 [count, h, w] flattened. */
export function codeNlls(prior: PriorNetwork, codes: Int32Array, positions: Float32Array, batchSize = 32): Float32Array {
  const { height, width, positions: cells } = latentGeometry(prior);
  const count = positions.length;
  if (codes.length !== count * cells) throw new RangeError(`codeNlls: ${codes.length} codes for ${count} maps of ${height}×${width}`);
  const out = new Float32Array(count * cells);
  for (const [a, b] of batches(count, batchSize)) {
    const nll = take<Float32Array>(
      tf.tidy(() =>
        priorNll(
          prior.params,
          prior.cfg,
          tf.tensor3d(codes.subarray(a * cells, b * cells), [b - a, height, width], 'int32'),
          tf.tensor1d(positions.subarray(a, b)),
        ),
      ),
    );
    out.set(nll, a * cells);
  }
  return out;
}

/**
 * Prior logits of `count` maps for positions `from` … end (raster order): float32
 * [count, positions − from, K] flattened. One forward pass per batch of maps.
 */
export function priorLogitsFrom(prior: PriorNetwork, codes: Int32Array, positions: Float32Array, from: number): Float32Array {
  const { height, width, positions: cells, codes: k } = latentGeometry(prior);
  const count = positions.length;
  return take<Float32Array>(
    tf.tidy(() => {
      const logits = priorLogits(prior.params, prior.cfg, tf.tensor3d(codes, [count, height, width], 'int32'), tf.tensor1d(positions));
      const flat = tf.reshape(logits, [count, cells, k]);
      return from === 0 ? flat : tf.slice(flat, [0, from, 0], [count, cells - from, k]);
    }),
  );
}
