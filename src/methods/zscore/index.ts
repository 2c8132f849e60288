/** The `zscore` method: voxel-wise z-scores against normal volumes (README.md). */
import type { Method } from '../method.js';
import { registerZscoreTrain } from './cli.js';
import { ZSCORE_SETTING_KEYS } from './zscore.js';

const zscore: Method = {
  id: 'zscore',
  summary: 'training-free baseline: voxel-wise z-scores against the mean and σ of normal volumes',
  scores: [{ name: 'zscore', tasks: ['sample', 'pixel'] }],
  regions: ['brain', 'abdom'],
  shippedSubfolder: '',
  settings: ZSCORE_SETTING_KEYS.map((key) => ({ key, help: 'see src/methods/zscore/README.md' })),
  async load(weightsDir, opts) {
    const { loadZScore, withZScoreSettings, zscorePredictor } = await import('./model.js');
    return zscorePredictor(withZScoreSettings(await loadZScore(weightsDir), opts.settings ?? {}));
  },
  registerTrain: registerZscoreTrain,
};

export default zscore;
