/** The `vae-*` methods: a convolutional VAE and the scores of Zimmerer et al. 2019 (README.md). */
import type { Method } from '../method.js';
import { registerVaeCalibrate, registerVaeTrain } from './cli.js';
import { VAE_METHODS, vaeMethodTasks } from './variants.js';
import { VAE_SETTINGS } from './scoring.js';

const vae: Method = {
  id: 'vae',
  summary: 'VAE baseline (Zimmerer et al. 2019): ELBO, KL and reconstruction scores and their gradient maps',
  scores: VAE_METHODS.map((m) => ({ name: m.name, tasks: vaeMethodTasks(m) })),
  regions: ['brain', 'abdom'],
  shippedSubfolder: 'vae',
  settings: VAE_SETTINGS,
  async load(weightsDir, opts) {
    return (await import('./model.js')).createVaePredictor(weightsDir, opts.score, { ...(opts.engine !== undefined ? { engine: opts.engine } : {}), ...(opts.settings ? { settings: opts.settings } : {}) });
  },
  registerTrain: registerVaeTrain,
  registerCalibrate: registerVaeCalibrate,
};

export default vae;
