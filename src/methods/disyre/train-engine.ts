/**
 * The DISYRE U-Net's training engine: the shared ONNX Runtime engine (src/train/onnx-engine.ts) over
 * its training graph (./train-graph.ts, src/train/onnx-nets.ts `disyreOnnxNet`). Adam, clipping,
 * checkpoints and --resume stay in the shared loop (src/train/loop.ts), on the flat weights in
 * `disyreLayout` order (sorted parameter names, as every other network).
 */
import { createOnnxTrainingEngine, type OnnxEngineOptions, type OnnxTrainingEngine } from '../../train/onnx-engine.js';
import { onnxParamLayout } from '../../train/onnx-nets.js';
import type { ParamLayout } from '../../train/param-layout.js';
import { DISYRE_KIND, DISYRE_NAME, type DisyreConfig } from './config.js';

export { isDisyreBatch, type DisyreBatch } from './batch.js';

/** Sorted-name flat layout of the U-Net's parameters. */
export function disyreLayout(cfg: DisyreConfig): ParamLayout {
  return onnxParamLayout({ kind: 'disyre', config: cfg });
}

/** Fresh flat weights (the parameter specs' initialisation, seeded). */
export async function initialDisyreWeights(cfg: DisyreConfig, seed: number): Promise<Float32Array> {
  const { initDisyre } = await import('./unet.js');
  const { flattenParams } = await import('../../train/loop-worker.js');
  const { disposeParams } = await import('../../models/params.js');
  const params = initDisyre(cfg, seed);
  try {
    return flattenParams(params, disyreLayout(cfg));
  } finally {
    disposeParams(params);
  }
}

/**
 * Flat weights of the U-Net in `dir` (disyre.json/.bin) for a warm start, in `disyreLayout(cfg)`
 * order; its config must equal `cfg` but for the segmentation head, which starts fresh (seeded by
 * `seed`) when the saved network has none. The label names the folder, the weights' hash and any
 * fresh parameters.
 */
export async function disyreStartWeights(dir: string, cfg: DisyreConfig, seed = 0): Promise<{ weights: Float32Array; label: string }> {
  const { loadWarmStart } = await import('../../train/warm-start.js');
  const trunk = (c: DisyreConfig): string => JSON.stringify({ ...c, segmentationWeight: undefined });
  return loadWarmStart(dir, DISYRE_NAME, DISYRE_KIND, cfg, disyreLayout(cfg), trunk, await initialDisyreWeights(cfg, seed));
}

export function createDisyreTrainingEngine(cfg: DisyreConfig, opts: OnnxEngineOptions = {}): Promise<OnnxTrainingEngine> {
  return createOnnxTrainingEngine({ kind: 'disyre', config: cfg }, opts);
}
