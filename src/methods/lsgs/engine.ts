/**
 * Inference engines of the LSGS networks (VQ-VAE + transformer prior), as ./engine.ts is for LSR: the
 * same scores run on TF.js (wasm workers on CPU, tfjs-node-gpu on a GPU) or on ONNX Runtime (graphs
 * exported from the loaded weights: src/onnx/emit-vqvae.ts, src/methods/lsgs/emit-transformer.ts). 'auto'
 * resolves as for LSR (./engine.ts resolveEngine).
 */
import type { TransformerConfig } from '../../models/index.js';
import { resolveEngine, type CreateEngineOptions, type EngineChoice, type EngineName } from '../lsr/engine.js';
import { transformerCodeNlls, transformerLogitsOf, type LsgsNetworks, type TransformerNetwork } from './networks.js';
import { decodeCodeMaps, encodeSlices } from '../lsr/networks.js';

/** The transformer's two passes over code maps (typed arrays in and out). */
export interface TransformerPasses {
  readonly cfg: TransformerConfig;
  /** Logits of every position: float32 [count, h·w, K]; `batch` = most maps per call (engine default when absent). */
  logits(codes: Int32Array, positions: Float32Array, batch?: number): Promise<Float32Array>;
  /** NLL (nats) of every observed code: float32 [count, h, w]. */
  nlls(codes: Int32Array, positions: Float32Array): Promise<Float32Array>;
}

export interface LsgsEngine {
  readonly name: EngineName;
  /** Configs (and, for TF.js, the parameters) of the two networks. */
  readonly nets: LsgsNetworks;
  readonly transformer: TransformerPasses;
  /** Whether pixel scores should run on worker threads (single-threaded backends such as wasm). */
  readonly wantsWorkers: boolean;
  /** Nearest-code maps of normalised slices (count × S × S) → int32 [count, h, w]. */
  encodeSlices(images: Float32Array, positions: Float32Array): Promise<Int32Array>;
  /** Decoded images of code maps (count × h × w) → float32 [count, S, S]; `batch` = most maps per call. */
  decodeCodeMaps(codes: Int32Array, positions: Float32Array, batch?: number): Promise<Float32Array>;
  /** Releases sessions (ONNX); the networks' parameters stay with their owner. */
  dispose(): Promise<void>;
}

/** The transformer's tfjs forward functions as passes. */
export function tfjsTransformerPasses(net: TransformerNetwork): TransformerPasses {
  return {
    cfg: net.cfg,
    logits: async (codes, positions, batch) => transformerLogitsOf(net, codes, positions, batch),
    nlls: async (codes, positions) => transformerCodeNlls(net, codes, positions),
  };
}

/** The TF.js implementation: the tfjs forward functions of src/models, on the active tfjs backend. */
export function tfjsLsgsEngine(nets: LsgsNetworks, backend = 'wasm'): LsgsEngine {
  return {
    name: 'tfjs',
    nets,
    transformer: tfjsTransformerPasses(nets.transformer),
    wantsWorkers: backend === 'wasm' || backend === 'cpu',
    encodeSlices: async (images, positions) => encodeSlices(nets.vqvae, images, positions),
    decodeCodeMaps: async (codes, positions, batch) => decodeCodeMaps(nets.vqvae, codes, positions, batch),
    dispose: async () => {},
  };
}

/** Resolves 'auto' and builds the engine; an explicit 'onnx' fails with the reason when it cannot load. */
export async function createLsgsEngine(choice: EngineChoice, nets: LsgsNetworks, opts: CreateEngineOptions = {}): Promise<LsgsEngine> {
  const resolved = await resolveEngine(choice, opts);
  if (resolved.name === 'tfjs') return tfjsLsgsEngine(nets, opts.tfjsBackend);
  const { onnxLsgsEngine } = await import('./onnx-engine.js');
  return onnxLsgsEngine(nets, { threads: resolved.threads, ...(resolved.saveTo ? { saveTo: resolved.saveTo } : {}) });
}
