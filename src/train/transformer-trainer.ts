/**
 * `trainTransformer`: trains the LSGS transformer prior on the codes of a frozen VQ-VAE (the code
 * cache and the volume split of the PixelSNAIL trainer, ./prior-trainer.ts) to repair tampered
 * code maps (./tamper.ts): each step draws random code maps, tampers `tamperFraction` of each map's
 * positions, and minimises (1−β)·CE(tampered) + β·CE(untampered) against the original codes.
 * Held-out maps are tampered once with a fixed stream (`${seed}:holdout-tamper`), so the held-out
 * loss of every epoch is measured on the same inputs. Best weights: `transformer.json/.bin`.
 *
 * The causal ablation (`causal: true`) defaults to no tampering: plain next-code cross-entropy.
 */
import { mkdirSync } from 'node:fs';
import { initEngine } from '../engine/backend.js';
import { createRng, type Rng } from '../engine/random.js';
import { disposeParams } from '../models/params.js';
import { loadModel } from '../models/weights.js';
import { vqvaeLatentSize, type PresetName, type VqvaeConfig } from '../models/config.js';
import { initTransformer, transformerPreset, type TransformerConfig } from '../models/transformer.js';
import { fingerprint, prepareData, type CommonTrainOptions } from './common.js';
import { DEFAULT_PRIOR_EPOCHS, DEFAULT_TRANSFORMER_BATCH } from './defaults.js';
import { createTrainingEngine } from './engine.js';
import { DEFAULT_ADAM, runTrainingLoop } from './loop.js';
import { flattenParams, paramLayout, type CodeBatch } from './loop-worker.js';
import { codeBatch, frozenVqvaeCodes, randomCodeBatch } from './prior-trainer.js';
import { DEFAULT_REPAIR_BETA, DEFAULT_TAMPER_FRACTION, repairLossWeights, tamperCodes } from './tamper.js';
import type { TrainOutcome } from './vqvae-trainer.js';

export const TRANSFORMER_NAME = 'transformer';

export interface TransformerTrainOptions extends CommonTrainOptions {
  preset: PresetName;
  /** Folder holding the trained vqvae.json/.bin (frozen). */
  vqvaeDir: string;
  /** Causal mask + next-code prediction (the ablation). Default false. */
  causal?: boolean;
  /** Fraction of each map's positions tampered (default 0.1; 0 for the causal ablation). */
  tamperFraction?: number;
  /** β of the repair loss (default 0.01). */
  beta?: number;
  /** Overrides the preset (grid and codebook size are always taken from the VQ-VAE). */
  config?: TransformerConfig;
}

/** The transformer's config for a VQ-VAE: the preset's sizes on the VQ-VAE's grid and codebook. */
export function transformerConfigFor(base: TransformerConfig, vq: VqvaeConfig, causal: boolean): TransformerConfig {
  const grid = vqvaeLatentSize(vq);
  return { ...base, codebookSize: vq.codebookSize, height: grid, width: grid, causal };
}

/** Tampers a code batch in place of its codes; the originals become the targets. */
export function tamperBatch(batch: CodeBatch, codebookSize: number, fraction: number, beta: number, rng: Rng): CodeBatch {
  const cells = batch.height * batch.width;
  const { input, tampered } = tamperCodes(batch.codes, cells, codebookSize, fraction, rng);
  return { ...batch, codes: input, targets: batch.codes, tampered, lossWeights: repairLossWeights(tampered, cells, beta) };
}

export async function trainTransformer(opts: TransformerTrainOptions): Promise<TrainOutcome> {
  const log0 = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  await initEngine({ prefer: opts.backend ?? 'auto', log: log0 });
  const vq = loadModel<VqvaeConfig>(opts.vqvaeDir, 'vqvae', 'vqvae');
  const vqModel = { kind: 'vqvae' as const, config: vq.config };
  const vqWeights = flattenParams(vq.params, paramLayout(vqModel));
  disposeParams(vq.params);
  const data = await prepareData({ ...opts, log: log0 }, vq.config.inputSize);
  const causal = opts.causal ?? opts.config?.causal ?? false;
  const cfg = transformerConfigFor(opts.config ?? transformerPreset(opts.preset, opts.region, causal), vq.config, causal);
  const fraction = opts.tamperFraction ?? (causal ? 0 : DEFAULT_TAMPER_FRACTION);
  const beta = opts.beta ?? DEFAULT_REPAIR_BETA;
  const seed = opts.seed ?? 0;
  const batch = opts.batch ?? DEFAULT_TRANSFORMER_BATCH;
  mkdirSync(opts.outDir, { recursive: true });

  const cache = await frozenVqvaeCodes(opts, data, vqModel, vqWeights);
  const trainCodes = cache.volumes.slice(0, data.train.length);
  const holdoutCodes = cache.volumes.slice(data.train.length);
  const trainMaps = trainCodes.reduce((a, v) => a + v.count, 0);
  const stepsPerEpoch = opts.stepsPerEpoch ?? Math.max(1, Math.ceil(trainMaps / batch));
  const k = cfg.codebookSize;

  const holdoutRng = createRng(`${seed}:holdout-tamper`);
  const holdoutMaps = holdoutCodes.flatMap((v) => Array.from({ length: v.count }, (_, s) => ({ v, s })));
  const holdout: CodeBatch[] = [];
  for (let i = 0; i < holdoutMaps.length; i += batch) {
    holdout.push(tamperBatch(codeBatch(holdoutMaps.slice(i, i + batch), cache.height, cache.width), k, fraction, beta, holdoutRng));
  }

  const model = { kind: 'transformer' as const, config: cfg };
  const layout = paramLayout(model);
  const initial = initTransformer(cfg, seed);
  const initialWeights = flattenParams(initial, layout);
  disposeParams(initial);
  const engine = await createTrainingEngine(model, { workers: data.workers, backend: data.info.backend === 'cpu' ? 'cpu' : 'wasm' });
  try {
    const adam = { ...DEFAULT_ADAM, lr: opts.lr ?? DEFAULT_ADAM.lr };
    const result = await runTrainingLoop({
      model,
      name: TRANSFORMER_NAME,
      outDir: opts.outDir,
      engine,
      layout,
      initialWeights,
      epochs: opts.epochs ?? DEFAULT_PRIOR_EPOCHS,
      stepsPerEpoch,
      seed,
      adam,
      clip: 1,
      resume: opts.resume ?? false,
      ...(opts.maxMinutes !== undefined ? { maxMinutes: opts.maxMinutes } : {}),
      fingerprint: fingerprint({ kind: 'transformer', cfg, seed, batch, stepsPerEpoch, lr: adam.lr, fraction, beta, codes: cache.key, train: data.train.length }),
      nextBatch: (rng) => tamperBatch(randomCodeBatch(trainCodes, cache, batch, rng), k, fraction, beta, rng),
      holdout,
      afterEpoch: async (ctx) => {
        const t = ctx.trainStats.means;
        data.log(
          `  repair CE: tampered ${t.ceTampered?.toFixed(4) ?? '-'}, untampered ${t.ceUntampered?.toFixed(4) ?? '-'} (train means over the epoch)`,
        );
        return {};
      },
      record: {
        command: opts.command ?? null,
        model: 'transformer',
        preset: opts.preset,
        region: opts.region,
        config: cfg,
        tamperFraction: fraction,
        beta,
        lossAveraging: 'per map and group: (1-beta)*mean CE(tampered) + beta*mean CE(untampered), mean over maps',
        vqvae: opts.vqvaeDir,
        backend: data.info.backend,
        batch,
        trainVolumes: data.train.map((e) => e.file),
        holdoutVolumes: data.holdout.map((e) => e.file),
        skippedFiles: data.skipped,
      },
      log: data.log,
      sink: data.sink,
    });
    return { ...result, outDir: opts.outDir, backend: data.info.backend, workers: engine.workers };
  } finally {
    await engine.close();
  }
}
