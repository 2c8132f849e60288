/**
 * The two networks of LSGS (VQ-VAE + transformer prior) as loaded from a weights folder, and the
 * batched transformer passes (typed arrays in and out; tensors only inside tf.tidy). Encoding and
 * decoding are those of the shared VQ-VAE steps (src/inference/vqvae-steps.ts).
 */
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { InputFileError } from '../../errors.js';
import {
  binaryPath,
  disposeParams,
  loadModel,
  manifestPath,
  transformerLogits,
  transformerNll,
  vqvaeLatentSize,
  type ParamMap,
  type TransformerConfig,
  type VqvaeConfig,
} from '../../models/index.js';
import { batches, take, type VqvaeNetwork } from '../../inference/vqvae-steps.js';

export const LSGS_VQVAE_NAME = 'vqvae';
export const TRANSFORMER_NAME = 'transformer';

export interface TransformerNetwork {
  readonly cfg: TransformerConfig;
  readonly params: ParamMap;
}

export interface LsgsNetworks {
  readonly vqvae: VqvaeNetwork;
  readonly transformer: TransformerNetwork;
}

/**
 * Loads `<dir>/vqvae.{json,bin}` and `<dir>/transformer.{json,bin}` and checks that they fit together
 * (same codebook size, the transformer's grid = the VQ-VAE's latent grid). Errors name the file.
 */
export function loadLsgsNetworks(dir: string): LsgsNetworks {
  for (const name of [LSGS_VQVAE_NAME, TRANSFORMER_NAME]) {
    for (const file of [manifestPath(dir, name), binaryPath(dir, name)]) {
      if (!existsSync(file)) throw new InputFileError(file, `missing: the lsgs method needs ${name}.json and ${name}.bin in ${dir}`);
    }
  }
  const vq = loadModel<VqvaeConfig>(dir, LSGS_VQVAE_NAME, 'vqvae');
  let tr;
  try {
    tr = loadModel<TransformerConfig>(dir, TRANSFORMER_NAME, 'transformer');
  } catch (err) {
    disposeParams(vq.params);
    throw err;
  }
  const latent = vqvaeLatentSize(vq.config);
  const problem =
    tr.config.codebookSize !== vq.config.codebookSize
      ? `transformer codebook size ${tr.config.codebookSize} differs from the VQ-VAE's ${vq.config.codebookSize}`
      : tr.config.height !== latent || tr.config.width !== latent
        ? `transformer grid ${tr.config.height}×${tr.config.width} differs from the VQ-VAE latent grid ${latent}×${latent}`
        : null;
  if (problem !== null) {
    disposeParams(vq.params);
    disposeParams(tr.params);
    throw new InputFileError(manifestPath(dir, TRANSFORMER_NAME), problem);
  }
  return { vqvae: { cfg: vq.config, params: vq.params }, transformer: { cfg: tr.config, params: tr.params } };
}

export function disposeLsgsNetworks(nets: LsgsNetworks): void {
  disposeParams(nets.vqvae.params);
  disposeParams(nets.transformer.params);
}

function check(net: TransformerNetwork, codes: Int32Array, count: number, what: string): number {
  const cells = net.cfg.height * net.cfg.width;
  if (codes.length !== count * cells) throw new RangeError(`${what}: ${codes.length} codes for ${count} maps of ${net.cfg.height}×${net.cfg.width}`);
  return cells;
}

/** Logits of every position of `count` maps: float32 [count, h·w, K] flattened. */
export function transformerLogitsOf(net: TransformerNetwork, codes: Int32Array, positions: Float32Array, batchSize = 32): Float32Array {
  const count = positions.length;
  const cells = check(net, codes, count, 'transformerLogitsOf');
  const { height, width, codebookSize: k } = net.cfg;
  const out = new Float32Array(count * cells * k);
  for (const [a, b] of batches(count, batchSize)) {
    const logits = take<Float32Array>(
      tf.tidy(() => transformerLogits(net.params, net.cfg, tf.tensor3d(codes.subarray(a * cells, b * cells), [b - a, height, width], 'int32'), tf.tensor1d(positions.subarray(a, b)))),
    );
    out.set(logits, a * cells * k);
  }
  return out;
}

/** NLL (nats) of every observed code of `count` maps under the transformer: float32 [count, h, w] flattened. */
export function transformerCodeNlls(net: TransformerNetwork, codes: Int32Array, positions: Float32Array, batchSize = 32): Float32Array {
  const count = positions.length;
  const cells = check(net, codes, count, 'transformerCodeNlls');
  const { height, width } = net.cfg;
  const out = new Float32Array(count * cells);
  for (const [a, b] of batches(count, batchSize)) {
    const nll = take<Float32Array>(
      tf.tidy(() => transformerNll(net.params, net.cfg, tf.tensor3d(codes.subarray(a * cells, b * cells), [b - a, height, width], 'int32'), tf.tensor1d(positions.subarray(a, b)))),
    );
    out.set(nll, a * cells);
  }
  return out;
}
