/** `moodlsr train zscore`. */
import type { Command } from 'commander';
import { collect, parseInteger, stderrLog } from '../../cli/common.js';
import { collectSetting } from '../../score/settings.js';
import { listNiftiFiles } from '../../train/dataset.js';
import { fitZScore, saveZScore } from './model.js';
import { DEFAULT_ZSCORE_CONFIG, ZSCORE_SETTING_KEYS, zscoreSettings } from './zscore.js';

interface TrainZscoreOptions {
  data: string[];
  out: string;
  region: string;
  grid: number;
  holdout: number;
  calibrationData: string[];
  quantiles: number;
  set: Record<string, string>;
  seed: number;
}

export function registerZscoreTrain(train: Command): void {
  train
    .command('zscore')
    .description('the training-free baseline: voxel-wise mean and σ of normal volumes, plus its sample-score calibration')
    .requiredOption('--data <dir>', 'folder of normal volumes (repeatable)', collect, [])
    .requiredOption('--out <dir>', 'weights folder (writes zscore.json + zscore.bin)')
    .option('--region <r>', 'brain or abdom (recorded with the weights)', 'brain')
    .option('--grid <n>', 'edge of the statistics grid', parseInteger('--grid', 4), 64)
    .option('--holdout <n>', 'held-out volumes of --data for the calibration (without --calibration-data)', parseInteger('--holdout', 1), 2)
    .option('--calibration-data <dir>', 'separate folder of held-out normal volumes for the calibration: then all of --data is fitted (repeatable)', collect, [])
    .option('--quantiles <n>', 'template quantiles, with --set intensity=quantile', parseInteger('--quantiles', 2), 101)
    .option('--set <key=value>', `scoring option stored with the weights (repeatable): ${ZSCORE_SETTING_KEYS.join(', ')}`, collectSetting, {})
    .option('--seed <s>', 'seed of the hold-out split', parseInteger('--seed'), 0)
    .action(async (opts: TrainZscoreOptions) => {
      const t0 = performance.now();
      const files = await listNiftiFiles(opts.data);
      if (files.length === 0) throw new Error(`no NIfTI files in ${opts.data.join(', ')}`);
      const calibrationFiles = opts.calibrationData.length > 0 ? await listNiftiFiles(opts.calibrationData) : undefined;
      if (calibrationFiles?.length === 0) throw new Error(`no NIfTI files in ${opts.calibrationData.join(', ')}`);
      const settings = zscoreSettings({ ...DEFAULT_ZSCORE_CONFIG, grid: opts.grid }, opts.set);
      const config = (settings.intensity ?? 'none') === 'quantile' ? { ...settings, quantiles: opts.quantiles } : { ...settings, quantiles: undefined };
      const log = stderrLog('train zscore: ');
      const model = await fitZScore({ files, holdout: opts.holdout, calibrationFiles, seed: opts.seed, config, log });
      const seconds = (performance.now() - t0) / 1000;
      await saveZScore(opts.out, model, {
        region: opts.region,
        training: { command: process.argv.slice(2).join(' '), files: files.length, seed: opts.seed, seconds },
      });
      log(`wrote ${opts.out}/zscore.json (${seconds.toFixed(1)} s)`);
    });
}
