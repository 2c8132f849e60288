/**
 * Entry of an inference worker thread (runs as compiled JS: dist/src/engine/worker-entry.js).
 * Initialises its own tfjs backend, imports the job module, calls `setup(initArg)` once and
 * `run(task)` per task. A throwing task is reported back and the worker stays usable.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { initEngine } from './backend.js';
import { transferablesOf, type FromWorker, type InferenceJob, type ToWorker, type WorkerInit } from './worker-protocol.js';

function post(message: FromWorker): void {
  const transfer = message.type === 'result' ? transferablesOf(message.result) : [];
  parentPort!.postMessage(message, transfer);
}

function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

async function main(): Promise<void> {
  if (parentPort === null) throw new Error('worker-entry must run inside a worker thread');
  const init = workerData as WorkerInit;
  let job: InferenceJob<unknown, unknown, unknown>;
  try {
    const engine = await initEngine({ prefer: init.backend, log: () => undefined });
    const url = init.jobModule.startsWith('file:') ? init.jobModule : pathToFileURL(init.jobModule).href;
    const loaded = (await import(url)) as Partial<InferenceJob<unknown, unknown, unknown>>;
    if (typeof loaded.run !== 'function') throw new Error(`job module ${init.jobModule} exports no run(task) function`);
    job = { setup: loaded.setup ?? (() => undefined), run: loaded.run };
    await job.setup(init.initArg);
    post({ type: 'ready', backend: engine.backend });
  } catch (err) {
    post({ type: 'setup-failed', message: describe(err) });
    return;
  }
  // Tasks are run one at a time, in arrival order.
  let chain: Promise<void> = Promise.resolve();
  parentPort.on('message', (message: ToWorker) => {
    chain = chain.then(async () => {
      try {
        post({ type: 'result', id: message.id, result: await job.run(message.task) });
      } catch (err) {
        post({ type: 'failed', id: message.id, message: describe(err) });
      }
    });
  });
  // A task that cannot be deserialised (e.g. its typed arrays were already transferred by an earlier
  // send, so they arrive detached) raises no 'message' at all: report it, or the pool would wait forever.
  parentPort.on('messageerror', (err: Error) => {
    chain = chain.then(() => post({ type: 'unreadable-task', message: describe(err) }));
  });
}

void main();
