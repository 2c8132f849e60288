/**
 * Sinusoidal embeddings of the network's two conditions, computed on the host (pure functions over
 * typed arrays): the corruption level t ∈ [0, 1] and the slice position z ∈ [−0.5, 0.5]
 * (src/volume/slices.ts slicePosition). The network receives both, concatenated, as one input
 * [B, 2·embedDim]; its MLP (./unet.ts) turns them into per-block channel biases.
 *
 * Embedding of a scalar v with D values (D even): for k < D/2, frequency f_k = scale · 10000^(−k/(D/2)),
 * value k = sin(v · f_k), value D/2 + k = cos(v · f_k) (the transformer / DDPM timestep embedding).
 * t is scaled by 1000 (as DDPM's integer steps), z by 256 (a 256-slice volume's slice index).
 */
import type { DisyreConfig } from './config.js';

export const LEVEL_SCALE = 1000;
export const POSITION_SCALE = 256;

/** Writes the D-value embedding of `v` at `out[offset …]`. */
export function sinusoidalEmbedding(v: number, dim: number, scale: number, out: Float32Array, offset = 0): void {
  const half = dim / 2;
  for (let k = 0; k < half; k++) {
    const angle = v * scale * Math.pow(10000, -k / half);
    out[offset + k] = Math.sin(angle);
    out[offset + half + k] = Math.cos(angle);
  }
}

/** The conditioning input of a batch: [count, 2·embedDim] (t embedding, then z embedding). */
export function conditionInput(cfg: Pick<DisyreConfig, 'embedDim'>, levels: Float32Array, positions: Float32Array): Float32Array {
  if (levels.length !== positions.length) throw new RangeError(`conditionInput: ${levels.length} levels for ${positions.length} positions`);
  const d = cfg.embedDim;
  const out = new Float32Array(levels.length * 2 * d);
  for (let i = 0; i < levels.length; i++) {
    sinusoidalEmbedding(levels[i]!, d, LEVEL_SCALE, out, i * 2 * d);
    sinusoidalEmbedding(positions[i]!, d, POSITION_SCALE, out, i * 2 * d + d);
  }
  return out;
}
