/** Public surface of the networks: configs and presets, parameter stores, the two models, weights I/O. */
export * from './config.js';
export * from './params.js';
export type { ForwardOptions } from './blocks.js';
export * from './vqvae.js';
export * from './pixelsnail.js';
export * from './transformer.js';
export * from './flops.js';
export * from './weights.js';
export * from './vae-config.js';
export * from './vae.js';
