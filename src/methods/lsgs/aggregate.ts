/**
 * LSGS aggregated codebook (Wang et al.): k-means over the encoder outputs (pre-quantisation vectors
 * z) of the training slices gives a new codebook, which replaces the trained VQ-VAE's; the VQ-VAE is
 * then fine-tuned from those weights through the ordinary VQ-VAE trainer (`trainVqvae` with
 * `startFrom`), so checkpoints, --resume, --max-minutes and dead-code re-seeding work as usual.
 *
 * Vectors: every slice the dataset keeps of every TRAINING volume (unaugmented), all latent positions;
 * at most `kmeansVectors` of them, a seeded subset without repeats. k-means++ start and Lloyd
 * iterations from ./kmeans.ts, all draws from `${seed}:kmeans…`, so the same inputs give the same
 * codebook. A different `codebookSize` than the VQ-VAE's is allowed (the paper grew it).
 *
 * Report (`<out>/aggregate.json`, also logged): for the original codebook, the k-means codebook before
 * fine-tuning and the fine-tuned best weights: codes used and mean squared quantisation error on the
 * clustered training vectors (each encoder's own vectors), and L1 reconstruction loss + codes used on
 * the fixed held-out slices (8 evenly spread per held-out volume), dropout off.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { initEngine } from '../../engine/backend.js';
import { createRng } from '../../engine/random.js';
import { atomicWriteFile } from '../../io/atomic.js';
import { vqvaeLatentSize, type PresetName, type VqvaeConfig } from '../../models/config.js';
import { disposeParams } from '../../models/params.js';
import { CODEBOOK } from '../../models/vqvae.js';
import { loadModel } from '../../models/weights.js';
import type { AugmentPreset } from '../../train/augment.js';
import { prepareData, type CommonTrainOptions, type PreparedData } from '../../train/common.js';
import { codebookUsage } from '../../train/loop.js';
import { createTrainingEngine, type TrainingEngine } from '../../train/engine.js';
import { assignToNearest, kmeans, usedClusters } from './kmeans.js';
import { flattenParams, paramLayout, type ImageBatch, type ParamLayout } from '../../train/loop-worker.js';
import { pickIndices } from '../../train/sampler.js';
import { HOLDOUT_SLICES_PER_VOLUME, holdoutImageBatches, trainVqvae, type TrainOutcome } from '../../train/vqvae-trainer.js';
import { DEFAULT_VQVAE_BATCH } from '../../train/defaults.js';

export const DEFAULT_KMEANS_VECTORS = 131072;
export const DEFAULT_KMEANS_ITERATIONS = 25;

export interface AggregateOptions extends CommonTrainOptions {
  preset: PresetName;
  /** Folder holding the trained vqvae.json/.bin to start from. */
  vqvaeDir: string;
  augment?: AugmentPreset;
  /** Codes of the new codebook (default: the VQ-VAE's). */
  codebookSize?: number;
  kmeansIterations?: number;
  kmeansVectors?: number;
}

export interface CodebookQuality {
  /** Distinct codes chosen by the clustered training vectors. */
  trainCodesUsed: number;
  /** Mean ‖z − e‖² of the clustered training vectors to their nearest code. */
  trainQuantisationMse: number;
  /** Held-out: mean |x̂ − x| and distinct codes used (absent without held-out volumes). */
  holdoutRec?: number;
  holdoutCodesUsed?: number;
  holdoutPerplexity?: number;
}

export interface AggregateReport {
  vqvae: string;
  codebookSize: { before: number; after: number };
  vectors: { total: number; clustered: number };
  kmeans: { iterations: number; objective: number[]; seconds: number };
  original: CodebookQuality;
  aggregated: CodebookQuality;
  fineTuned: CodebookQuality | null;
  fineTune: { epochs: number; stopped: string; bestEpoch: number | null };
}

/** Every kept slice of the given stacks as unaugmented image batches. */
function allSliceBatches(data: PreparedData, batch: number): ImageBatch[] {
  const out: ImageBatch[] = [];
  for (const { stack } of data.train) {
    const plane = stack.height * stack.width;
    for (let first = 0; first < stack.count; first += batch) {
      const count = Math.min(batch, stack.count - first);
      out.push({
        kind: 'images',
        images: stack.data.slice(first * plane, (first + count) * plane),
        positions: stack.positions.slice(first, first + count),
        count,
        size: stack.height,
      });
    }
  }
  return out;
}

async function encoderVectors(engine: TrainingEngine, weights: Float32Array, version: number, batches: readonly ImageBatch[]): Promise<Float32Array> {
  // Copies: the worker pool transfers (detaches) the typed arrays of a task, and the batches are used twice.
  const parts = await Promise.all(batches.map((b) => engine.latents(weights, version, { ...b, images: b.images.slice(), positions: b.positions.slice() })));
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function gatherRows(all: Float32Array, d: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * d);
  rows.forEach((r, i) => out.set(all.subarray(r * d, (r + 1) * d), i * d));
  return out;
}

function codebookOf(weights: Float32Array, layout: ParamLayout): Float32Array {
  const entry = layout.entries.find((e) => e.name === CODEBOOK);
  if (entry === undefined) throw new Error(`no ${CODEBOOK} in the VQ-VAE layout`);
  return weights.subarray(entry.offset, entry.offset + entry.size);
}

/** The old weights in the new config's layout, with the codebook replaced. */
function withCodebook(old: Float32Array, oldLayout: ParamLayout, newLayout: ParamLayout, codebook: Float32Array): Float32Array {
  const out = new Float32Array(newLayout.total);
  for (const e of newLayout.entries) {
    if (e.name === CODEBOOK) {
      if (codebook.length !== e.size) throw new Error(`codebook of ${codebook.length} values for a ${e.shape.join('×')} tensor`);
      out.set(codebook, e.offset);
      continue;
    }
    const src = oldLayout.entries.find((x) => x.name === e.name);
    if (src === undefined || src.size !== e.size) throw new Error(`tensor ${e.name} does not carry over to the new codebook size`);
    out.set(old.subarray(src.offset, src.offset + src.size), e.offset);
  }
  return out;
}

async function quality(
  engine: TrainingEngine,
  weights: Float32Array,
  version: number,
  layout: ParamLayout,
  cfg: VqvaeConfig,
  vectors: Float32Array,
  holdout: readonly ImageBatch[],
): Promise<CodebookQuality> {
  const d = cfg.codeDim;
  const assigned = assignToNearest(vectors, d, codebookOf(weights, layout));
  const q: CodebookQuality = {
    trainCodesUsed: usedClusters(assigned.assignments, cfg.codebookSize),
    trainQuantisationMse: assigned.objective / (vectors.length / d),
  };
  if (holdout.length > 0) {
    const stats = await engine.evaluate(weights, version, holdout);
    q.holdoutRec = stats.means.rec!;
    if (stats.codeCounts !== undefined) {
      const usage = codebookUsage(stats.codeCounts);
      q.holdoutCodesUsed = usage.used;
      q.holdoutPerplexity = usage.perplexity;
    }
  }
  return q;
}

function describe(label: string, q: CodebookQuality): string {
  const held = q.holdoutRec === undefined ? '' : `; held-out rec ${q.holdoutRec.toFixed(4)}, codes used ${q.holdoutCodesUsed}, perplexity ${q.holdoutPerplexity?.toFixed(1)}`;
  return `${label}: training vectors use ${q.trainCodesUsed} codes, quantisation MSE ${q.trainQuantisationMse.toExponential(3)}${held}`;
}

export async function aggregateCodebook(opts: AggregateOptions): Promise<{ report: AggregateReport; fineTune: TrainOutcome }> {
  const log0 = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  await initEngine({ prefer: opts.backend ?? 'auto', log: log0 });
  const vq = loadModel<VqvaeConfig>(opts.vqvaeDir, 'vqvae', 'vqvae');
  const oldCfg = vq.config;
  const oldModel = { kind: 'vqvae' as const, config: oldCfg };
  const oldLayout = paramLayout(oldModel);
  const oldWeights = flattenParams(vq.params, oldLayout);
  disposeParams(vq.params);
  const data = await prepareData({ ...opts, log: log0 }, oldCfg.inputSize);
  const log = data.log;
  const seed = opts.seed ?? 0;
  const k = opts.codebookSize ?? oldCfg.codebookSize;
  const newCfg: VqvaeConfig = { ...oldCfg, codebookSize: k };
  const newModel = { kind: 'vqvae' as const, config: newCfg };
  const newLayout = paramLayout(newModel);
  const d = oldCfg.codeDim;
  const backend = data.info.backend === 'cpu' ? 'cpu' : 'wasm';
  const batch = opts.batch ?? DEFAULT_VQVAE_BATCH;
  const holdout = holdoutImageBatches(data.holdout.map((e) => e.stack), HOLDOUT_SLICES_PER_VOLUME, batch);
  const sliceBatches = allSliceBatches(data, 8);

  const oldEngine = await createTrainingEngine(oldModel, { workers: data.workers, backend });
  let all: Float32Array;
  let rows: number[];
  let original: CodebookQuality;
  try {
    const t0 = performance.now();
    all = await encoderVectors(oldEngine, oldWeights, 1, sliceBatches);
    const total = all.length / d;
    const wanted = Math.min(total, opts.kmeansVectors ?? DEFAULT_KMEANS_VECTORS);
    rows = wanted === total ? Array.from({ length: total }, (_, i) => i) : pickIndices(total, wanted, createRng(`${seed}:kmeans-sample`)).sort((a, b) => a - b);
    log(`aggregate: ${total} encoder vectors of ${data.train.length} training volumes (${vqvaeLatentSize(oldCfg)}² per slice) in ${((performance.now() - t0) / 1000).toFixed(1)} s; clustering ${rows.length}`);
    original = await quality(oldEngine, oldWeights, 1, oldLayout, oldCfg, gatherRows(all, d, rows), holdout);
  } finally {
    await oldEngine.close();
  }
  log(describe('original codebook', original));
  const vectors = gatherRows(all, d, rows);

  const t1 = performance.now();
  const clustered = kmeans(vectors, d, { k, rng: createRng(`${seed}:kmeans`), iterations: opts.kmeansIterations ?? DEFAULT_KMEANS_ITERATIONS });
  const kmeansSeconds = (performance.now() - t1) / 1000;
  log(`k-means: ${clustered.iterations} iterations in ${kmeansSeconds.toFixed(1)} s, objective ${clustered.objective[0]!.toExponential(4)} → ${clustered.objective[clustered.objective.length - 1]!.toExponential(4)}`);
  const startWeights = withCodebook(oldWeights, oldLayout, newLayout, clustered.centroids);

  const newEngine = await createTrainingEngine(newModel, { workers: data.workers, backend });
  let aggregated: CodebookQuality;
  try {
    aggregated = await quality(newEngine, startWeights, 1, newLayout, newCfg, vectors, holdout);
  } finally {
    await newEngine.close();
  }
  log(describe('aggregated codebook (before fine-tuning)', aggregated));

  const label = createHash('sha256').update(new Uint8Array(startWeights.buffer, startWeights.byteOffset, startWeights.byteLength)).digest('hex').slice(0, 16);
  const fineTune = await trainVqvae({ ...opts, config: newCfg, startFrom: { weights: startWeights, label }, prepared: data, log });

  let fineTuned: CodebookQuality | null = null;
  if (fineTune.state.epoch > 0) {
    const best = loadModel<VqvaeConfig>(opts.outDir, 'vqvae', 'vqvae');
    const bestWeights = flattenParams(best.params, newLayout);
    disposeParams(best.params);
    const engine = await createTrainingEngine(newModel, { workers: data.workers, backend });
    try {
      const own = await encoderVectors(engine, bestWeights, 1, sliceBatches);
      fineTuned = await quality(engine, bestWeights, 1, newLayout, newCfg, gatherRows(own, d, rows), holdout);
    } finally {
      await engine.close();
    }
    log(describe('fine-tuned (best weights)', fineTuned));
  }
  const report: AggregateReport = {
    vqvae: opts.vqvaeDir,
    codebookSize: { before: oldCfg.codebookSize, after: k },
    vectors: { total: all.length / d, clustered: rows.length },
    kmeans: { iterations: clustered.iterations, objective: clustered.objective, seconds: kmeansSeconds },
    original,
    aggregated,
    fineTuned,
    fineTune: { epochs: fineTune.state.epoch, stopped: fineTune.stopped, bestEpoch: fineTune.state.bestEpoch },
  };
  await atomicWriteFile(path.join(opts.outDir, 'aggregate.json'), JSON.stringify(report, null, 1) + '\n');
  return { report, fineTune };
}
