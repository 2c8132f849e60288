/**
 * The seam between the methods and their inference engines: resolving an engine choice ('auto' = ONNX
 * Runtime when onnxruntime-node loads, except under tfjs-node-gpu, where TF.js on CUDA is faster) and
 * the options every model family's engine factory takes.
 */
import os from 'node:os';
import { loadOnnxRuntime } from '../onnx/runtime.js';
import type { EngineChoice } from './engine-choice.js';

export interface CreateEngineOptions {
  /** tfjs backend in use ('wasm', 'cpu', 'tensorflow'): decides whether TF.js wants workers. */
  readonly tfjsBackend?: string;
  /** ONNX Runtime intra-op threads (default: $MOODLSR_ORT_THREADS, else every available core). */
  readonly threads?: number;
  /**
   * Also write the exported .onnx graphs into this folder (default: $MOODLSR_ONNX_SAVE), e.g. to
   * inspect them with other ONNX tools. Exporting takes milliseconds, so nothing is read back.
   */
  readonly saveOnnxTo?: string;
  readonly log?: (line: string) => void;
}

/** What an engine choice resolves to here: TF.js, or ONNX Runtime with its thread count. */
export type ResolvedEngine = { readonly name: 'tfjs' } | { readonly name: 'onnx'; readonly threads: number; readonly saveTo?: string };

/**
 * Resolves 'auto' (ONNX Runtime when it loads, except under tfjs-node-gpu) and checks that an explicit
 * 'onnx' can load, failing with the reason. Shared by every model family's engine.
 */
export async function resolveEngine(choice: EngineChoice, opts: CreateEngineOptions = {}): Promise<ResolvedEngine> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (choice === 'tfjs') return { name: 'tfjs' };
  if (choice === 'auto' && opts.tfjsBackend === 'tensorflow') {
    // tfjs-node-gpu loaded (the GPU image): CUDA beats ONNX Runtime's CPU kernels.
    log('engine: tfjs-node-gpu is active; using tfjs (ONNX Runtime runs on the CPU here)');
    return { name: 'tfjs' };
  }
  const ort = await loadOnnxRuntime();
  if ('error' in ort) {
    if (choice === 'onnx') throw new Error(`--engine onnx: onnxruntime-node cannot be loaded (${ort.error})`);
    log(`engine: onnxruntime-node unavailable (${ort.error}); using tfjs`);
    return { name: 'tfjs' };
  }
  const threads = opts.threads ?? (Number(process.env.MOODLSR_ORT_THREADS) || os.availableParallelism());
  log(`engine: ONNX Runtime ${ort.ort.env.versions.common} (CPU, ${threads} intra-op threads)`);
  const saveTo = opts.saveOnnxTo ?? process.env.MOODLSR_ONNX_SAVE;
  return { name: 'onnx', threads, ...(saveTo ? { saveTo } : {}) };
}
