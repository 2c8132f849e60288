/** Options shared by the `train` subcommands of the networks (every method with a network, and the shared VQ-VAE). */
import type { Command } from 'commander';
import type { PresetName } from '../models/config.js';
import type { CommonTrainOptions } from '../train/common.js';
import type { Region } from '../volume/normalise.js';
import { collect, parseInteger, parseNumber } from './common.js';
import { parseTrainEngine } from '../train/engine-name.js';
import { TRAINING_SLICE_RULES, type TrainingSliceRule } from '../train/dataset.js';
import { LR_DECAYS, type LrDecay, type LrSchedule } from '../train/schedule.js';

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
  slices: string;
  minForeground?: number;
  maxSlices?: number;
  warmup?: number;
  decay?: string;
  minLrFraction?: number;
  decayEvery?: number;
  decayFactor?: number;
  accumulate?: number;
  dropout?: number;
  init?: string;
  stackCache?: string;
}

function parseSliceRule(value: string): TrainingSliceRule {
  if ((TRAINING_SLICE_RULES as readonly string[]).includes(value)) return value as TrainingSliceRule;
  throw new Error(`--slices must be ${TRAINING_SLICE_RULES.join(' or ')}, got "${value}"`);
}

/** The learning-rate schedule of the flags, or undefined when neither --warmup nor --decay is given. */
export function scheduleOptions(flags: Pick<NetworkTrainFlags, 'warmup' | 'decay' | 'minLrFraction' | 'decayEvery' | 'decayFactor'>): LrSchedule | undefined {
  if (flags.warmup === undefined && (flags.decay === undefined || flags.decay === 'none')) return undefined;
  const decay = (flags.decay ?? 'none') as LrDecay;
  if (!LR_DECAYS.includes(decay)) throw new Error(`--decay must be ${LR_DECAYS.join(', ')}, got "${flags.decay}"`);
  if (decay === 'step' && flags.decayEvery === undefined) throw new Error('--decay step needs --decay-every <steps>');
  return {
    warmupSteps: flags.warmup ?? 0,
    decay,
    ...(flags.minLrFraction !== undefined ? { minFraction: flags.minLrFraction } : {}),
    ...(flags.decayEvery !== undefined ? { every: flags.decayEvery } : {}),
    ...(flags.decayFactor !== undefined ? { factor: flags.decayFactor } : {}),
  };
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
  const schedule = scheduleOptions(flags);
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
    sliceRule: parseSliceRule(flags.slices),
    ...(flags.minForeground !== undefined ? { minForegroundFraction: flags.minForeground } : {}),
    ...(flags.maxSlices !== undefined ? { maxSlicesPerVolume: flags.maxSlices } : {}),
    ...(schedule !== undefined ? { schedule } : {}),
    ...(flags.accumulate !== undefined && flags.accumulate > 1 ? { accumulate: flags.accumulate } : {}),
    ...(flags.stackCache !== undefined ? { stackCache: flags.stackCache } : {}),
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
    .option('--workers <n>', 'data-parallel worker threads (default 2 on wasm and ONNX Runtime; 0 = this thread)', parseInteger('--workers', 0))
    .option('--backend <b>', 'auto, node-gpu, wasm or cpu', 'auto')
    .option('--engine <e>', 'tfjs, onnx (ONNX Runtime) or auto (ONNX Runtime where it loads and can train the network)', 'tfjs')
    .option('--slices <rule>', 'training slices per volume: foreground (every axial plane with ≥ --min-foreground of its voxels > 0.05) or even (up to 64 evenly spread; the rule of runs before issue 15)', 'foreground')
    .option('--min-foreground <f>', 'minimum foreground fraction of a plane for --slices foreground (default 0.01)', parseNumber('--min-foreground', 0, 1))
    .option('--max-slices <n>', 'cap on the slices kept per volume (even: default 64; foreground: no cap)', parseInteger('--max-slices', 1))
    .option('--warmup <steps>', 'linear learning-rate warm-up over this many optimiser steps', parseInteger('--warmup', 0))
    .option('--decay <d>', 'learning-rate decay after the warm-up: none, cosine (to --min-lr-fraction × lr at the last planned step) or step')
    .option('--min-lr-fraction <f>', 'cosine: final rate as a fraction of --lr (default 0.05)', parseNumber('--min-lr-fraction', 0, 1))
    .option('--decay-every <steps>', 'step decay: optimiser steps between decays', parseInteger('--decay-every', 1))
    .option('--decay-factor <f>', 'step decay: multiplier per decay (default 0.5)', parseNumber('--decay-factor', 0, 1))
    .option('--stack-cache <dir>', 'cache the preprocessed slices of every volume in this folder (a resumed run reads them instead of the NIfTI files)')
    .option('--accumulate <k>', 'batches averaged into one optimiser step (effective batch = k × --batch; default 1)', parseInteger('--accumulate', 1));
}

/** --dropout for the networks whose trainer takes a config override (VQ-VAE, prior). */
export function addDropoutOption(cmd: Command): Command {
  return cmd.option('--dropout <p>', 'channel dropout rate while training (default: the preset\'s, 0.1)', parseNumber('--dropout', 0, 1));
}
