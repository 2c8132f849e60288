/**
 * Inference engines of the LSR networks. Every score (sample, pixel/restoration, calibration) runs
 * its network steps through an `LsrEngine`, so the same pipeline runs on TF.js (the training
 * framework: wasm workers on CPU, tfjs-node-gpu on a GPU) or on ONNX Runtime (native CPU kernels,
 * intra-op threads on every core, graphs exported from the weights at load time).
 *
 * 'auto' picks ONNX Runtime when onnxruntime-node loads and TF.js otherwise, except when TF.js runs on
 * tfjs-node-gpu (the GPU image), where TF.js on CUDA is the faster engine.
 */
import { pixelsnailFlops } from '../../models/index.js';
import { codeNlls, decodeCodeMaps, encodeSlices, priorLogitsFrom, type LsrNetworks } from './networks.js';
import type { EngineChoice } from '../../inference/engine-choice.js';
import { resolveEngine, type CreateEngineOptions } from '../../inference/resolve-engine.js';
import type { LsrEngine } from './engine-types.js';

export type { EngineChoice, EngineName } from '../../inference/engine-choice.js';
export type { LsrEngine } from './engine-types.js';

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

/** Resolves 'auto' and builds the engine; an explicit 'onnx' fails with the reason when it cannot load. */
export async function createLsrEngine(choice: EngineChoice, nets: LsrNetworks, opts: CreateEngineOptions = {}): Promise<LsrEngine> {
  const resolved = await resolveEngine(choice, opts);
  if (resolved.name === 'tfjs') return tfjsEngine(nets, opts.tfjsBackend);
  const { onnxEngine } = await import('./onnx-engine.js');
  return onnxEngine(nets, { threads: resolved.threads, ...(resolved.saveTo ? { saveTo: resolved.saveTo } : {}) });
}
