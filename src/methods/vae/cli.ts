/** `moodlsr train vae` and `moodlsr calibrate vae`. */
import type { Command } from 'commander';
import { parseSliceSelection } from '../../cli/calibrate-options.js';
import { collect, parseInteger, parseNumber, stderrLog } from '../../cli/common.js';
import { addNetworkOptions, commonOptions, parsePreset, type NetworkTrainFlags } from '../../cli/train-options.js';
import { listNiftiFiles } from '../../train/dataset.js';
import { DEFAULT_VQVAE_BATCH, DEFAULT_VQVAE_EPOCHS } from '../../train/defaults.js';
import type { SliceSelection } from '../../volume/slices.js';
import { collectSetting } from '../../score/settings.js';
import { DEFAULT_VAE_SCORING, VAE_SCORING_KEYS, vaeScoringFromSettings } from './scoring.js';

export function registerVaeTrain(train: Command): void {
  addNetworkOptions(
    train.command('vae').description('train the VAE baseline (VQ-VAE encoder/decoder, dense Gaussian latent) on random augmented slices'),
    { epochs: DEFAULT_VQVAE_EPOCHS, batch: DEFAULT_VQVAE_BATCH },
  )
    .option('--augment <a>', 'paper or none', 'paper')
    .option('--rec-std <s>', 'σ of the Gaussian likelihood in normalised units (default: the preset\'s, 1)', parseNumber('--rec-std', 0))
    .option('--latent <n>', 'latent dimension (default: the preset\'s, 128)', parseInteger('--latent', 1))
    .action(async (flags: NetworkTrainFlags & { recStd?: number; latent?: number }) => {
      if (flags.augment !== 'paper' && flags.augment !== 'none') throw new Error('--augment must be paper or none');
      const { trainVae } = await import('./trainer.js');
      const result = await trainVae({
        ...commonOptions(flags),
        preset: parsePreset(flags.preset),
        augment: flags.augment,
        ...(flags.recStd !== undefined ? { recStd: flags.recStd } : {}),
        ...(flags.latent !== undefined ? { latentDim: flags.latent } : {}),
      });
      stderrLog('train vae: ')(`${result.state.epoch} epochs done (${result.stopped}); best weights in ${flags.out}/vae.json`);
    });
}

export function registerVaeCalibrate(calibrate: Command): void {
  calibrate
    .command('vae')
    .description('sample-score calibrations (ELBO, KL, rec) and pixel scales of the vae-* methods → WEIGHTS/vae-calibration.json')
    .requiredOption('--weights <dir>', 'weights folder with vae.json/.bin')
    .requiredOption('--data <dir>', 'folder (or file) of held-out normal volumes, never used in training (repeatable)', collect, [])
    .option('--region <r>', 'brain or abdom', 'brain')
    .option('--slices <sel>', 'slices per volume: every:N, count:N or all (default: the paper\'s, every 8th brain / 16th abdominal)', parseSliceSelection)
    .option('--pixel-volumes <n>', 'held-out volumes whose pixel maps fit the pixel scales', parseInteger('--pixel-volumes', 0), 2)
    .option('--workers <n>', 'worker threads for the networks (0 = in-process; default one per core)', parseInteger('--workers', 0))
    .option('--set <key=value>', `scoring chain stored with the calibration (repeatable; keys: ${VAE_SCORING_KEYS.join(', ')}; default: src/methods/vae/scoring.ts DEFAULT_VAE_SCORING)`, collectSetting, {})
    .action(async (opts: { weights: string; data: string[]; region: string; slices?: SliceSelection; pixelVolumes: number; workers?: number; set: Record<string, string> }) => {
      if (opts.region !== 'brain' && opts.region !== 'abdom') throw new Error(`--region must be brain or abdom, got "${opts.region}"`);
      const scoring = vaeScoringFromSettings(DEFAULT_VAE_SCORING, opts.set);
      const t0 = performance.now();
      const files = await listNiftiFiles(opts.data);
      if (files.length === 0) throw new Error(`no NIfTI files in ${opts.data.join(', ')}`);
      const log = stderrLog('calibrate vae: ');
      const { calibrateVae } = await import('./calibrate.js');
      const { writeVaeCalibration } = await import('./model.js');
      const calibration = await calibrateVae({
        weightsDir: opts.weights,
        files,
        region: opts.region === 'brain' ? 'brain' : 'abdomen',
        ...(opts.slices !== undefined ? { slices: opts.slices } : {}),
        pixelVolumes: opts.pixelVolumes,
        ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
        scoring,
        log,
      });
      const file = writeVaeCalibration(opts.weights, calibration);
      log(`wrote ${file} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    });
}
