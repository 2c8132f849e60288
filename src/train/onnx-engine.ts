/**
 * A `TrainingEngine` (./engine.ts) on ONNX Runtime: each network's training graph (./onnx-nets.ts)
 * differentiated by ../onnx/autodiff/backward.ts and run by ./onnx-runner.ts; Adam, clipping and
 * checkpoints stay in the shared loop (./loop.ts) on the flat weights, so checkpoints are the same
 * files whichever engine wrote them.
 *
 * Parallelism. ONNX Runtime's intra-op threads barely help these small training graphs, and
 * onnxruntime-node's `run` occupies the thread that calls it. So with `sessions: n > 1` the engine
 * starts n worker threads, each with its own sessions (cores / n intra-op threads), splits a step's
 * batch into n parts and weights the parts' gradients by their sizes, as the TF.js workers do. The
 * weights travel once per version in a SharedArrayBuffer; dropout masks are drawn for the whole batch
 * from the step's seed and sliced in each worker, so only the VAE's noise (drawn per part) depends on
 * n. `sessions: 1` runs in this thread. docs/benchmarks.md has the measurements.
 */
import os from 'node:os';
import { createInferencePool, type InferencePool } from '../engine/pool.js';
import { combineStats, splitBatch, weightedMeanGradients, type TrainingEngine } from './engine.js';
import type { BatchStats, TrainBatch } from './loop-worker.js';
import { createOnnxRunner, customKernels, type OnnxRunner, type OnnxRunnerInit, type OnnxRunnerResult, type OnnxRunnerTask, type PartPlace } from './onnx-runner.js';
import type { OnnxModelSpec } from './onnx-nets.js';

export { foregroundL1Parts, foregroundNllParts, onnxNetFor, type OnnxModelSpec, type OnnxNet } from './onnx-nets.js';

export interface OnnxEngineOptions {
  /** Intra-op threads per session (default: every core / sessions, at least 1). */
  threads?: number;
  /** Sessions a step's batch is split over, each in its own worker thread (default 1: this thread). */
  sessions?: number;
  /**
   * Run gradient graphs with the project's custom kernels where they load (../onnx/native-session.ts;
   * default true). false keeps standard operators on onnxruntime-node (comparisons, tests).
   */
  customKernels?: boolean;
}

/** Sessions the command-line trainers use by default: one worker thread per core, up to 2 (docs/benchmarks.md). */
export function defaultOnnxSessions(): number {
  return Math.min(2, os.availableParallelism());
}

/** Sessions for a trainer's `--workers` (data-parallel worker threads on either engine): 0 or 1 run in this thread. */
export function onnxSessionsForWorkers(workers: number | undefined): number {
  return Math.max(1, workers ?? defaultOnnxSessions());
}

/** The trainers' log line for an ONNX Runtime engine. */
export function describeOnnxEngine(engine: Pick<OnnxTrainingEngine, 'sessions' | 'threads'> & { customKernels?: boolean }): string {
  const kernels = engine.customKernels === undefined ? '' : engine.customKernels ? ', gradient graphs with the custom kernels (native/ort-kernels)' : ', standard operators only';
  return `ONNX Runtime, ${engine.sessions === 1 ? 'this thread' : `${engine.sessions} worker threads`} × ${engine.threads} intra-op threads${kernels}`;
}

export interface OnnxTrainingEngine extends TrainingEngine {
  readonly threads: number;
  readonly sessions: number;
  /** Whether gradient graphs run with the project's custom kernels (./onnx-runner.ts, `customKernels`). */
  readonly customKernels: boolean;
}

/** The seed of part `slot`'s own noise: the step's seed for the first part, so one session = the unsplit step. */
function noiseSeed(seed: number, slot: number): number {
  return slot === 0 ? seed : (seed + 0x632be5ab * slot) >>> 0;
}

/** The places of a step's parts in its batch. */
function placesOf(parts: readonly TrainBatch[], seed: number): PartPlace[] {
  const total = parts.reduce((a, p) => a + p.count, 0);
  let offset = 0;
  return parts.map((part, slot) => {
    const place = { offset, total, seed, noiseSeed: noiseSeed(seed, slot) };
    offset += part.count;
    return place;
  });
}

function combineGradients(results: readonly { grads: Float32Array; stats: BatchStats }[]): { grads: Float32Array; stats: BatchStats } {
  const grads = weightedMeanGradients(results.map((r) => ({ grads: r.grads, count: r.stats.count })));
  return { grads, stats: results.length === 1 ? results[0]!.stats : combineStats(results.map((r) => r.stats)) };
}

export async function createOnnxTrainingEngine(model: OnnxModelSpec, opts: OnnxEngineOptions = {}): Promise<OnnxTrainingEngine> {
  const sessions = opts.sessions ?? 1;
  if (!Number.isInteger(sessions) || sessions < 1) throw new Error(`ONNX training sessions: expected a whole number ≥ 1, got ${sessions}`);
  const threads = opts.threads ?? Math.max(1, Math.floor(os.availableParallelism() / sessions));
  const kernels = opts.customKernels !== false && customKernels() !== null;
  if (sessions === 1) return inThreadEngine(await createOnnxRunner(model, threads, undefined, { customKernels: kernels }), threads, kernels);
  const pool = await createInferencePool<OnnxRunnerInit, OnnxRunnerTask, OnnxRunnerResult>({
    // From the .ts sources (vitest) the pool maps this to its compiled twin under dist/.
    jobModule: new URL(import.meta.url.endsWith('.ts') ? './onnx-runner.ts' : './onnx-runner.js', import.meta.url),
    initArg: { model, threads, customKernels: kernels },
    workers: sessions,
    // The workers' TF.js backend is unused (graphs and sessions are ONNX); cpu starts fastest.
    backend: 'cpu',
  });
  return workerEngine(pool, sessions, threads, kernels);
}

function inThreadEngine(runner: OnnxRunner, threads: number, kernels: boolean): OnnxTrainingEngine {
  return {
    workers: 0,
    threads,
    sessions: 1,
    customKernels: kernels,
    async gradients(weights, version, batch, seed) {
      return runner.gradients(weights, version, batch, placesOf([batch], seed)[0]!);
    },
    evaluate: (weights, version, batches) => runner.evaluate(weights, version, batches),
    encode: (weights, version, batches) => runner.encode(weights, version, batches),
    latents: (weights, version, batch) => runner.latents(weights, version, batch),
    close: () => runner.close(),
  };
}

function workerEngine(pool: InferencePool<OnnxRunnerTask, OnnxRunnerResult>, sessions: number, threads: number, kernels: boolean): OnnxTrainingEngine {
  // One shared copy of each weights version for every worker (the loop updates its array in place).
  let shared: { version: number; source: Float32Array; weights: Float32Array } | null = null;
  const sharedWeights = (weights: Float32Array, version: number): Float32Array => {
    if (shared === null || shared.version !== version || shared.source !== weights) {
      const copy = new Float32Array(new SharedArrayBuffer(weights.byteLength));
      copy.set(weights);
      shared = { version, source: weights, weights: copy };
    }
    return shared.weights;
  };
  /** Items in at most `sessions` contiguous runs, one task each (the order of the runs is the order of the items). */
  const runsOf = <T>(items: readonly T[]): T[][] => {
    const per = Math.ceil(items.length / sessions);
    return Array.from({ length: Math.ceil(items.length / per) }, (_, i) => items.slice(i * per, (i + 1) * per));
  };

  return {
    workers: sessions,
    threads,
    sessions,
    customKernels: kernels,
    async gradients(weights, version, batch, seed) {
      const w = sharedWeights(weights, version);
      const parts = splitBatch(batch, sessions);
      const places = placesOf(parts, seed);
      const results = await Promise.all(parts.map((part, i) => pool.run({ op: 'gradients', weights: w, version, batch: part, place: places[i]! })));
      return combineGradients(results as { grads: Float32Array; stats: BatchStats }[]);
    },
    async evaluate(weights, version, batches) {
      const w = sharedWeights(weights, version);
      const pieces = batches.flatMap((b) => splitBatch(b, sessions));
      const results = await Promise.all(runsOf(pieces).map((group) => pool.run({ op: 'evaluate', weights: w, version, batches: group })));
      return combineStats(results.map((r) => (r as { stats: BatchStats }).stats));
    },
    async encode(weights, version, batches) {
      const w = sharedWeights(weights, version);
      // Copies (splitBatch into one part): a task's arrays are transferred, the caller keeps its batches.
      const copies = batches.map((b) => splitBatch(b, 1)[0]!);
      const results = await Promise.all(runsOf(copies).map((group) => pool.run({ op: 'encode', weights: w, version, batches: group })));
      return results.flatMap((r) => (r as { codes: Int32Array[] }).codes);
    },
    async latents(weights, version, batch) {
      const r = await pool.run({ op: 'latents', weights: sharedWeights(weights, version), version, batch: splitBatch(batch, 1)[0]! });
      return (r as { latents: Float32Array }).latents;
    },
    close: () => pool.close(),
  };
}
