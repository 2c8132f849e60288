import type { Command } from 'commander';
import { fitZScore, saveZScore } from '../baselines/zscore-model.js';
import { DEFAULT_ZSCORE_CONFIG, ZSCORE_SETTING_KEYS, zscoreSettings } from '../baselines/zscore.js';
import { listNiftiFiles } from '../train/dataset.js';
import { collect, parseInteger, parseNumber, stderrLog } from './common.js';
import type { PresetName } from '../models/config.js';
import type { Region } from '../volume/normalise.js';
import type { CommonTrainOptions } from '../train/common.js';
import { DEFAULT_PRIOR_BATCH, DEFAULT_PRIOR_EPOCHS, DEFAULT_TRANSFORMER_BATCH, DEFAULT_VQVAE_BATCH, DEFAULT_VQVAE_EPOCHS } from '../train/defaults.js';

/** `moodlsr train <model>`: one subcommand per trainable model. */
export function registerTrain(program: Command): void {
  const train = program.command('train').description('fit a model on folders of normal volumes');
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
    .option('--set <key=value>', `scoring option stored with the weights (repeatable): ${ZSCORE_SETTING_KEYS.join(', ')}`, collect, [])
    .option('--seed <s>', 'seed of the hold-out split', parseInteger('--seed'), 0)
    .action(async (opts: { data: string[]; out: string; region: string; grid: number; holdout: number; calibrationData: string[]; quantiles: number; set: string[]; seed: number }) => {
      const t0 = performance.now();
      const files = await listNiftiFiles(opts.data);
      if (files.length === 0) throw new Error(`no NIfTI files in ${opts.data.join(', ')}`);
      const calibrationFiles = opts.calibrationData.length > 0 ? await listNiftiFiles(opts.calibrationData) : undefined;
      if (calibrationFiles?.length === 0) throw new Error(`no NIfTI files in ${opts.calibrationData.join(', ')}`);
      const settings = zscoreSettings({ ...DEFAULT_ZSCORE_CONFIG, grid: opts.grid }, keyValuePairs(opts.set));
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
  registerNetworkTraining(train);
}

/** `key=value` texts as a record (the last of a repeated key wins); throws naming a malformed one. */
function keyValuePairs(texts: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const text of texts) {
    const eq = text.indexOf('=');
    if (eq <= 0) throw new Error(`--set expects key=value, got "${text}"`);
    out[text.slice(0, eq).trim()] = text.slice(eq + 1);
  }
  return out;
}

interface NetworkTrainFlags {
  region: string;
  data: string[];
  preset: string;
  out: string;
  epochs?: number;
  batch?: number;
  seed: number;
  resume?: boolean;
  holdout?: number;
  stepsPerEpoch?: number;
  maxMinutes?: number;
  lr: number;
  workers?: number;
  backend: string;
  augment: string;
  vqvae?: string;
  causal?: boolean;
  tamperFraction?: number;
  beta?: number;
  codebookSize?: number;
  kmeansIterations?: number;
  kmeansVectors?: number;
}

function parseRegion(value: string): Region {
  if (value === 'brain') return 'brain';
  if (value === 'abdom' || value === 'abdomen') return 'abdomen';
  throw new Error(`--region must be brain or abdom, got "${value}"`);
}

function parsePreset(value: string): PresetName {
  if (value === 'compact' || value === 'reference') return value;
  throw new Error(`--preset must be compact or reference, got "${value}"`);
}

function commonOptions(flags: NetworkTrainFlags): CommonTrainOptions {
  if (!['auto', 'wasm', 'cpu', 'node-gpu'].includes(flags.backend)) throw new Error(`--backend must be auto, node-gpu, wasm or cpu`);
  return {
    region: parseRegion(flags.region),
    data: flags.data,
    outDir: flags.out,
    seed: flags.seed,
    lr: flags.lr,
    backend: flags.backend as CommonTrainOptions['backend'],
    command: `moodlsr ${process.argv.slice(2).join(' ')}`,
    ...(flags.epochs !== undefined ? { epochs: flags.epochs } : {}),
    ...(flags.batch !== undefined ? { batch: flags.batch } : {}),
    ...(flags.resume ? { resume: true } : {}),
    ...(flags.holdout !== undefined ? { holdout: flags.holdout } : {}),
    ...(flags.stepsPerEpoch !== undefined ? { stepsPerEpoch: flags.stepsPerEpoch } : {}),
    ...(flags.maxMinutes !== undefined ? { maxMinutes: flags.maxMinutes } : {}),
    ...(flags.workers !== undefined ? { workers: flags.workers } : {}),
  };
}

function addNetworkOptions(cmd: Command, defaults: { epochs: number; batch: number }): Command {
  return cmd
    .requiredOption('--region <r>', 'brain or abdom')
    .requiredOption('--data <dir>', 'folder of normal volumes (repeatable)', collect, [])
    .requiredOption('--out <dir>', 'output folder: best weights, checkpoint, training.json')
    .option('--preset <p>', 'compact (CPU) or reference (the paper, for a GPU)', 'compact')
    .option('--epochs <n>', `epochs (default ${defaults.epochs})`, parseInteger('--epochs', 1))
    .option('--batch <n>', `samples per step (default ${defaults.batch})`, parseInteger('--batch', 1))
    .option('--seed <s>', 'seed of the split, initialisation, sampling, augmentation and dropout', parseInteger('--seed'), 0)
    .option('--resume', 'continue from the checkpoint in --out')
    .option('--holdout <k>', 'held-out volumes (default 10 %, none below 3 volumes)', parseInteger('--holdout', 0))
    .option('--steps-per-epoch <n>', 'optimiser steps per epoch (default: one pass over the training slices)', parseInteger('--steps-per-epoch', 1))
    .option('--max-minutes <m>', 'do not start an epoch that would end after this many minutes', parseNumber('--max-minutes', 0))
    .option('--lr <x>', 'Adam learning rate', parseNumber('--lr', 0, 1), 1e-4)
    .option('--workers <n>', 'data-parallel worker threads (default 2 on wasm, 0 = this thread)', parseInteger('--workers', 0))
    .option('--backend <b>', 'auto, node-gpu, wasm or cpu', 'auto');
}

function registerNetworkTraining(train: Command): void {
  addNetworkOptions(
    train.command('vqvae').description('train the VQ-VAE on random augmented slices of normal volumes'),
    { epochs: DEFAULT_VQVAE_EPOCHS, batch: DEFAULT_VQVAE_BATCH },
  )
    .option('--augment <a>', 'paper or none', 'paper')
    .action(async (flags: NetworkTrainFlags) => {
      if (flags.augment !== 'paper' && flags.augment !== 'none') throw new Error('--augment must be paper or none');
      const { trainVqvae } = await import('../train/vqvae-trainer.js');
      const result = await trainVqvae({ ...commonOptions(flags), preset: parsePreset(flags.preset), augment: flags.augment });
      stderrLog('train vqvae: ')(`${result.state.epoch} epochs done (${result.stopped}); best weights in ${flags.out}/vqvae.json`);
    });
  addNetworkOptions(
    train.command('prior').description('train the PixelSNAIL prior on the codes of a trained VQ-VAE'),
    { epochs: DEFAULT_PRIOR_EPOCHS, batch: DEFAULT_PRIOR_BATCH },
  )
    .requiredOption('--vqvae <dir>', 'folder holding vqvae.json/.bin')
    .action(async (flags: NetworkTrainFlags) => {
      const { trainPrior } = await import('../train/prior-trainer.js');
      const result = await trainPrior({ ...commonOptions(flags), preset: parsePreset(flags.preset), vqvaeDir: flags.vqvae! });
      stderrLog('train prior: ')(`${result.state.epoch} epochs done (${result.stopped}); best weights in ${flags.out}/pixelsnail.json`);
    });
  addNetworkOptions(
    train.command('vae').description('train the VAE baseline (VQ-VAE encoder/decoder, dense Gaussian latent) on random augmented slices'),
    { epochs: DEFAULT_VQVAE_EPOCHS, batch: DEFAULT_VQVAE_BATCH },
  )
    .option('--augment <a>', 'paper or none', 'paper')
    .option('--rec-std <s>', 'σ of the Gaussian likelihood in normalised units (default: the preset\'s, 1)', parseNumber('--rec-std', 0))
    .option('--latent <n>', 'latent dimension (default: the preset\'s, 128)', parseInteger('--latent', 1))
    .action(async (flags: NetworkTrainFlags & { recStd?: number; latent?: number }) => {
      if (flags.augment !== 'paper' && flags.augment !== 'none') throw new Error('--augment must be paper or none');
      const { trainVae } = await import('../train/vae-trainer.js');
      const result = await trainVae({
        ...commonOptions(flags),
        preset: parsePreset(flags.preset),
        augment: flags.augment,
        ...(flags.recStd !== undefined ? { recStd: flags.recStd } : {}),
        ...(flags.latent !== undefined ? { latentDim: flags.latent } : {}),
      });
      stderrLog('train vae: ')(`${result.state.epoch} epochs done (${result.stopped}); best weights in ${flags.out}/vae.json`);
    });
  registerLsgsTraining(train);
}

/** LSGS: the aggregated codebook (k-means + fine-tune) and the transformer prior. */
function registerLsgsTraining(train: Command): void {
  addNetworkOptions(
    train
      .command('aggregate')
      .description('LSGS aggregated codebook: k-means over the VQ-VAE encoder outputs of the training slices → new codebook → fine-tune the VQ-VAE'),
    { epochs: DEFAULT_VQVAE_EPOCHS, batch: DEFAULT_VQVAE_BATCH },
  )
    .requiredOption('--vqvae <dir>', 'folder holding the trained vqvae.json/.bin to start from')
    .option('--codebook-size <k>', 'codes of the aggregated codebook (default: the VQ-VAE\'s)', parseInteger('--codebook-size', 2))
    .option('--kmeans-iterations <n>', 'most Lloyd iterations', parseInteger('--kmeans-iterations', 1), 25)
    .option('--kmeans-vectors <n>', 'most encoder vectors clustered (a seeded subset when there are more)', parseInteger('--kmeans-vectors', 1), 131072)
    .option('--augment <a>', 'augmentation while fine-tuning: paper or none', 'paper')
    .action(async (flags: NetworkTrainFlags) => {
      if (flags.augment !== 'paper' && flags.augment !== 'none') throw new Error('--augment must be paper or none');
      const { aggregateCodebook } = await import('../train/aggregate.js');
      const result = await aggregateCodebook({
        ...commonOptions(flags),
        preset: parsePreset(flags.preset),
        augment: flags.augment,
        vqvaeDir: flags.vqvae!,
        ...(flags.codebookSize !== undefined ? { codebookSize: flags.codebookSize } : {}),
        kmeansIterations: flags.kmeansIterations!,
        kmeansVectors: flags.kmeansVectors!,
      });
      stderrLog('train aggregate: ')(`${result.fineTune.state.epoch} fine-tune epochs done (${result.fineTune.stopped}); weights in ${flags.out}/vqvae.json, report in ${flags.out}/aggregate.json`);
    });
  addNetworkOptions(
    train.command('transformer').description('LSGS: train the transformer prior to repair tampered code maps of a frozen VQ-VAE'),
    { epochs: DEFAULT_PRIOR_EPOCHS, batch: DEFAULT_TRANSFORMER_BATCH },
  )
    .requiredOption('--vqvae <dir>', 'folder holding vqvae.json/.bin (frozen)')
    .option('--causal', 'ablation: causal mask and next-code prediction (default tamper fraction 0)')
    .option('--tamper-fraction <f>', 'fraction of each code map replaced by random codes (default 0.1; causal: 0)', parseNumber('--tamper-fraction', 0, 1))
    .option('--beta <b>', 'β of (1−β)·CE(tampered) + β·CE(untampered)', parseNumber('--beta', 0, 1), 0.01)
    .action(async (flags: NetworkTrainFlags) => {
      const { trainTransformer } = await import('../train/transformer-trainer.js');
      const result = await trainTransformer({
        ...commonOptions(flags),
        preset: parsePreset(flags.preset),
        vqvaeDir: flags.vqvae!,
        causal: flags.causal === true,
        ...(flags.tamperFraction !== undefined ? { tamperFraction: flags.tamperFraction } : {}),
        beta: flags.beta!,
      });
      stderrLog('train transformer: ')(`${result.state.epoch} epochs done (${result.stopped}); best weights in ${flags.out}/transformer.json`);
    });
}
