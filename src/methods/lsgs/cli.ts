/** `moodlsr train aggregate`, `moodlsr train transformer` and `moodlsr calibrate lsgs`. */
import type { Command } from 'commander';
import { parseSliceSelection, referenceFilesOf, type CalibrateLsrCliOptions } from '../../cli/calibrate-options.js';
import { collect, parseInteger, parseNumber, stderrLog } from '../../cli/common.js';
import { addNetworkOptions, commonOptions, parsePreset, type NetworkTrainFlags } from '../../cli/train-options.js';
import { ENGINE_HELP, parseEngineChoice } from '../../inference/engine-choice.js';
import { listNiftiFiles } from '../../train/dataset.js';
import { DEFAULT_PRIOR_EPOCHS, DEFAULT_TRANSFORMER_BATCH, DEFAULT_VQVAE_BATCH, DEFAULT_VQVAE_EPOCHS } from '../../train/defaults.js';
import { collectSetting } from '../../score/settings.js';
import { DEFAULT_LSGS_SCORING, LSGS_SCORING_KEYS, lsgsScoringFromSettings } from './scoring.js';

/** LSGS: the aggregated codebook (k-means + fine-tune) and the transformer prior. */
export function registerLsgsTrain(train: Command): void {
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
      const { aggregateCodebook } = await import('./aggregate.js');
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
      const { trainTransformer } = await import('./trainer.js');
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

interface CalibrateLsgsCliOptions extends CalibrateLsrCliOptions {
  rounds: number;
  foregroundMask: boolean;
  thresholdCodes: string;
  set: Record<string, string>;
  referenceData: string[];
}

export function registerLsgsCalibrate(calibrate: Command): void {
  calibrate
    .command('lsgs')
    .description('LSGS: λs, λ (98th / 90th percentile of transformer code NLL over foreground codes), sample-score calibration, pixel scale and the scoring chain → WEIGHTS/lsgs-calibration.json')
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
    .option('--threshold-codes <c>', 'codes the λ quantiles are taken over: foreground (patch holds foreground) or all', 'foreground')
    .option('--set <key=value>', `scoring chain stored with the calibration (repeatable; keys: ${LSGS_SCORING_KEYS.join(', ')}; default: src/methods/lsgs/scoring.ts DEFAULT_LSGS_SCORING)`, collectSetting, {})
    .option('--reference-data <dir>', "folder (or file) of other normal volumes (not trained on, not --data) to build the transformer's per-place NLL reference from → WEIGHTS/lsgs-nll-reference.json/.bin, for sample=interior and sum+interior, and with --set reference=on the normal residual reference → WEIGHTS/lsgs-residual-reference.json/.bin (repeatable)", collect, [])
    .action(async (opts: CalibrateLsgsCliOptions) => {
      if (opts.region !== 'brain' && opts.region !== 'abdom') throw new Error(`--region must be brain or abdom, got "${opts.region}"`);
      if (opts.thresholdCodes !== 'foreground' && opts.thresholdCodes !== 'all') throw new Error(`--threshold-codes must be foreground or all, got "${opts.thresholdCodes}"`);
      const scoring = lsgsScoringFromSettings(DEFAULT_LSGS_SCORING, opts.set);
      const t0 = performance.now();
      const files = await listNiftiFiles(opts.data);
      if (files.length === 0) throw new Error(`no NIfTI files in ${opts.data.join(', ')}`);
      const log = stderrLog('calibrate lsgs: ');
      const { calibrateLsgs, writeLsgsCalibration } = await import('./calibrate.js');
      const referenceFiles = await referenceFilesOf(opts.referenceData, files);
      const { calibration, builtReference, builtResidualReference } = await calibrateLsgs({
        weightsDir: opts.weights,
        files,
        region: opts.region === 'brain' ? 'brain' : 'abdomen',
        slices: opts.slices,
        copies: opts.copies,
        rounds: opts.rounds,
        foregroundMask: opts.foregroundMask,
        pixelVolumes: opts.pixelVolumes,
        thresholdCodes: opts.thresholdCodes,
        scoring,
        seed: opts.seed,
        workers: opts.workers,
        engine: parseEngineChoice(opts.engine),
        referenceFiles,
        log,
      });
      const { writeLsgsNllReference, writeLsgsResidualReference } = await import('./references.js');
      if (builtReference !== null) log(`wrote ${await writeLsgsNllReference(opts.weights, builtReference)} (${builtReference.files.length} volumes)`);
      if (builtResidualReference !== null) log(`wrote ${await writeLsgsResidualReference(opts.weights, builtResidualReference)} (${builtResidualReference.files.length} volumes)`);
      const file = writeLsgsCalibration(opts.weights, calibration);
      log(`wrote ${file} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    });
}

