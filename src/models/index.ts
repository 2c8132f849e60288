/** Public surface of the networks: configs and presets, parameter stores, the two models, weights I/O. */
export * from './config.js';
export * from './params.js';
export type { ForwardOptions } from './blocks.js';
export * from './vqvae.js';
export * from '../methods/lsr/pixelsnail.js';
export * from '../methods/lsgs/transformer.js';
export * from './flops.js';
export * from './weights.js';
export * from '../methods/vae/config.js';
export * from '../methods/vae/vae.js';
