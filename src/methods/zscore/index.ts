/** The `zscore` method: voxel-wise z-scores against normal volumes (README.md). */
import type { Method } from '../method.js';
import { registerZscoreTrain } from './cli.js';

const zscore: Method = {
  id: 'zscore',
  summary: 'training-free baseline: voxel-wise z-scores against the mean and σ of normal volumes',
  scores: [{ name: 'zscore', tasks: ['sample', 'pixel'] }],
  regions: ['brain', 'abdom'],
  shippedSubfolder: '',
  async load(weightsDir) {
    const { loadZScore, zscorePredictor } = await import('./model.js');
    return zscorePredictor(await loadZScore(weightsDir));
  },
  registerTrain: registerZscoreTrain,
};

export default zscore;
