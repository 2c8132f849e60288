/** Options shared by the `train` subcommands of the networks (every method with a network, and the shared VQ-VAE). */
import type { Command } from 'commander';
import type { PresetName } from '../models/config.js';
import type { CommonTrainOptions } from '../train/common.js';
import type { Region } from '../volume/normalise.js';
import { collect, parseInteger, parseNumber } from './common.js';
import { parseTrainEngine } from '../train/engine-name.js';

export interface NetworkTrainFlags {
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
  engine: string;
  augment: string;
  vqvae?: string;
  causal?: boolean;
  tamperFraction?: number;
  beta?: number;
  codebookSize?: number;
  kmeansIterations?: number;
  kmeansVectors?: number;
}

export function parseRegion(value: string): Region {
  if (value === 'brain') return 'brain';
  if (value === 'abdom' || value === 'abdomen') return 'abdomen';
  throw new Error(`--region must be brain or abdom, got "${value}"`);
}

export function parsePreset(value: string): PresetName {
  if (value === 'compact' || value === 'reference') return value;
  throw new Error(`--preset must be compact or reference, got "${value}"`);
}

export function commonOptions(flags: NetworkTrainFlags): CommonTrainOptions {
  if (!['auto', 'wasm', 'cpu', 'node-gpu'].includes(flags.backend)) throw new Error(`--backend must be auto, node-gpu, wasm or cpu`);
  return {
    region: parseRegion(flags.region),
    data: flags.data,
    outDir: flags.out,
    seed: flags.seed,
    lr: flags.lr,
    backend: flags.backend as CommonTrainOptions['backend'],
    engine: parseTrainEngine(flags.engine),
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

export function addNetworkOptions(cmd: Command, defaults: { epochs: number; batch: number }): Command {
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
    .option('--backend <b>', 'auto, node-gpu, wasm or cpu', 'auto')
    .option('--engine <e>', 'tfjs, onnx (ONNX Runtime) or auto (ONNX Runtime where it loads and can train the network)', 'tfjs');
}
