/** Messages between the inference pool (./pool.ts) and its workers (./worker-entry.ts). */

export interface WorkerInit {
  /** File path or file: URL of the job module (a JS module exporting `setup` and `run`). */
  jobModule: string;
  /** Passed to the job's `setup`. Must be structured-cloneable. */
  initArg: unknown;
  /** Backend each worker initialises before the job's setup. */
  backend: 'wasm' | 'cpu' | 'auto';
}

export type ToWorker = { type: 'task'; id: number; task: unknown };

export type FromWorker =
  | { type: 'ready'; backend: string }
  | { type: 'setup-failed'; message: string }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'failed'; id: number; message: string }
  /** The current task arrived unreadable (no id can be read from it). */
  | { type: 'unreadable-task'; message: string };

/** The contract a job module fulfils. */
export interface InferenceJob<TInit, TTask, TResult> {
  setup(initArg: TInit): void | Promise<void>;
  run(task: TTask): TResult | Promise<TResult>;
}

/** Array buffers inside a message (top level, arrays and plain-object values), to transfer instead of copy. */
export function transferablesOf(value: unknown, found: Set<ArrayBuffer> = new Set(), depth = 0): ArrayBuffer[] {
  if (depth > 4 || value === null || typeof value !== 'object') return [...found];
  if (ArrayBuffer.isView(value)) {
    if (value.buffer instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength) found.add(value.buffer);
  } else if (value instanceof ArrayBuffer) {
    found.add(value);
  } else if (Array.isArray(value)) {
    for (const item of value) transferablesOf(item, found, depth + 1);
  } else {
    for (const item of Object.values(value)) transferablesOf(item, found, depth + 1);
  }
  return [...found];
}
