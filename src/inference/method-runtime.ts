/**
 * What the restoration methods (lsr, lsgs) share at run time: loading a weights folder onto an
 * inference engine, and running slice-chunk tasks in-process or on a pool of worker threads (TF.js
 * on wasm is single-threaded, so it gets one worker per core; a multi-threaded engine such as ONNX
 * Runtime runs in-process on every core).
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initEngine } from '../engine/backend.js';
import { createInferencePool, type InferencePool } from '../engine/pool.js';
import { InputFileError } from '../errors.js';
import type { CreateEngineOptions } from './resolve-engine.js';
import type { EngineChoice } from './engine-choice.js';
import type { ChunkRunner } from '../score/slice-chunks.js';

/** Whether an engine wants worker threads (TF.js on a single-threaded backend). */
export interface WorkerPreference {
  readonly wantsWorkers: boolean;
}

/** Workers for TF.js on wasm (single-threaded): one per core; none for multi-threaded engines. */
export async function defaultWorkerCount(engine?: WorkerPreference): Promise<number> {
  if (engine !== undefined && !engine.wantsWorkers) return 0;
  const tf = await initEngine();
  const cores = os.availableParallelism();
  return tf.backend === 'wasm' && cores >= 2 ? cores : 0;
}

export function inProcessChunkRunner<TTask, TResult>(score: (task: TTask) => Promise<TResult>): ChunkRunner<TTask, TResult> {
  return async (tasks) => {
    const results: TResult[] = [];
    for (const t of tasks) results.push(await score(t));
    return results;
  };
}

/** A worker job module by name beside the module at `moduleUrl` (e.g. a method's 'job'), compiled to dist by the pool. */
export function scoreJobModule(moduleUrl: string, name: string): string {
  const here = fileURLToPath(moduleUrl);
  return path.join(path.dirname(here), here.endsWith('.ts') ? `${name}.ts` : `${name}.js`);
}

/** What every restoration job module gets at start-up. */
export interface WeightsJobInit {
  readonly weightsDir: string;
}

export async function createScorePool<TTask, TResult>(jobModule: string, weightsDir: string, workers: number): Promise<InferencePool<TTask, TResult>> {
  return createInferencePool<WeightsJobInit, TTask, TResult>({
    jobModule,
    initArg: { weightsDir: path.resolve(weightsDir) },
    workers,
  });
}

export interface ChunkRunners<TTask, TResult> {
  /** The runner and how many chunks to hand it; the worker pool opens on first use. */
  get(): Promise<{ run: ChunkRunner<TTask, TResult>; chunks: number }>;
  /** Closes the pool, if one was opened. */
  close(): Promise<void>;
}

/**
 * Runners for an engine: `requested` workers (default `defaultWorkerCount`) when the engine wants
 * workers, else in-process; 2 chunks per worker, 1 in-process.
 */
export function chunkRunners<TTask, TResult>(
  engine: WorkerPreference,
  requested: number | undefined,
  inProcess: ChunkRunner<TTask, TResult>,
  openPool: (workers: number) => Promise<InferencePool<TTask, TResult>>,
): ChunkRunners<TTask, TResult> {
  let pool: InferencePool<TTask, TResult> | null = null;
  let workers: number | null = requested ?? null;
  return {
    async get() {
      if (!engine.wantsWorkers) workers = 0;
      workers ??= await defaultWorkerCount(engine);
      if (workers === 0) return { run: inProcess, chunks: 1 };
      pool ??= await openPool(workers);
      const active = pool;
      return { run: (tasks) => active.runAll(tasks), chunks: 2 * workers };
    },
    async close() {
      if (pool !== null) await pool.close();
      pool = null;
    },
  };
}

export interface LoadMethodOptions {
  /** Inference engine: 'auto' (default) = ONNX Runtime when it loads, else TF.js. */
  readonly engine?: EngineChoice;
  readonly log?: (line: string) => void;
}

/** How a method reads its weights folder. */
export interface MethodParts<TNets, TEngine, TCalibration> {
  readonly readCalibration: (dir: string) => TCalibration;
  readonly loadNetworks: (dir: string) => TNets;
  readonly disposeNetworks: (nets: TNets) => void;
  readonly createEngine: (choice: EngineChoice, nets: TNets, opts: CreateEngineOptions) => Promise<TEngine>;
}

export interface LoadedMethod<TNets, TEngine, TCalibration> {
  readonly dir: string;
  readonly nets: TNets;
  /** The inference engine the scores run on. */
  readonly engine: TEngine;
  readonly calibration: TCalibration;
}

/** Initialises the engines and loads the networks and the calibration; every problem names its file. */
export async function loadMethod<TNets, TEngine, TCalibration>(
  dir: string,
  parts: MethodParts<TNets, TEngine, TCalibration>,
  opts: LoadMethodOptions,
): Promise<LoadedMethod<TNets, TEngine, TCalibration>> {
  if (!existsSync(dir)) throw new InputFileError(dir, 'weights folder does not exist');
  const calibration = parts.readCalibration(dir);
  const tf = await initEngine();
  const nets = parts.loadNetworks(dir);
  try {
    const engine = await parts.createEngine(opts.engine ?? 'auto', nets, { tfjsBackend: tf.backend, ...(opts.log ? { log: opts.log } : {}) });
    return { dir, nets, engine, calibration };
  } catch (err) {
    parts.disposeNetworks(nets);
    throw err;
  }
}
