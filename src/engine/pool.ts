/**
 * A pool of worker threads for inference. The wasm backend is single-threaded in Node, so
 * parallelism means one backend per worker thread.
 *
 * Workers run compiled JavaScript: the worker entry is always dist/src/engine/worker-entry.js, and
 * a job module given as a TypeScript source under the package root is mapped to its compiled twin
 * under dist/ (so vitest, which runs the .ts sources, uses the same files as the CLI). `npm test`
 * and `npm ci` (the `prepare` script) run tsc first; if dist/ is missing the pool says to run
 * `npm run build`.
 *
 * A job module exports `setup(initArg)` (called once per worker) and `run(task)` (per task); see
 * InferenceJob in ./worker-protocol.ts. Typed arrays in tasks and results are transferred, not
 * copied, when they own their whole buffer.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describeError } from '../errors.js';
import { transferablesOf, type FromWorker, type ToWorker, type WorkerInit } from './worker-protocol.js';

export interface InferencePoolOptions<TInit> {
  /** The job module: a path or file URL, .js, or a .ts source of this package (mapped to dist/). */
  jobModule: string | URL;
  /** Argument of the job's `setup`, structured-cloneable. */
  initArg?: TInit;
  /** Number of worker threads; default os.availableParallelism(). */
  workers?: number;
  /** Backend each worker uses; default 'wasm'. */
  backend?: WorkerInit['backend'];
}

export interface InferencePool<TTask, TResult> {
  /** Number of workers started. */
  readonly size: number;
  /** Backend the workers reported. */
  readonly backend: string;
  /** Runs one task on the next free worker. */
  run(task: TTask): Promise<TResult>;
  /** Runs all tasks, results in task order. */
  runAll(tasks: readonly TTask[]): Promise<TResult[]>;
  /** Stops every worker; tasks not yet finished are rejected. */
  close(): Promise<void>;
}

interface PendingTask {
  id: number;
  task: unknown;
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
}

interface PoolWorker {
  index: number;
  worker: Worker;
  alive: boolean;
  current: PendingTask | null;
  lastError: string | null;
}

/** The package root: the nearest folder above this file holding package.json. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

/**
 * The JavaScript file a worker can load for `modulePath`: .js paths are kept; a .ts source of this
 * package maps to dist/<same relative path>.js. Throws when that file does not exist.
 */
export function compiledModulePath(modulePath: string | URL): string {
  const file = modulePath instanceof URL || modulePath.startsWith('file:') ? fileURLToPath(modulePath) : path.resolve(modulePath);
  let compiled = file;
  if (/\.[cm]?ts$/.test(file) && !file.endsWith('.d.ts')) {
    const root = packageRoot();
    const relative = path.relative(root, file);
    if (relative.startsWith('..') || path.isAbsolute(relative)) {
      throw new Error(`cannot map ${file} to compiled JavaScript: it is outside the package ${root}`);
    }
    compiled = path.join(root, 'dist', relative.replace(/\.([cm]?)ts$/, '.$1js'));
  }
  if (!existsSync(compiled)) {
    throw new Error(`compiled module ${compiled} not found (for ${file}): run \`npm run build\` first`);
  }
  return compiled;
}

/** The compiled worker entry (dist/src/engine/worker-entry.js), from sources or from dist. */
export function workerEntryPath(): string {
  const here = fileURLToPath(import.meta.url);
  return compiledModulePath(path.join(path.dirname(here), here.endsWith('.ts') ? 'worker-entry.ts' : 'worker-entry.js'));
}

export async function createInferencePool<TInit, TTask, TResult>(
  opts: InferencePoolOptions<TInit>,
): Promise<InferencePool<TTask, TResult>> {
  const count = opts.workers ?? os.availableParallelism();
  if (!Number.isInteger(count) || count < 1) throw new Error(`inference pool: workers must be a positive integer, got ${count}`);
  const jobModule = compiledModulePath(opts.jobModule);
  const entry = workerEntryPath();
  const init: WorkerInit = { jobModule, initArg: opts.initArg, backend: opts.backend ?? 'wasm' };

  const queue: PendingTask[] = [];
  const workers: PoolWorker[] = [];
  let nextId = 0;
  let closed = false;

  const failAllQueued = (reason: string): void => {
    for (const pending of queue.splice(0)) pending.reject(new Error(reason));
  };

  const dispatch = (): void => {
    for (const w of workers) {
      while (queue.length > 0 && w.alive && w.current === null) {
        const pending = queue.shift()!;
        const message: ToWorker = { type: 'task', id: pending.id, task: pending.task };
        try {
          // Throws (DataCloneError) for values that cannot be cloned at all.
          w.worker.postMessage(message, transferablesOf(pending.task));
          w.current = pending;
        } catch (err) {
          pending.reject(
            new Error(`task ${pending.id} could not be sent to an inference worker (${describeError(err)}); tasks must hold only cloneable values`),
          );
        }
      }
    }
    if (queue.length > 0 && !workers.some((w) => w.alive)) failAllQueued(`inference pool for ${jobModule}: no worker left alive`);
  };

  const startWorker = (index: number): Promise<{ poolWorker: PoolWorker; backend: string }> =>
    new Promise((resolve, reject) => {
      const worker = new Worker(entry, { workerData: init });
      const poolWorker: PoolWorker = { index, worker, alive: true, current: null, lastError: null };
      let ready = false;
      worker.on('message', (message: FromWorker) => {
        switch (message.type) {
          case 'ready':
            ready = true;
            resolve({ poolWorker, backend: message.backend });
            return;
          case 'setup-failed':
            reject(new Error(`inference worker ${index}: setup of ${jobModule} failed: ${message.message}`));
            return;
          case 'unreadable-task': {
            const pending = poolWorker.current;
            if (pending === null) return;
            poolWorker.current = null;
            pending.reject(
              new Error(`task ${pending.id} reached inference worker ${index} unreadable (${message.message}); a task's typed arrays are transferred, so the same arrays cannot be sent twice`),
            );
            dispatch();
            return;
          }
          case 'result':
          case 'failed': {
            const pending = poolWorker.current;
            if (pending === null || pending.id !== message.id) return;
            poolWorker.current = null;
            if (message.type === 'result') pending.resolve(message.result);
            else pending.reject(new Error(`job ${jobModule} failed on task ${message.id}: ${message.message}`));
            dispatch();
            return;
          }
        }
      });
      worker.on('error', (err) => {
        poolWorker.lastError = err.stack ?? err.message;
      });
      worker.on('exit', (code) => {
        poolWorker.alive = false;
        const why = `inference worker ${index} exited with code ${code}${poolWorker.lastError ? `: ${poolWorker.lastError}` : ''}`;
        if (!ready) reject(new Error(`${why} (during setup of ${jobModule})`));
        const pending = poolWorker.current;
        poolWorker.current = null;
        if (pending !== null) pending.reject(new Error(closed ? `inference pool closed before task ${pending.id} finished` : `${why} while running task ${pending.id}`));
        if (!closed) dispatch();
      });
    });

  const started = await Promise.allSettled(Array.from({ length: count }, (_, i) => startWorker(i)));
  for (const s of started) if (s.status === 'fulfilled') workers.push(s.value.poolWorker);
  const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure !== undefined) {
    closed = true;
    await Promise.all(workers.map((w) => w.worker.terminate()));
    throw failure.reason instanceof Error ? failure.reason : new Error(String(failure.reason));
  }
  const backend = (started[0] as PromiseFulfilledResult<{ backend: string }>).value.backend;

  const run = (task: TTask): Promise<TResult> => {
    if (closed) return Promise.reject(new Error('inference pool is closed'));
    return new Promise<TResult>((resolve, reject) => {
      queue.push({ id: nextId++, task, resolve: resolve as (r: unknown) => void, reject });
      dispatch();
    });
  };

  return {
    size: count,
    backend,
    run,
    runAll: (tasks) => Promise.all(tasks.map((t) => run(t))),
    close: async () => {
      if (closed) return;
      closed = true;
      failAllQueued('inference pool closed');
      await Promise.all(workers.map((w) => w.worker.terminate()));
    },
  };
}
