/** The `lsr` method: latent space restoration with a VQ-VAE and a PixelSNAIL prior (README.md). */
import type { Method } from '../method.js';
import { registerLsrCalibrate, registerLsrTrain } from './cli.js';

const lsr: Method = {
  id: 'lsr',
  summary: 'latent space restoration (Naval Marimont & Tarroni 2021): VQ-VAE + PixelSNAIL prior',
  scores: [{ name: 'lsr', tasks: ['sample', 'pixel'] }],
  regions: ['brain', 'abdom'],
  shippedSubfolder: 'lsr',
  async load(weightsDir, opts) {
    return (await import('./model.js')).createLsrPredictor(weightsDir, opts.engine !== undefined ? { engine: opts.engine } : {});
  },
  registerTrain: registerLsrTrain,
  registerCalibrate: registerLsrCalibrate,
};

export default lsr;
