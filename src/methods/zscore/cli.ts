/** `moodlsr train zscore`. */
import type { Command } from 'commander';
import { collect, parseInteger, stderrLog } from '../../cli/common.js';
import { listNiftiFiles } from '../../train/dataset.js';
import { fitZScore, saveZScore } from './model.js';

export function registerZscoreTrain(train: Command): void {
  train
    .command('zscore')
    .description('the training-free baseline: voxel-wise mean and σ of normal volumes, plus its sample-score calibration')
    .requiredOption('--data <dir>', 'folder of normal volumes (repeatable)', collect, [])
    .requiredOption('--out <dir>', 'weights folder (writes zscore.json + zscore.bin)')
    .option('--region <r>', 'brain or abdom (recorded with the weights)', 'brain')
    .option('--grid <n>', 'edge of the statistics grid', parseInteger('--grid', 4), 64)
    .option('--holdout <n>', 'held-out volumes for the calibration', parseInteger('--holdout', 1), 2)
    .option('--seed <s>', 'seed of the hold-out split', parseInteger('--seed'), 0)
    .action(async (opts: { data: string[]; out: string; region: string; grid: number; holdout: number; seed: number }) => {
      const t0 = performance.now();
      const files = await listNiftiFiles(opts.data);
      if (files.length === 0) throw new Error(`no NIfTI files in ${opts.data.join(', ')}`);
      const log = stderrLog('train zscore: ');
      const model = await fitZScore({ files, holdout: opts.holdout, seed: opts.seed, config: { grid: opts.grid }, log });
      const seconds = (performance.now() - t0) / 1000;
      await saveZScore(opts.out, model, {
        region: opts.region,
        training: { command: process.argv.slice(2).join(' '), files: files.length, seed: opts.seed, seconds },
      });
      log(`wrote ${opts.out}/zscore.json (${seconds.toFixed(1)} s)`);
    });
}
