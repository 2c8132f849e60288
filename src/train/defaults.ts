/** Training defaults, in a module without TF.js so that the CLI can show them without loading it. */
export const DEFAULT_VQVAE_BATCH = 8;
export const DEFAULT_VQVAE_EPOCHS = 20;
export const DEFAULT_PRIOR_BATCH = 32;
export const DEFAULT_PRIOR_EPOCHS = 30;
export const DEFAULT_TRANSFORMER_BATCH = 16;
