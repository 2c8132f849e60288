/**
 * Inference engines of the LSR networks. Every score (sample, pixel/restoration, calibration) runs
 * its network steps through an `LsrEngine`, so the same pipeline runs on TF.js (the training
 * framework: wasm workers on CPU, tfjs-node-gpu on a GPU) or on ONNX Runtime (native CPU kernels,
 * intra-op threads on every core, graphs exported from the weights at load time).
 *
 * 'auto' picks ONNX Runtime when onnxruntime-node loads and TF.js otherwise, except when TF.js runs on
 * tfjs-node-gpu (the GPU image), where TF.js on CUDA is the faster engine.
 */
import os from 'node:os';
import { pixelsnailFlops } from '../../models/index.js';
import { loadOnnxRuntime } from '../../onnx/runtime.js';
import { codeNlls, decodeCodeMaps, encodeSlices, priorLogitsFrom, type LsrNetworks } from './networks.js';

import type { EngineChoice, EngineName } from '../../inference/engine-choice.js';

export type { EngineChoice, EngineName } from '../../inference/engine-choice.js';

export interface LsrEngine {
  readonly name: EngineName;
  /** Configs (and, for TF.js, the parameters) of the two networks. */
  readonly nets: LsrNetworks;
  /** Most code maps per prior call the engine runs efficiently. */
  readonly priorBatch: number;
  /** Most maps per decoder call. */
  readonly decodeBatch: number;
  /** Whether pixel scores should run on worker threads (single-threaded backends such as wasm). */
  readonly wantsWorkers: boolean;
  /** Nearest-code maps of normalised slices (count × S × S) → int32 [count, h, w]. */
  encodeSlices(images: Float32Array, positions: Float32Array): Promise<Int32Array>;
  /** Decoded images of code maps (count × h × w) → float32 [count, S, S]. */
  decodeCodeMaps(codes: Int32Array, positions: Float32Array): Promise<Float32Array>;
  /** −log p(code | previous codes) for every code → float32 [count, h, w]. */
  codeNlls(codes: Int32Array, positions: Float32Array): Promise<Float32Array>;
  /** Prior logits for positions `from` … end → float32 [count, positions − from, K]. */
  priorLogitsFrom(codes: Int32Array, positions: Float32Array, from: number): Promise<Float32Array>;
  /** Releases sessions (ONNX); the networks' parameters stay with their owner. */
  dispose(): Promise<void>;
}

/** The TF.js implementation: the tfjs forward functions of src/models, on the active tfjs backend. */
export function tfjsEngine(nets: LsrNetworks, backend = 'wasm'): LsrEngine {
  return {
    name: 'tfjs',
    nets,
    // wasm memory tops out near 4 GB: the reference prior (7 GFLOP per map) aborts at 64 maps per call.
    priorBatch: pixelsnailFlops(nets.prior.cfg) > 1e9 ? 16 : 64,
    decodeBatch: 16,
    wantsWorkers: backend === 'wasm' || backend === 'cpu',
    encodeSlices: async (images, positions) => encodeSlices(nets.vqvae, images, positions),
    decodeCodeMaps: async (codes, positions) => decodeCodeMaps(nets.vqvae, codes, positions),
    codeNlls: async (codes, positions) => codeNlls(nets.prior, codes, positions),
    priorLogitsFrom: async (codes, positions, from) => priorLogitsFrom(nets.prior, codes, positions, from),
    dispose: async () => {},
  };
}

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

/** Resolves 'auto' and builds the engine; an explicit 'onnx' fails with the reason when it cannot load. */
export async function createLsrEngine(choice: EngineChoice, nets: LsrNetworks, opts: CreateEngineOptions = {}): Promise<LsrEngine> {
  const resolved = await resolveEngine(choice, opts);
  if (resolved.name === 'tfjs') return tfjsEngine(nets, opts.tfjsBackend);
  const { onnxEngine } = await import('./onnx-engine.js');
  return onnxEngine(nets, { threads: resolved.threads, ...(resolved.saveTo ? { saveTo: resolved.saveTo } : {}) });
}
