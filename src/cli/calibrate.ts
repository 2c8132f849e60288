import { InvalidArgumentError, type Command } from 'commander';
import { listNiftiFiles } from '../train/dataset.js';
import { ENGINE_HELP, parseEngineChoice } from '../inference/engine-choice.js';
import type { SliceSelection } from '../volume/slices.js';
import { collect, parseInteger, stderrLog } from './common.js';

/** "every:8", "count:32" or "all". */
export function parseSliceSelection(value: string): SliceSelection {
  if (value === 'all') return 'all';
  const m = /^(every|count):(\d+)$/.exec(value);
  if (m === null || Number(m[2]) < 1) throw new InvalidArgumentError(`--slices must be all, every:N or count:N, got "${value}"`);
  return m[1] === 'every' ? { every: Number(m[2]) } : { count: Number(m[2]) };
}

interface CalibrateLsrCliOptions {
  weights: string;
  data: string[];
  region: string;
  slices?: SliceSelection;
  copies: number;
  pixelVolumes: number;
  seed: number;
  workers?: number;
  engine: string;
}

/** `moodlsr calibrate <method>`: thresholds and score maps fitted on held-out normal volumes, stored with the weights. */
export function registerCalibrate(program: Command): void {
  const calibrate = program.command('calibrate').description('fit score thresholds and calibrations on held-out normal volumes');
  calibrate
    .command('lsr')
    .description('λs, λp (98th / 90th percentile of code NLL), sample-score calibration and pixel scale → WEIGHTS/lsr-calibration.json')
    .requiredOption('--weights <dir>', 'weights folder with vqvae.json/.bin and pixelsnail.json/.bin')
    .requiredOption('--data <dir>', 'folder (or file) of held-out normal volumes, never used in training (repeatable)', collect, [])
    .option('--region <r>', 'brain or abdom', 'brain')
    .option('--slices <sel>', 'slices per volume: every:N, count:N or all (default: the paper\'s, every 8th brain / 16th abdominal)', parseSliceSelection)
    .option('--copies <n>', 'restorations per slice', parseInteger('--copies', 1), 15)
    .option('--pixel-volumes <n>', 'held-out volumes restored to fit the pixel scale', parseInteger('--pixel-volumes', 0), 2)
    .option('--seed <s>', 'seed of the restorations', parseInteger('--seed'), 0)
    .option('--workers <n>', 'worker threads for the restorations with TF.js on wasm (0 = in-process; default one per core)', parseInteger('--workers', 0))
    .option('--engine <name>', ENGINE_HELP, 'auto')
    .action(async (opts: CalibrateLsrCliOptions) => {
      if (opts.region !== 'brain' && opts.region !== 'abdom') throw new Error(`--region must be brain or abdom, got "${opts.region}"`);
      const engine = parseEngineChoice(opts.engine);
      const t0 = performance.now();
      const files = await listNiftiFiles(opts.data);
      if (files.length === 0) throw new Error(`no NIfTI files in ${opts.data.join(', ')}`);
      const log = stderrLog('calibrate lsr: ');
      const { calibrateLsr, writeLsrCalibration } = await import('../methods/lsr/calibrate.js');
      const calibration = await calibrateLsr({
        weightsDir: opts.weights,
        files,
        region: opts.region === 'brain' ? 'brain' : 'abdomen',
        slices: opts.slices,
        copies: opts.copies,
        pixelVolumes: opts.pixelVolumes,
        seed: opts.seed,
        workers: opts.workers,
        engine,
        log,
      });
      const file = writeLsrCalibration(opts.weights, calibration);
      log(`wrote ${file} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    });
  calibrate
    .command('vae')
    .description('sample-score calibrations (ELBO, KL, rec) and pixel scales of the vae-* methods → WEIGHTS/vae-calibration.json')
    .requiredOption('--weights <dir>', 'weights folder with vae.json/.bin')
    .requiredOption('--data <dir>', 'folder (or file) of held-out normal volumes, never used in training (repeatable)', collect, [])
    .option('--region <r>', 'brain or abdom', 'brain')
    .option('--slices <sel>', 'slices per volume: every:N, count:N or all (default: the paper\'s, every 8th brain / 16th abdominal)', parseSliceSelection)
    .option('--pixel-volumes <n>', 'held-out volumes whose pixel maps fit the pixel scales', parseInteger('--pixel-volumes', 0), 2)
    .option('--workers <n>', 'worker threads for the networks (0 = in-process; default one per core)', parseInteger('--workers', 0))
    .action(async (opts: { weights: string; data: string[]; region: string; slices?: SliceSelection; pixelVolumes: number; workers?: number }) => {
      if (opts.region !== 'brain' && opts.region !== 'abdom') throw new Error(`--region must be brain or abdom, got "${opts.region}"`);
      const t0 = performance.now();
      const files = await listNiftiFiles(opts.data);
      if (files.length === 0) throw new Error(`no NIfTI files in ${opts.data.join(', ')}`);
      const log = stderrLog('calibrate vae: ');
      const { calibrateVae } = await import('../methods/vae/calibrate.js');
      const { writeVaeCalibration } = await import('../methods/vae/model.js');
      const calibration = await calibrateVae({
        weightsDir: opts.weights,
        files,
        region: opts.region === 'brain' ? 'brain' : 'abdomen',
        ...(opts.slices !== undefined ? { slices: opts.slices } : {}),
        pixelVolumes: opts.pixelVolumes,
        ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
        log,
      });
      const file = writeVaeCalibration(opts.weights, calibration);
      log(`wrote ${file} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    });
  registerCalibrateLsgs(calibrate);
}

interface CalibrateLsgsCliOptions extends CalibrateLsrCliOptions {
  rounds: number;
  foregroundMask: boolean;
}

function registerCalibrateLsgs(calibrate: Command): void {
  calibrate
    .command('lsgs')
    .description('LSGS: λs, λ (98th / 90th percentile of transformer code NLL), sample-score calibration and pixel scale → WEIGHTS/lsgs-calibration.json')
    .requiredOption('--weights <dir>', 'weights folder with vqvae.json/.bin and transformer.json/.bin')
    .requiredOption('--data <dir>', 'folder (or file) of held-out normal volumes, never used in training (repeatable)', collect, [])
    .option('--region <r>', 'brain or abdom', 'brain')
    .option('--slices <sel>', 'slices per volume: every:N, count:N or all (default: every 8th brain / 16th abdominal)', parseSliceSelection)
    .option('--copies <n>', 'restorations per slice', parseInteger('--copies', 1), 15)
    .option('--rounds <n>', 'parallel resampling rounds', parseInteger('--rounds', 0), 3)
    .option('--no-foreground-mask', 'do not zero the pixel score outside the input foreground')
    .option('--pixel-volumes <n>', 'held-out volumes restored to fit the pixel scale', parseInteger('--pixel-volumes', 0), 2)
    .option('--seed <s>', 'seed of the restorations', parseInteger('--seed'), 0)
    .option('--workers <n>', 'worker threads for the restorations (0 = in-process; default one per core)', parseInteger('--workers', 0))
    .option('--engine <name>', ENGINE_HELP, 'auto')
    .action(async (opts: CalibrateLsgsCliOptions) => {
      if (opts.region !== 'brain' && opts.region !== 'abdom') throw new Error(`--region must be brain or abdom, got "${opts.region}"`);
      const t0 = performance.now();
      const files = await listNiftiFiles(opts.data);
      if (files.length === 0) throw new Error(`no NIfTI files in ${opts.data.join(', ')}`);
      const log = stderrLog('calibrate lsgs: ');
      const { calibrateLsgs, writeLsgsCalibration } = await import('../methods/lsgs/calibrate.js');
      const calibration = await calibrateLsgs({
        weightsDir: opts.weights,
        files,
        region: opts.region === 'brain' ? 'brain' : 'abdomen',
        slices: opts.slices,
        copies: opts.copies,
        rounds: opts.rounds,
        foregroundMask: opts.foregroundMask,
        pixelVolumes: opts.pixelVolumes,
        seed: opts.seed,
        workers: opts.workers,
        engine: parseEngineChoice(opts.engine),
        log,
      });
      const file = writeLsgsCalibration(opts.weights, calibration);
      log(`wrote ${file} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    });
}
