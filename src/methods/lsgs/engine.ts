/**
 * Inference engines of the LSGS networks (VQ-VAE + transformer prior), as src/methods/lsr/engine.ts is for LSR: the
 * same scores run on TF.js (wasm workers on CPU, tfjs-node-gpu on a GPU) or on ONNX Runtime (graphs
 * exported from the loaded weights: src/onnx/emit-vqvae.ts, src/methods/lsgs/emit-transformer.ts). 'auto'
 * resolves as for LSR (src/inference/resolve-engine.ts).
 */
import type { EngineChoice } from '../../inference/engine-choice.js';
import { resolveEngine, type CreateEngineOptions } from '../../inference/resolve-engine.js';
import { decodeCodeMaps, encodeSlices } from '../../inference/vqvae-steps.js';
import type { LsgsEngine, TransformerPasses } from './engine-types.js';
import { transformerCodeNlls, transformerLogitsOf, type LsgsNetworks, type TransformerNetwork } from './networks.js';

export type { LsgsEngine, TransformerPasses } from './engine-types.js';

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
