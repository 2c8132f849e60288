/** `moodlsr train disyre` and `moodlsr calibrate disyre`. */
import type { Command } from 'commander';
import { collect, parseInteger, parseNumber, stderrLog } from '../../cli/common.js';
import { parseRegion } from '../../cli/train-options.js';
import { referenceFilesOf } from '../../cli/calibrate-options.js';
import { ENGINE_HELP, parseEngineChoice } from '../../inference/engine-choice.js';
import { collectSetting } from '../../score/settings.js';
import { listNiftiFiles } from '../../train/dataset.js';
import { DISYRE_PRESETS, type DisyrePreset } from './config.js';

interface TrainFlags {
  region: string;
  data: string[];
  out: string;
  preset: string;
  epochs?: number;
  batch?: number;
  stepsPerEpoch?: number;
  seed: number;
  lr?: number;
  resume?: boolean;
  maxMinutes?: number;
  holdout?: number;
  slicesPerVolume?: number;
  threads?: number;
  workers?: number;
  init?: string;
  segmentationWeight?: number;
}

function parsePreset(value: string): DisyrePreset {
  if (!Object.hasOwn(DISYRE_PRESETS, value)) throw new Error(`--preset must be one of ${Object.keys(DISYRE_PRESETS).join(', ')}, got "${value}"`);
  return value as DisyrePreset;
}

export function registerDisyreTrain(train: Command): void {
  train
    .command('disyre')
    .description('train the DISYRE restoration U-Net on synthetically corrupted slices of normal volumes (ONNX Runtime)')
    .requiredOption('--region <r>', 'brain or abdom')
    .requiredOption('--data <dir>', 'folder of normal volumes (repeatable)', collect, [])
    .requiredOption('--out <dir>', 'output folder: best weights disyre.json/.bin, checkpoint, training.json, sessions')
    .option('--preset <p>', `network size: ${Object.keys(DISYRE_PRESETS).join(', ')}`, 'compact')
    .option('--epochs <n>', 'epochs (default 400)', parseInteger('--epochs', 1))
    .option('--steps-per-epoch <n>', 'optimiser steps per epoch = checkpoint interval (default 50)', parseInteger('--steps-per-epoch', 1))
    .option('--batch <n>', 'slices per step (default 16)', parseInteger('--batch', 1))
    .option('--lr <x>', 'Adam learning rate (default 5e-4)', parseNumber('--lr', 0, 1))
    .option('--seed <s>', 'seed of the split, initialisation, sampling and corruptions', parseInteger('--seed'), 0)
    .option('--resume', 'continue from the checkpoint in --out')
    .option('--max-minutes <m>', 'do not start an epoch that would end after this many minutes', parseNumber('--max-minutes', 0))
    .option('--holdout <k>', 'held-out volumes (default 10 %, none below 3 volumes)', parseInteger('--holdout', 0))
    .option('--slices-per-volume <n>', 'slices kept per volume, evenly spread (default 128)', parseInteger('--slices-per-volume', 1))
    .option('--workers <n>', 'data-parallel worker threads, one ONNX Runtime session each (default 2; 0 = this thread)', parseInteger('--workers', 0))
    .option('--threads <n>', 'ONNX Runtime intra-op threads per session (default: every core / sessions)', parseInteger('--threads', 1))
    .option('--init <dir>', 'warm start from the U-Net in this folder (disyre.json/.bin, same preset; fresh Adam state), e.g. another region\'s')
    .option('--segmentation-weight <w>', 'add the segmentation head (where was the slice corrupted?) with this weight on its cross-entropy beside the MSE; --init from a network without one starts the head fresh', parseNumber('--segmentation-weight', 0))
    .action(async (flags: TrainFlags) => {
      const { trainDisyre } = await import('./trainer.js');
      const result = await trainDisyre({
        region: parseRegion(flags.region),
        data: flags.data,
        outDir: flags.out,
        config: { ...DISYRE_PRESETS[parsePreset(flags.preset)], ...(flags.segmentationWeight ? { segmentationWeight: flags.segmentationWeight } : {}) },
        seed: flags.seed,
        command: `moodlsr ${process.argv.slice(2).join(' ')}`,
        ...(flags.epochs !== undefined ? { epochs: flags.epochs } : {}),
        ...(flags.stepsPerEpoch !== undefined ? { stepsPerEpoch: flags.stepsPerEpoch } : {}),
        ...(flags.batch !== undefined ? { batch: flags.batch } : {}),
        ...(flags.lr !== undefined ? { lr: flags.lr } : {}),
        ...(flags.resume ? { resume: true } : {}),
        ...(flags.maxMinutes !== undefined ? { maxMinutes: flags.maxMinutes } : {}),
        ...(flags.holdout !== undefined ? { holdout: flags.holdout } : {}),
        ...(flags.slicesPerVolume !== undefined ? { slicesPerVolume: flags.slicesPerVolume } : {}),
        ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
        ...(flags.workers !== undefined ? { workers: flags.workers } : {}),
        ...(flags.init !== undefined ? { initFrom: flags.init } : {}),
        log: stderrLog('train disyre: '),
      });
      stderrLog('train disyre: ')(`${result.state.epoch} epochs done (${result.stopped}); best weights in ${flags.out}/disyre.json`);
    });
}

interface CalibrateFlags {
  weights: string;
  data: string[];
  referenceData: string[];
  region: string;
  set: Record<string, string>;
  engine: string;
}

export function registerDisyreCalibrate(calibrate: Command): void {
  calibrate
    .command('disyre')
    .description('sample-score calibration of the disyre method on held-out normal volumes → WEIGHTS/disyre-calibration.json')
    .requiredOption('--weights <dir>', 'weights folder with disyre.json/.bin')
    .requiredOption('--data <dir>', 'folder (or file) of held-out normal volumes, never used in training (repeatable)', collect, [])
    .option('--region <r>', 'brain or abdom', 'brain')
    .option('--reference-data <dir>', 'folder (or file) of other normal volumes (not trained on, not --data) to build the normal residual reference from → WEIGHTS/disyre-reference.json/.bin (repeatable; without it the existing reference is kept)', collect, [])
    .option('--set <key=value>', 'scoring choice stored with the calibration (repeatable; see predict --help)', collectSetting, {})
    .option('--engine <e>', ENGINE_HELP, 'auto')
    .action(async (flags: CalibrateFlags) => {
      const t0 = performance.now();
      const files = await listNiftiFiles(flags.data);
      if (files.length === 0) throw new Error(`no NIfTI files in ${flags.data.join(', ')}`);
      const log = stderrLog('calibrate disyre: ');
      const { DEFAULT_DISYRE_SCORING, disyreScoring } = await import('./settings.js');
      const { calibrateDisyre } = await import('./calibrate.js');
      const { writeDisyreCalibration, writeDisyreReference } = await import('./model.js');
      const referenceFiles = await referenceFilesOf(flags.referenceData, files);
      const { calibration, builtReference } = await calibrateDisyre({
        weightsDir: flags.weights,
        files,
        region: parseRegion(flags.region),
        scoring: disyreScoring(DEFAULT_DISYRE_SCORING, flags.set),
        engine: parseEngineChoice(flags.engine),
        referenceFiles,
        log,
      });
      if (builtReference !== null) log(`wrote ${await writeDisyreReference(flags.weights, builtReference)} (${builtReference.reference.volumes} volumes)`);
      const file = writeDisyreCalibration(flags.weights, calibration);
      log(`wrote ${file} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    });
}
