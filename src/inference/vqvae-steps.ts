/**
 * The VQ-VAE as loaded from a weights folder and its batched inference steps on TF.js, shared by the
 * methods built on it (lsr, lsgs; vae batches its slices the same way): slices → nearest-code maps,
 * code maps → images. Typed arrays in and out; tensors live only inside tf.tidy (or are disposed right
 * after being read), so nothing leaks across calls.
 */
import * as tf from '@tensorflow/tfjs';
import { vqvaeLatentSize, type VqvaeConfig } from '../models/config.js';
import type { ParamMap } from '../models/params.js';
import { vqvaeDecodeCodes, vqvaeEncodeCodes } from '../models/vqvae.js';

export interface VqvaeNetwork {
  readonly cfg: VqvaeConfig;
  readonly params: ParamMap;
}

/** Reads a tensor's values and disposes it. */
export function take<T extends Float32Array | Int32Array>(t: tf.Tensor): T {
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
