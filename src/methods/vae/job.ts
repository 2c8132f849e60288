/**
 * Worker job of the `vae-*` methods (see src/engine/pool.ts): each worker loads the VAE from the
 * weights folder once, then computes the per-slice pieces (terms, reconstructions, input gradients)
 * of the slice chunks it is given.
 */
import { loadVaeNetwork, type VaeJobInit, type VaeJobTask } from './model.js';
import { vaeStackPieces, type VaeNetwork, type VaeStackPieces } from './score.js';

let net: VaeNetwork | null = null;

export function setup(init: VaeJobInit): void {
  net = loadVaeNetwork(init.weightsDir);
}

export function run(task: VaeJobTask): VaeStackPieces {
  if (net === null) throw new Error('vae job: setup() was not called');
  return vaeStackPieces(net, task.images, task.positions, task.request);
}
