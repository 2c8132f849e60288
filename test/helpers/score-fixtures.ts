/** Tiny randomly initialised LSR networks and tiny brain-like volumes for the score tests. */
import * as tf from '@tensorflow/tfjs';
import { createRng } from '../../src/engine/random.js';
import {
  initPixelSnail,
  initVqvae,
  saveModel,
  type ParamMap,
  type PixelSnailConfig,
  type VqvaeConfig,
} from '../../src/models/index.js';
import type { VaeConfig } from '../../src/methods/vae/config.js';
import type { LsrNetworks } from '../../src/methods/lsr/networks.js';
import { makeVolume, type Shape3, type Volume } from '../../src/volume/volume.js';

export const TINY_VQVAE: VqvaeConfig = {
  inputSize: 16,
  inChannels: 1,
  condChannels: 1,
  channels: [4, 8, 8],
  blocksPerLevel: 1,
  codebookSize: 8,
  codeDim: 4,
  dropout: 0.1,
  upsample: 'nearest-conv',
  normGroups: 2,
  commitmentWeight: 1,
};

/** The tiny VAE of the VAE tests (the VQ-VAE's tiny encoder/decoder, a 6-d latent). */
export const TINY_VAE: VaeConfig = {
  inputSize: 16,
  inChannels: 1,
  condChannels: 1,
  channels: [4, 8, 8],
  blocksPerLevel: 1,
  dropout: 0.1,
  upsample: 'nearest-conv',
  normGroups: 2,
  denseChannels: 4,
  latentDim: 6,
  recStd: 0.5,
};

export const TINY_PRIOR: PixelSnailConfig = {
  codebookSize: 8,
  height: 4,
  width: 4,
  channels: 8,
  blocks: 1,
  resBlocksPerBlock: 1,
  attention: { keyChannels: 4, valueChannels: 8, downsample: 1 },
  dropout: 0.1,
  condChannels: 1,
};

/**
 * Gives the zero-initialised conditioning weights and biases random values, so positions and
 * biases matter, and spreads the codebook so that the encoder uses several codes.
 */
function randomise(params: ParamMap, seed: number, pattern: RegExp, std: number): void {
  const rng = createRng(seed);
  for (const [name, v] of Object.entries(params)) {
    if (pattern.test(name)) v.assign(tf.tensor(Array.from({ length: v.size }, () => rng.normal() * std), v.shape));
  }
}

export function tinyNetworks(seed = 1): LsrNetworks {
  const vq = initVqvae(TINY_VQVAE, seed);
  randomise(vq, seed + 10, /^codebook\.E$/, 1);
  const prior = initPixelSnail(TINY_PRIOR, seed + 1);
  // Larger output weights: a sharper, non-uniform prior, so NLLs spread and resampling decisions vary.
  randomise(prior, seed + 11, /(\.cond\.|^out\.b$)/, 1.5);
  return { vqvae: { cfg: TINY_VQVAE, params: vq }, prior: { cfg: TINY_PRIOR, params: prior } };
}

export function saveTinyNetworks(dir: string, nets: LsrNetworks): void {
  saveModel(dir, 'vqvae', { kind: 'vqvae', config: nets.vqvae.cfg, params: nets.vqvae.params });
  saveModel(dir, 'pixelsnail', { kind: 'pixelsnail', config: nets.prior.cfg, params: nets.prior.params });
}

/** A head-like volume in [0, 1]: a noisy ellipsoid with an inner structure, background 0. */
export function tinyBrain(shape: Shape3, seed: number, lesion = false): Volume {
  const [nx, ny, nz] = shape;
  const rng = createRng(seed);
  const data = new Float32Array(nx * ny * nz);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const dx = (x - nx / 2) / (0.42 * nx);
        const dy = (y - ny / 2) / (0.42 * ny);
        const dz = (z - nz / 2) / (0.45 * nz);
        const r = Math.sqrt(dx * dx + dy * dy + dz * dz);
        if (r >= 1) continue;
        let v = r < 0.5 ? 0.7 : 0.4;
        if (lesion && Math.abs(dx - 0.3) < 0.2 && Math.abs(dy) < 0.2 && Math.abs(dz) < 0.3) v = 1;
        data[x + nx * (y + ny * z)] = Math.min(1, Math.max(0.06, v + 0.05 * rng.normal()));
      }
    }
  }
  return makeVolume(shape, data);
}

export function randomCodes(count: number, cells: number, k: number, seed: number): Int32Array {
  const rng = createRng(seed);
  return Int32Array.from({ length: count * cells }, () => rng.int(k));
}
