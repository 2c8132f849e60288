/**
 * The two networks of latent space restoration (VQ-VAE + autoregressive prior) as loaded from a
 * weights folder, and the batched inference steps shared by the sample score, the pixel score, the
 * calibration and the worker job: slices → code maps, code maps → per-code NLL, code maps → images.
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
  vqvaeDecodeCodes,
  vqvaeEncodeCodes,
  vqvaeLatentSize,
  type ParamMap,
  type PixelSnailConfig,
  type VqvaeConfig,
} from '../../models/index.js';

export const VQVAE_NAME = 'vqvae';
export const PRIOR_NAME = 'pixelsnail';

export interface VqvaeNetwork {
  readonly cfg: VqvaeConfig;
  readonly params: ParamMap;
}

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

/** Reads a tensor's values and disposes it. */
function take<T extends Float32Array | Int32Array>(t: tf.Tensor): T {
  try {
    return t.dataSync() as T;
  } finally {
    t.dispose();
  }
}

/** Batches of at most `size` items: [start, end) pairs. */
export function batches(count: number, size: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let start = 0; start < count; start += size) out.push([start, Math.min(count, start + size)]);
  return out;
}

/**
 * Nearest-code maps of `count` normalised slices (`images` count×S×S, S = the VQ-VAE input size):
 * int32 [count, h, w] flattened.
 */
export function encodeSlices(vqvae: VqvaeNetwork, images: Float32Array, positions: Float32Array, batchSize = 16): Int32Array {
  const size = vqvae.cfg.inputSize;
  const plane = size * size;
  const count = positions.length;
  if (images.length !== count * plane) throw new RangeError(`encodeSlices: ${images.length} values for ${count} slices of ${size}×${size}`);
  const latent = vqvaeLatentSize(vqvae.cfg);
  const out = new Int32Array(count * latent * latent);
  for (const [a, b] of batches(count, batchSize)) {
    const codes = take<Int32Array>(
      tf.tidy(() =>
        vqvaeEncodeCodes(
          vqvae.params,
          vqvae.cfg,
          tf.tensor4d(images.subarray(a * plane, b * plane), [b - a, size, size, 1]),
          tf.tensor1d(positions.subarray(a, b)),
        ),
      ),
    );
    out.set(codes, a * latent * latent);
  }
  return out;
}

/** Decoded images of code maps (`codes` count×h×w, one position per map): float32 [count, S, S] flattened. */
export function decodeCodeMaps(vqvae: VqvaeNetwork, codes: Int32Array, positions: Float32Array, batchSize = 16): Float32Array {
  const latent = vqvaeLatentSize(vqvae.cfg);
  const cells = latent * latent;
  const size = vqvae.cfg.inputSize;
  const count = positions.length;
  if (codes.length !== count * cells) throw new RangeError(`decodeCodeMaps: ${codes.length} codes for ${count} maps of ${latent}×${latent}`);
  const out = new Float32Array(count * size * size);
  for (const [a, b] of batches(count, batchSize)) {
    const images = take<Float32Array>(
      tf.tidy(() =>
        vqvaeDecodeCodes(
          vqvae.params,
          vqvae.cfg,
          tf.tensor3d(codes.subarray(a * cells, b * cells), [b - a, latent, latent], 'int32'),
          tf.tensor1d(positions.subarray(a, b)),
        ),
      ),
    );
    out.set(images, a * size * size);
  }
  return out;
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
