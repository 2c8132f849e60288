/**
 * A `TrainingEngine` (src/train/engine.ts) for the DISYRE U-Net on ONNX Runtime: the training graph
 * (./train-graph.ts) with its parameters as inputs (src/onnx/autodiff/trainable.ts), differentiated by
 * src/onnx/autodiff/backward.ts, one gradient session per batch size and one evaluation session.
 * Adam, clipping, checkpoints and --resume stay in the shared loop (src/train/loop.ts), on the flat
 * weights in `disyreLayout` order (sorted parameter names, as every other network).
 */
import os from 'node:os';
import { backward, gradientName } from '../../onnx/autodiff/backward.js';
import type { Shape } from '../../onnx/autodiff/shapes.js';
import { bindingValues, scatterGradient, traceParams, type TrainableModel } from '../../onnx/autodiff/trainable.js';
import { encodeModel } from '../../onnx/onnx-proto.js';
import { createSession, requireOnnxRuntime, type OrtSession, type OrtTensor } from '../../onnx/runtime.js';
import { combineStats, type TrainingEngine } from '../../train/engine.js';
import type { BatchStats, ImageBatch, TrainBatch } from '../../train/loop-worker.js';
import { layoutOfSpecs, type ParamLayout } from '../../train/param-layout.js';
import { condInputSize, type DisyreConfig } from './config.js';
import { conditionInput } from './embedding.js';
import { emitDisyreTraining } from './train-graph.js';
import { disyreParamSpecs } from './unet.js';

/** A training batch: corrupted slices (`images`), their clean originals, levels t and positions z. */
export interface DisyreBatch extends ImageBatch {
  readonly targets: Float32Array;
  readonly levels: Float32Array;
}

export function isDisyreBatch(b: TrainBatch): b is DisyreBatch {
  return b.kind === 'images' && (b as Partial<DisyreBatch>).targets instanceof Float32Array && (b as Partial<DisyreBatch>).levels instanceof Float32Array;
}

/** Sorted-name flat layout of the U-Net's parameters. */
export function disyreLayout(cfg: DisyreConfig): ParamLayout {
  return layoutOfSpecs(disyreParamSpecs(cfg));
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

export interface DisyreTrainingEngine extends TrainingEngine {
  readonly threads: number;
}

export async function createDisyreTrainingEngine(cfg: DisyreConfig, opts: { threads?: number } = {}): Promise<DisyreTrainingEngine> {
  const ort = await requireOnnxRuntime();
  const layout = disyreLayout(cfg);
  const graph: TrainableModel = traceParams(layout, (p) => emitDisyreTraining(p, cfg).model);
  if (graph.unused !== undefined) throw new Error(`DISYRE training graph: parameters ${graph.unused.join(', ')} are unused`);
  const threads = opts.threads ?? os.availableParallelism();
  const gradSessions = new Map<number, Promise<OrtSession>>();
  let evalSession: Promise<OrtSession> | null = null;
  let cached: { version: number; feeds: Record<string, OrtTensor> } | null = null;
  const s = cfg.inputSize;
  const e = condInputSize(cfg);

  const paramFeeds = (weights: Float32Array, version: number): Record<string, OrtTensor> => {
    if (cached !== null && cached.version === version) return cached.feeds;
    const feeds: Record<string, OrtTensor> = {};
    for (const b of graph.bindings) feeds[b.input] = new ort.Tensor('float32', bindingValues(b, weights), [...b.dims]);
    cached = { version, feeds };
    return feeds;
  };
  const shapesOf = (n: number): Record<string, Shape> => ({ image: [n, s, s, 1], target: [n, s, s, 1], cond: [n, e] });
  const dataFeeds = (batch: TrainBatch): Record<string, OrtTensor> => {
    if (!isDisyreBatch(batch)) throw new Error('DISYRE trains on batches of corrupted slices with their clean targets and levels');
    if (batch.size !== s) throw new Error(`DISYRE batch of ${batch.size}×${batch.size} slices, the network takes ${s}×${s}`);
    const n = batch.count;
    return {
      image: new ort.Tensor('float32', batch.images, [n, s, s, 1]),
      target: new ort.Tensor('float32', batch.targets, [n, s, s, 1]),
      cond: new ort.Tensor('float32', conditionInput(cfg, batch.levels, batch.positions), [n, e]),
    };
  };
  const stats = (out: Record<string, OrtTensor>, batch: TrainBatch): BatchStats => ({
    count: batch.count,
    means: Object.fromEntries(['loss', 'rec', 'restored'].map((k) => [k, (out[k]!.data as Float32Array)[0]!])),
  });
  const gradSession = (n: number): Promise<OrtSession> => {
    let session = gradSessions.get(n);
    if (session === undefined) {
      const { model } = backward(graph.model, 'loss', graph.bindings.map((b) => b.input), { inputShapes: shapesOf(n) });
      session = createSession(encodeModel(model), { threads });
      gradSessions.set(n, session);
    }
    return session;
  };

  return {
    workers: 0,
    threads,
    async gradients(weights, version, batch) {
      const session = await gradSession(batch.count);
      const out = await session.run({ ...dataFeeds(batch), ...paramFeeds(weights, version) });
      const grads = new Float32Array(layout.total);
      for (const b of graph.bindings) scatterGradient(b, out[gradientName(b.input)]!.data as Float32Array, grads);
      return { grads, stats: stats(out, batch) };
    },
    async evaluate(weights, version, batches) {
      evalSession ??= createSession(encodeModel(graph.model), { threads });
      const session = await evalSession;
      const parts: BatchStats[] = [];
      for (const batch of batches) parts.push(stats(await session.run({ ...dataFeeds(batch), ...paramFeeds(weights, version) }), batch));
      return combineStats(parts);
    },
    encode() {
      return Promise.reject(new Error('DISYRE has no encoder'));
    },
    latents() {
      return Promise.reject(new Error('DISYRE has no latents'));
    },
    async close() {
      for (const session of [...gradSessions.values(), ...(evalSession ? [evalSession] : [])]) await (await session).release();
      gradSessions.clear();
      evalSession = null;
    },
  };
}
