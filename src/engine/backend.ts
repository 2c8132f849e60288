/**
 * Chooses and initialises the TF.js backend: tfjs-node-gpu when it loads (native, CUDA), else the
 * wasm backend (SIMD, single-threaded; gets the training kernels of ./gradients.ts), else the pure
 * JS cpu backend.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as tfWasm from '@tensorflow/tfjs-backend-wasm';
import { installTrainingKernels } from './gradients.js';

export type BackendPreference = 'auto' | 'node-gpu' | 'wasm' | 'cpu';

export interface EngineOptions {
  /** Which backend to use. 'auto' (default): node-gpu, then wasm, then cpu. */
  prefer?: BackendPreference;
  /** Receives the one line saying which backend is in use and why. Default: stderr. */
  log?: (line: string) => void;
}

export interface EngineInfo {
  /** The tfjs backend name now active: 'tensorflow' (tfjs-node-gpu), 'wasm' or 'cpu'. */
  backend: string;
  /** Why this backend was chosen (shown in the log line). */
  reason: string;
  /** Kernels registered by this module to make training work on this backend. */
  trainingKernels: string[];
  /** Whether wasm runs with SIMD (only meaningful for 'wasm'). */
  simd: boolean;
}

/** Kept in a variable so that the compiler does not need the optional package's types. */
const NODE_GPU_MODULE = '@tensorflow/tfjs-node-gpu';

let current: { preference: BackendPreference; info: Promise<EngineInfo> } | null = null;

/**
 * Initialises the engine once. Later calls with the same preference (or 'auto') return the first
 * result; a call with a different explicit preference switches backend.
 */
export function initEngine(opts: EngineOptions = {}): Promise<EngineInfo> {
  const preference = opts.prefer ?? 'auto';
  if (current !== null && (preference === 'auto' || preference === current.preference)) return current.info;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const info = chooseBackend(preference).then((chosen) => {
    log(`engine: using tfjs backend '${chosen.backend}' (${chosen.reason})`);
    return chosen;
  });
  current = { preference, info };
  info.catch(() => {
    if (current?.info === info) current = null;
  });
  return info;
}

/** The directory holding the wasm binaries, resolved from this package, whatever the cwd. */
export function wasmBinaryDirectory(): string {
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep;
}

async function chooseBackend(preference: BackendPreference): Promise<EngineInfo> {
  const notes: string[] = [];
  if (preference === 'auto' || preference === 'node-gpu') {
    const failure = await tryNodeGpu();
    if (failure === null) {
      return { backend: tf.getBackend(), reason: 'tfjs-node-gpu loaded', trainingKernels: [], simd: false };
    }
    notes.push(`tfjs-node-gpu ${failure}`);
  }
  if (preference !== 'cpu') {
    const failure = await tryWasm();
    if (failure === null) {
      const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
      const trainingKernels = installTrainingKernels('wasm');
      const chosen = preference === 'wasm' ? 'requested' : 'fastest available';
      return { backend: 'wasm', reason: [...notes, `wasm ${chosen}, ${simd ? 'SIMD' : 'no SIMD'}, 1 thread`].join('; '), trainingKernels, simd };
    }
    notes.push(`wasm unavailable: ${failure}`);
  }
  if (!(await tf.setBackend('cpu'))) throw new Error(`no usable tfjs backend (${notes.join('; ')})`);
  await tf.ready();
  notes.push(preference === 'cpu' ? 'cpu requested' : 'falling back to the pure-JS cpu backend');
  return { backend: 'cpu', reason: notes.join('; '), trainingKernels: [], simd: false };
}

/** Returns null on success, else why tfjs-node-gpu could not be used. */
async function tryNodeGpu(): Promise<string | null> {
  try {
    await import(NODE_GPU_MODULE);
    if (!(await tf.setBackend('tensorflow'))) return "backend 'tensorflow' did not initialise";
    await tf.ready();
    return null;
  } catch (err) {
    // the optional dependency is usually just absent: say so in two words, not with the resolver's path
    const code = (err as { code?: unknown } | null)?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return 'not installed';
    return `unavailable: ${clip(firstLine(err))}`;
  }
}

/** At most 120 characters of a message. */
function clip(text: string): string {
  return text.length > 120 ? `${text.slice(0, 119)}…` : text;
}

async function tryWasm(): Promise<string | null> {
  try {
    tfWasm.setWasmPaths(wasmBinaryDirectory());
    if (!(await tf.setBackend('wasm'))) return "backend 'wasm' did not initialise";
    await tf.ready();
    return null;
  } catch (err) {
    return firstLine(err);
  }
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0] ?? message;
}
