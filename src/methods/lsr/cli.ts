/** `moodlsr train prior` and `moodlsr calibrate lsr`. */
import type { Command } from 'commander';
import { parseSliceSelection, referenceFilesOf, type CalibrateLsrCliOptions as SharedCalibrateOptions } from '../../cli/calibrate-options.js';
import { collect, parseInteger, parseNumber, stderrLog } from '../../cli/common.js';
import { addDropoutOption, addNetworkOptions, commonOptions, parsePreset, type NetworkTrainFlags } from '../../cli/train-options.js';
import { ENGINE_HELP, parseEngineChoice } from '../../inference/engine-choice.js';
import { listNiftiFiles } from '../../train/dataset.js';
import { collectSetting } from '../../score/settings.js';
import { DEFAULT_LSR_SCORING, LSR_SCORING_KEYS, lsrScoringFromSettings } from './scoring.js';
import { DEFAULT_PRIOR_BATCH, DEFAULT_PRIOR_EPOCHS } from '../../train/defaults.js';

interface CalibrateLsrCliOptions extends SharedCalibrateOptions {
  thresholdCodes: string;
  set: Record<string, string>;
  referenceData: string[];
}

export function registerLsrTrain(train: Command): void {
  addDropoutOption(addNetworkOptions(
    train.command('prior').description('train the PixelSNAIL prior on the codes of a trained VQ-VAE'),
    { epochs: DEFAULT_PRIOR_EPOCHS, batch: DEFAULT_PRIOR_BATCH },
  ))
    .requiredOption('--vqvae <dir>', 'folder holding vqvae.json/.bin')
    .option('--aug-codes <f>', 'fraction of each batch taken from codes of augmented training slices, re-encoded before every epoch (default 0)', parseNumber('--aug-codes', 0, 1))
    .action(async (flags: NetworkTrainFlags & { augCodes?: number }) => {
      const { trainPrior } = await import('../../train/prior-trainer.js');
      const result = await trainPrior({
        ...commonOptions(flags),
        preset: parsePreset(flags.preset),
        vqvaeDir: flags.vqvae!,
        ...(flags.dropout !== undefined ? { dropout: flags.dropout } : {}),
        ...(flags.augCodes !== undefined ? { augmentedCodes: flags.augCodes } : {}),
      });
      stderrLog('train prior: ')(`${result.state.epoch} epochs done (${result.stopped}); best weights in ${flags.out}/pixelsnail.json`);
    });
}

export function registerLsrCalibrate(calibrate: Command): void {
  calibrate
    .command('lsr')
    .description('λs, λp (98th / 90th percentile of code NLL), sample-score calibration and pixel scale → WEIGHTS/lsr-calibration.json')
    .requiredOption('--weights <dir>', 'weights folder with vqvae.json/.bin and pixelsnail.json/.bin')
    .requiredOption('--data <dir>', 'folder (or file) of held-out normal volumes, never used in training (repeatable)', collect, [])
    .option('--region <r>', 'brain or abdom', 'brain')
    .option('--slices <sel>', 'slices per volume: every:N, count:N or all (default: the paper\'s, every 8th brain / 16th abdominal)', parseSliceSelection)
    .option('--copies <n>', 'restorations per slice', parseInteger('--copies', 1), 15)
    .option('--pixel-volumes <n>', 'held-out volumes restored to fit the pixel scale', parseInteger('--pixel-volumes', 0), 2)
    .option('--threshold-codes <which>', 'codes the NLL percentiles are taken over: foreground (codes whose patch holds foreground) or all', 'foreground')
    .option('--seed <s>', 'seed of the restorations', parseInteger('--seed'), 0)
    .option('--workers <n>', 'worker threads for the restorations with TF.js on wasm (0 = in-process; default one per core)', parseInteger('--workers', 0))
    .option('--engine <name>', ENGINE_HELP, 'auto')
    .option('--set <key=value>', `scoring chain stored with the calibration (repeatable; keys: ${LSR_SCORING_KEYS.join(', ')}; default: the shipped chain, see src/methods/lsr/scoring.ts)`, collectSetting, {})
    .option('--reference-data <dir>', "folder (or file) of other normal volumes (not trained on, not --data) to build the prior's per-place NLL reference from → WEIGHTS/lsr-nll-reference.json/.bin, for sample=interior, and with --set reference=on the normal residual reference → WEIGHTS/lsr-residual-reference.json/.bin (repeatable)", collect, [])
    .action(async (opts: CalibrateLsrCliOptions) => {
      if (opts.region !== 'brain' && opts.region !== 'abdom') throw new Error(`--region must be brain or abdom, got "${opts.region}"`);
      if (opts.thresholdCodes !== 'foreground' && opts.thresholdCodes !== 'all') throw new Error(`--threshold-codes must be foreground or all, got "${opts.thresholdCodes}"`);
      const engine = parseEngineChoice(opts.engine);
      const scoring = lsrScoringFromSettings(DEFAULT_LSR_SCORING, opts.set);
      const t0 = performance.now();
      const files = await listNiftiFiles(opts.data);
      if (files.length === 0) throw new Error(`no NIfTI files in ${opts.data.join(', ')}`);
      const log = stderrLog('calibrate lsr: ');
      const { calibrateLsr, writeLsrCalibration } = await import('./calibrate.js');
      const referenceFiles = await referenceFilesOf(opts.referenceData, files);
      const { calibration, builtReference, builtResidualReference } = await calibrateLsr({
        weightsDir: opts.weights,
        files,
        region: opts.region === 'brain' ? 'brain' : 'abdomen',
        slices: opts.slices,
        copies: opts.copies,
        pixelVolumes: opts.pixelVolumes,
        thresholdCodes: opts.thresholdCodes,
        scoring,
        seed: opts.seed,
        workers: opts.workers,
        engine,
        referenceFiles,
        log,
      });
      if (builtReference !== null) {
        const { writeLsrNllReference } = await import('./nll-reference.js');
        log(`wrote ${await writeLsrNllReference(opts.weights, builtReference)} (${builtReference.files.length} volumes)`);
      }
      if (builtResidualReference !== null) {
        const { writeLsrResidualReference } = await import('./residual-reference.js');
        log(`wrote ${await writeLsrResidualReference(opts.weights, builtResidualReference)} (${builtResidualReference.files.length} volumes)`);
      }
      const file = writeLsrCalibration(opts.weights, calibration);
      log(`wrote ${file} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    });
}
