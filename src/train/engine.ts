/**
 * Where the model runs while training: in this thread, or data-parallel over worker threads.
 *
 * The wasm backend is single-threaded in Node, so on 2 cores a step splits its batch into one part
 * per worker; each worker (its own wasm backend, see ../engine/pool.ts) computes the mean-loss
 * gradients of its part, and the parts are combined here weighted by their sample counts, which is
 * the gradient of the mean loss over the whole batch (up to float rounding). Weights travel with
 * every task (a copy per worker; the compact models are ~1–2 MB) together with a version number, so a
 * worker reloads them only after an update. The same worker count gives the same bytes every run.
 */
import os from 'node:os';
import { createInferencePool, type InferencePool } from '../engine/pool.js';
import {
  ModelRunner,
  type BatchStats,
  type ImageBatch,
  type ModelSpec,
  type RunnerResult,
  type RunnerTask,
  type TrainBatch,
} from './loop-worker.js';

export interface TrainingEngine {
  /** Worker threads in use (0 = this thread). */
  readonly workers: number;
  /** Mean-loss gradients of the whole batch and its statistics. */
  gradients(weights: Float32Array, version: number, batch: TrainBatch, seed: number): Promise<{ grads: Float32Array; stats: BatchStats }>;
  /** Statistics (dropout off) over several batches, weighted by their sizes. */
  evaluate(weights: Float32Array, version: number, batches: readonly TrainBatch[]): Promise<BatchStats>;
  /** Nearest-code maps of every batch (VQ-VAE), in order. */
  encode(weights: Float32Array, version: number, batches: readonly ImageBatch[]): Promise<Int32Array[]>;
  /** Encoder outputs z of one batch (VQ-VAE), [count, h, w, D] flattened. */
  latents(weights: Float32Array, version: number, batch: ImageBatch): Promise<Float32Array>;
  close(): Promise<void>;
}

export interface EngineChoice {
  /** 0: run in this thread. Default: 2 (or the core count, if smaller) on wasm, else 0. */
  workers?: number;
  /** Backend of the worker threads; the in-thread runner uses whatever backend is active. */
  backend: 'wasm' | 'cpu';
}

export function defaultWorkerCount(backend: string): number {
  return backend === 'wasm' ? Math.min(2, os.availableParallelism()) : 0;
}

/** Splits a batch into up to `parts` contiguous pieces of near-equal size (none empty). */
export function splitBatch<B extends TrainBatch>(batch: B, parts: number): B[] {
  const n = Math.min(parts, batch.count);
  const out: B[] = [];
  let start = 0;
  for (let p = 0; p < n; p++) {
    const end = start + Math.floor(batch.count / n) + (p < batch.count % n ? 1 : 0);
    out.push(sliceBatch(batch, start, end));
    start = end;
  }
  return out;
}

/**
 * Samples `start` … `end` of a batch, as copies: every typed-array field is sliced, per sample when it
 * holds one value per sample (positions, levels) and per plane when it holds a plane per sample
 * (images, codes, targets, weights, flags), so batches that extend these kinds split too.
 */
function sliceBatch<B extends TrainBatch>(batch: B, start: number, end: number): B {
  const plane = batch.kind === 'images' ? batch.size * batch.size : batch.height * batch.width;
  const out: Record<string, unknown> = { ...batch, count: end - start };
  for (const [key, value] of Object.entries(batch)) {
    if (!ArrayBuffer.isView(value) || value instanceof DataView) continue;
    const array = value as unknown as Float32Array;
    if (array.length === batch.count * plane) out[key] = array.slice(start * plane, end * plane);
    else if (array.length === batch.count) out[key] = array.slice(start, end);
    else throw new RangeError(`batch field ${key}: ${array.length} values for ${batch.count} samples of ${plane} values`);
  }
  return out as B;
}

/** Weighted means of several batches' statistics; code counts are summed. */
export function combineStats(parts: readonly BatchStats[]): BatchStats {
  const count = parts.reduce((a, p) => a + p.count, 0);
  const means: Record<string, number> = {};
  for (const p of parts) {
    for (const [key, value] of Object.entries(p.means)) means[key] = (means[key] ?? 0) + (value * p.count) / count;
  }
  const withCounts = parts.filter((p) => p.codeCounts !== undefined);
  if (withCounts.length === 0) return { count, means };
  const codeCounts = new Int32Array(withCounts[0]!.codeCounts!.length);
  for (const p of withCounts) p.codeCounts!.forEach((c, i) => (codeCounts[i] += c));
  return { count, means, codeCounts };
}

/**
 * Σ grads_i · count_i / Σ count_i, in part order: the mean-loss gradient of the whole batch from its
 * parts'. Written into the first part's array (the parts are the workers' fresh results; a new
 * 1.7 MB array per step cost about a millisecond more).
 */
export function weightedMeanGradients(parts: readonly { readonly grads: Float32Array; readonly count: number }[]): Float32Array {
  if (parts.length === 1) return parts[0]!.grads;
  const total = parts.reduce((a, p) => a + p.count, 0);
  const out = parts[0]!.grads;
  // Two parts (one per core) in one pass; more are added onto them.
  const wa = parts[0]!.count / total;
  const wb = parts[1]!.count / total;
  const gb = parts[1]!.grads;
  for (let i = 0; i < out.length; i++) out[i] = out[i]! * wa + gb[i]! * wb;
  for (const p of parts.slice(2)) {
    const w = p.count / total;
    const g = p.grads;
    for (let i = 0; i < out.length; i++) out[i] += g[i]! * w;
  }
  return out;
}

export async function createTrainingEngine(model: ModelSpec, choice: EngineChoice): Promise<TrainingEngine> {
  const workers = choice.workers ?? defaultWorkerCount(choice.backend);
  let runTask: (task: RunnerTask) => Promise<RunnerResult>;
  let pool: InferencePool<RunnerTask, RunnerResult> | null = null;
  if (workers === 0) {
    const runner = new ModelRunner(model);
    runTask = async (task) => runner.run(task);
  } else {
    pool = await createInferencePool<ModelSpec, RunnerTask, RunnerResult>({
      // From the .ts sources (vitest) the pool maps this to its compiled twin under dist/.
      jobModule: new URL(import.meta.url.endsWith('.ts') ? './loop-worker.ts' : './loop-worker.js', import.meta.url),
      initArg: model,
      workers,
      backend: choice.backend,
    });
    const p = pool;
    // Each worker gets its own copy: transferring one buffer to two threads would detach it.
    runTask = (task) => p.run({ ...task, weights: task.weights.slice() });
  }
  const parts = Math.max(1, workers);

  const runParts = <B extends TrainBatch>(batches: readonly B[], make: (b: B) => RunnerTask): Promise<RunnerResult[]> =>
    Promise.all(batches.map((b) => runTask(make(b))));

  return {
    workers,
    async gradients(weights, version, batch, seed) {
      const pieces = splitBatch(batch, parts);
      const results = await runParts(pieces, (b) => ({ op: 'gradients', weights, version, batch: b, seed: seed + 7919 * pieces.indexOf(b) }));
      const grads = weightedMeanGradients(results.map((r) => ({ grads: r.grads!, count: r.stats!.count })));
      return { grads, stats: combineStats(results.map((r) => r.stats!)) };
    },
    async evaluate(weights, version, batches) {
      const pieces = batches.flatMap((b) => splitBatch(b, parts));
      const results = await runParts(pieces, (b) => ({ op: 'evaluate', weights, version, batch: b }));
      return combineStats(results.map((r) => r.stats!));
    },
    async encode(weights, version, batches) {
      const results = await runParts(batches, (b) => ({ op: 'encode', weights, version, batch: b }));
      return results.map((r) => r.codes!);
    },
    async latents(weights, version, batch) {
      const result = await runTask({ op: 'latents', weights, version, batch });
      return result.latents!;
    },
    async close() {
      await pool?.close();
    },
  };
}
