/** The `disyre` method: diffusion-inspired synthetic restoration (Naval Marimont & Tarroni, ISBI 2024; README.md). */
import type { Method } from '../method.js';
import { registerDisyreCalibrate, registerDisyreTrain } from './cli.js';
import { DISYRE_SETTINGS } from './settings.js';

const disyre: Method = {
  id: 'disyre',
  summary: 'DISYRE: a U-Net restores synthetically corrupted slices; anomaly map = mean |x − x̂| over a few corruption levels',
  scores: [{ name: 'disyre', tasks: ['sample', 'pixel'] }],
  regions: ['brain', 'abdom'],
  shippedSubfolder: 'disyre',
  settings: DISYRE_SETTINGS,
  async load(weightsDir, opts) {
    const { createDisyrePredictor } = await import('./model.js');
    return createDisyrePredictor(weightsDir, {
      ...(opts.engine !== undefined ? { engine: opts.engine } : {}),
      settings: opts.settings ?? {},
      warn: (line) => process.stderr.write(`disyre: ${line}\n`),
    });
  },
  registerTrain: registerDisyreTrain,
  registerCalibrate: registerDisyreCalibrate,
};

export default disyre;
