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
import { createRng, type Rng } from '../../engine/random.js';
import { vqvaeLatentSize, type PresetName, type VqvaeConfig } from '../../models/config.js';
import { initTransformer, transformerPreset, type TransformerConfig } from './transformer.js';
import type { CommonTrainOptions } from '../../train/common.js';
import { DEFAULT_TRANSFORMER_BATCH } from '../../train/defaults.js';
import type { CodeBatch } from '../../train/loop-worker.js';
import { frozenCodeTraining, loadFrozenVqvae, runCodeTrainer } from '../../train/prior-trainer.js';
import { DEFAULT_REPAIR_BETA, DEFAULT_TAMPER_FRACTION, repairLossWeights, tamperCodes } from './tamper.js';
import type { TrainOutcome } from '../../train/trainer-run.js';

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
  const frozen = await loadFrozenVqvae(opts);
  const causal = opts.causal ?? opts.config?.causal ?? false;
  const cfg = transformerConfigFor(opts.config ?? transformerPreset(opts.preset, opts.region, causal), frozen.vqModel.config, causal);
  const fraction = opts.tamperFraction ?? (causal ? 0 : DEFAULT_TAMPER_FRACTION);
  const beta = opts.beta ?? DEFAULT_REPAIR_BETA;
  const seed = opts.seed ?? 0;
  const batch = opts.batch ?? DEFAULT_TRANSFORMER_BATCH;
  const codes = await frozenCodeTraining(opts, frozen, batch);
  const k = cfg.codebookSize;

  const holdoutRng = createRng(`${seed}:holdout-tamper`);
  const holdout = codes.holdout.map((b) => tamperBatch(b, k, fraction, beta, holdoutRng));

  return runCodeTrainer(opts, frozen.data, codes, {
    model: { kind: 'transformer', config: cfg },
    batch,
    seed,
    start: initTransformer(cfg, seed),
    fingerprint: { fraction, beta },
    prepare: (b, rng) => tamperBatch(b, k, fraction, beta, rng),
    holdout,
    afterEpoch: async (ctx) => {
      const t = ctx.trainStats.means;
      frozen.data.log(`  repair CE: tampered ${t.ceTampered?.toFixed(4) ?? '-'}, untampered ${t.ceUntampered?.toFixed(4) ?? '-'} (train means over the epoch)`);
      return {};
    },
    details: {
      tamperFraction: fraction,
      beta,
      lossAveraging: 'per map and group: (1-beta)*mean CE(tampered) + beta*mean CE(untampered), mean over maps',
    },
  });
}
