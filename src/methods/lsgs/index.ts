/** The `lsgs` method: aggregated-codebook VQ-VAE and a global-sensitive transformer prior (README.md). */
import type { Method } from '../method.js';
import { registerLsgsCalibrate, registerLsgsTrain } from './cli.js';
import { LSGS_SETTINGS } from './scoring.js';

const lsgs: Method = {
  id: 'lsgs',
  summary: 'local-sensitive VQ-VAE + global-sensitive transformer (Wang et al.): parallel restoration of unlikely codes',
  scores: [{ name: 'lsgs', tasks: ['sample', 'pixel'] }],
  regions: ['brain', 'abdom'],
  shippedSubfolder: 'lsgs',
  settings: LSGS_SETTINGS,
  async load(weightsDir, opts) {
    return (await import('./model.js')).createLsgsPredictor(weightsDir, { ...(opts.engine !== undefined ? { engine: opts.engine } : {}), ...(opts.settings ? { settings: opts.settings } : {}) });
  },
  registerTrain: registerLsgsTrain,
  registerCalibrate: registerLsgsCalibrate,
};

export default lsgs;
