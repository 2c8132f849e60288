/**
 * A `TrainingEngine` (./engine.ts) on ONNX Runtime: the network's training graph (a model
 * emitter's graph with its parameters as inputs, ../onnx/autodiff/trainable.ts) differentiated by
 * ../onnx/autodiff/backward.ts, one session per batch size for the gradients and one for held-out
 * evaluation; Adam, clipping, checkpoints stay in the shared loop (./loop.ts) on the flat weights,
 * so checkpoints are the same files whichever engine wrote them.
 *
 * Parallelism: by default one session with ONNX Runtime's intra-op threads on every core. With
 * `sessions: n` a step's batch is split into n parts on n sessions (cores / n intra-op threads each)
 * and the parts' gradients are weighted by their sizes, as the TF.js workers do; dropout masks are
 * drawn for the whole batch and sliced, so only the VAE's noise (drawn per part) depends on n. The
 * parts do NOT run in parallel yet: onnxruntime-node's `run` is synchronous on the calling thread
 * (inside a setImmediate), so concurrency needs the sessions in worker threads (the next step).
 * docs/benchmarks.md "Quiet rerun with PyTorch" has the measurements.
 */
import os from 'node:os';
import type { PixelSnailConfig, VqvaeConfig } from '../models/config.js';
import type { VaeConfig } from '../methods/vae/config.js';
import { reparameterisationNoise } from '../methods/vae/vae.js';
import type { TransformerConfig } from '../methods/lsgs/transformer.js';
import { backward, gradientName } from '../onnx/autodiff/backward.js';
import type { Shape } from '../onnx/autodiff/shapes.js';
import { bindingValues, scatterGradient, traceParams, type TrainableModel } from '../onnx/autodiff/trainable.js';
import { encodeModel } from '../onnx/onnx-proto.js';
import { createSession, requireOnnxRuntime, type OrtModule, type OrtSession, type OrtTensor } from '../onnx/runtime.js';
import { combineStats, splitBatch, weightedMeanGradients, type TrainingEngine } from './engine.js';
import { paramLayout, type BatchStats, type ImageBatch, type ModelSpec, type ParamLayout, type TrainBatch } from './loop-worker.js';
import { dropoutMasks, type DropoutSite, type TrainingGraph } from './onnx-dropout.js';
import type { HostTensor } from '../io/tensor-bundle.js';
import { emitPriorTraining } from '../methods/lsr/onnx-train-graph.js';
import { emitVqvaeTraining } from './onnx-vqvae-graph.js';
import { emitVaeTraining } from '../methods/vae/onnx-train-graph.js';
import { emitTransformerTraining } from '../methods/lsgs/onnx-train-graph.js';

/** What the engine needs to know about one network. */
export interface OnnxNet {
  readonly layout: ParamLayout;
  /** Training graph (dropout masks as inputs), evaluation graph (no dropout), and optionally the encoder. */
  readonly train: TrainableModel & { dropout: readonly DropoutSite[] };
  readonly evaluate: TrainableModel;
  readonly encoder?: TrainableModel;
  readonly dropoutRate: number;
  /** Data inputs of a batch and their shapes. */
  feeds(ort: OrtModule, batch: TrainBatch): { feeds: Record<string, OrtTensor>; shapes: Record<string, Shape> };
  /** Inputs only the training graph has, drawn from the step's seed (the VAE's noise ε). */
  trainFeeds?(ort: OrtModule, batch: TrainBatch, seed: number): { feeds: Record<string, OrtTensor>; shapes: Record<string, Shape> };
  /** Statistics of one batch from the graph outputs. */
  stats(outputs: Record<string, OrtTensor>, batch: TrainBatch): BatchStats;
}

/** The traced training graph (dropout on) and evaluation graph (dropout off) of one network. */
function tracedGraphs(model: ModelSpec, emit: (params: ReadonlyMap<string, HostTensor>, training: boolean) => TrainingGraph): Pick<OnnxNet, 'layout' | 'train' | 'evaluate'> {
  const layout = paramLayout(model);
  let sites: readonly DropoutSite[] = [];
  const train = traceParams(layout, (p) => {
    const out = emit(p, true);
    sites = out.dropout;
    return out.model;
  });
  return { layout, train: { ...train, dropout: sites }, evaluate: traceParams(layout, (p) => emit(p, false).model) };
}

export function vqvaeOnnxNet(cfg: VqvaeConfig): OnnxNet {
  const graphs = tracedGraphs({ kind: 'vqvae', config: cfg }, (p, training) => emitVqvaeTraining(p, cfg, { dropout: training, reconstruction: !training }));
  return {
    ...graphs,
    encoder: traceParams(graphs.layout, (p) => emitVqvaeTraining(p, cfg, { dropout: false, encoderOnly: true }).model),
    dropoutRate: cfg.dropout,
    feeds: imageFeeds,
    stats(outputs, batch) {
      const codeCounts = new Int32Array(cfg.codebookSize);
      for (const c of outputs.codes!.data as Int32Array) codeCounts[c]++;
      const means = scalarStats(outputs, ['loss', 'rec', 'codebook', 'commit']);
      if (outputs.xhat !== undefined && batch.kind === 'images' && batch.background !== undefined) {
        Object.assign(means, foregroundL1Parts(outputs.xhat.data as Float32Array, batch.images, batch.background, batch.count));
      }
      return { count: batch.count, means, codeCounts };
    },
  };
}

export function priorOnnxNet(cfg: PixelSnailConfig): OnnxNet {
  return {
    ...tracedGraphs({ kind: 'pixelsnail', config: cfg }, (p, training) => emitPriorTraining(p, cfg, { dropout: training })),
    dropoutRate: cfg.dropout,
    feeds(ort, batch) {
      if (batch.kind !== 'codes') throw new Error('the prior trains on code batches');
      const shape = [batch.count, batch.height, batch.width];
      return {
        feeds: { codes: new ort.Tensor('int32', batch.codes, shape), position: new ort.Tensor('float32', batch.positions, [batch.count]) },
        shapes: { codes: shape, position: [batch.count] },
      };
    },
    stats(outputs, batch) {
      const means = scalarStats(outputs, ['loss']);
      if (outputs.nll !== undefined && batch.kind === 'codes' && batch.foreground !== undefined) {
        Object.assign(means, foregroundNllParts(outputs.nll.data as Float32Array, batch.foreground, batch.count));
      }
      return { count: batch.count, means };
    },
  };
}

/** Like `foregroundL1Parts` for the prior: nllFgSum = Σ NLL over foreground codes / maps, codeFgFraction = foreground codes / codes. */
export function foregroundNllParts(nll: Float32Array, foreground: Uint8Array, count: number): { nllFgSum: number; codeFgFraction: number } {
  if (nll.length !== foreground.length) throw new RangeError(`foregroundNllParts: ${nll.length} NLL values, ${foreground.length} flags`);
  let sum = 0;
  let fg = 0;
  for (let i = 0; i < nll.length; i++) {
    if (foreground[i] !== 1) continue;
    fg++;
    sum += nll[i]!;
  }
  return { nllFgSum: sum / count, codeFgFraction: fg / nll.length };
}

/**
 * Parts of the L1 over foreground pixels (input ≠ background), as per-slice means so that the loop's
 * count-weighted combination stays exact: recFgSum = Σ|x̂ − x| over foreground / slices, fgFraction =
 * foreground pixels / all pixels; recFg = recFgSum / (fgFraction × pixels per slice) (see `deriveMetrics`).
 */
export function foregroundL1Parts(xhat: Float32Array, images: Float32Array, background: number, count: number): { recFgSum: number; fgFraction: number } {
  let sum = 0;
  let fg = 0;
  for (let i = 0; i < images.length; i++) {
    const x = images[i]!;
    if (x === background) continue;
    fg++;
    sum += Math.abs(xhat[i]! - x);
  }
  return { recFgSum: sum / count, fgFraction: fg / images.length };
}

/** Image feeds of the VQ-VAE and the VAE. */
function imageFeeds(ort: OrtModule, batch: TrainBatch): { feeds: Record<string, OrtTensor>; shapes: Record<string, Shape> } {
  if (batch.kind !== 'images') throw new Error('this network trains on image batches');
  const s = batch.size;
  return {
    feeds: { image: new ort.Tensor('float32', batch.images, [batch.count, s, s, 1]), position: new ort.Tensor('float32', batch.positions, [batch.count]) },
    shapes: { image: [batch.count, s, s, 1], position: [batch.count] },
  };
}

/** Scalar outputs as statistics. */
function scalarStats(outputs: Record<string, OrtTensor>, names: readonly string[]): Record<string, number> {
  return Object.fromEntries(names.map((n) => [n, (outputs[n]!.data as Float32Array)[0]!]));
}

export function vaeOnnxNet(cfg: VaeConfig): OnnxNet {
  return {
    ...tracedGraphs({ kind: 'vae', config: cfg }, (p, training) => emitVaeTraining(p, cfg, { training })),
    dropoutRate: cfg.dropout,
    feeds: imageFeeds,
    trainFeeds(ort, batch, seed) {
      const shape = [batch.count, cfg.latentDim];
      return { feeds: { noise: new ort.Tensor('float32', reparameterisationNoise(batch.count, cfg.latentDim, seed), shape) }, shapes: { noise: shape } };
    },
    stats: (outputs, batch) => ({ count: batch.count, means: scalarStats(outputs, ['loss', 'rec', 'kl', 'recNll']) }),
  };
}

export function transformerOnnxNet(cfg: TransformerConfig): OnnxNet {
  return {
    ...tracedGraphs({ kind: 'transformer', config: cfg }, (p, training) => emitTransformerTraining(p, cfg, { dropout: training })),
    dropoutRate: cfg.dropout,
    feeds(ort, batch) {
      if (batch.kind !== 'codes') throw new Error('the transformer trains on code batches');
      const shape = [batch.count, batch.height, batch.width];
      const cells = batch.height * batch.width;
      const n = batch.codes.length;
      return {
        feeds: {
          codes: new ort.Tensor('int32', batch.codes, shape),
          position: new ort.Tensor('float32', batch.positions, [batch.count]),
          targets: new ort.Tensor('int32', batch.targets ?? batch.codes, shape),
          loss_weights: new ort.Tensor('float32', batch.lossWeights ?? new Float32Array(n).fill(1 / cells), shape),
          tampered: new ort.Tensor('float32', batch.tampered ? Float32Array.from(batch.tampered) : new Float32Array(n), shape),
        },
        shapes: { codes: shape, position: [batch.count], targets: shape, loss_weights: shape, tampered: shape },
      };
    },
    stats(outputs, batch) {
      const means = scalarStats(outputs, ['loss', 'ceUntampered']);
      if (batch.kind === 'codes' && batch.tampered?.some((t) => t === 1)) means.ceTampered = (outputs.ceTampered!.data as Float32Array)[0]!;
      return { count: batch.count, means };
    },
  };
}

export function onnxNetFor(model: ModelSpec): OnnxNet {
  if (model.kind === 'transformer') return transformerOnnxNet(model.config);
  if (model.kind === 'vae') return vaeOnnxNet(model.config);
  if (model.kind === 'vqvae') return vqvaeOnnxNet(model.config);
  return priorOnnxNet(model.config);
}

export interface OnnxEngineOptions {
  /** Intra-op threads per session (default: every core / sessions, at least 1). */
  threads?: number;
  /** Sessions a step's batch is split over (default 1; they take turns on this thread for now). */
  sessions?: number;
}

export async function createOnnxTrainingEngine(model: ModelSpec, opts: OnnxEngineOptions = {}): Promise<TrainingEngine & { readonly threads: number; readonly sessions: number }> {
  const ort = await requireOnnxRuntime();
  const net = onnxNetFor(model);
  const sessions = opts.sessions ?? 1;
  if (!Number.isInteger(sessions) || sessions < 1) throw new Error(`ONNX training sessions: expected a whole number ≥ 1, got ${sessions}`);
  const threads = opts.threads ?? Math.max(1, Math.floor(os.availableParallelism() / sessions));
  const session = (m: TrainableModel['model']) => createSession(encodeModel(m), { threads });
  const gradSessions = new Map<string, Promise<OrtSession>>();
  let evalSession: Promise<OrtSession> | null = null;
  let encodeSession: Promise<OrtSession> | null = null;
  const weightFeeds = new Map<TrainableModel, { version: number; feeds: Record<string, OrtTensor> }>();

  const paramFeeds = (graph: TrainableModel, weights: Float32Array, version: number): Record<string, OrtTensor> => {
    const cached = weightFeeds.get(graph);
    if (cached !== undefined && cached.version === version) return cached.feeds;
    const feeds: Record<string, OrtTensor> = {};
    for (const b of graph.bindings) feeds[b.input] = new ort.Tensor('float32', bindingValues(b, weights), [...b.dims]);
    weightFeeds.set(graph, { version, feeds });
    return feeds;
  };

  // One compiled gradient graph per (slot, part size).
  const gradSession = (slot: number, batch: TrainBatch, shapes: Record<string, Shape>): Promise<OrtSession> => {
    const key = `${slot}/${batch.count}`;
    let s = gradSessions.get(key);
    if (s === undefined) {
      const inputShapes: Record<string, Shape> = { ...shapes };
      for (const site of net.train.dropout) inputShapes[site.input] = [batch.count, ...site.shape];
      const { model: withGrads } = backward(net.train.model, 'loss', net.train.bindings.map((b) => b.input), { inputShapes });
      s = session(withGrads);
      gradSessions.set(key, s);
    }
    return s;
  };

  /** Gradients of one part (maps `offset` … `offset + part.count` of the step's batch). */
  const partGradients = async (weights: Float32Array, version: number, part: TrainBatch, slot: number, offset: number, masks: Map<string, Float32Array>, seed: number) => {
    const data = net.feeds(ort, part);
    const extra = net.trainFeeds?.(ort, part, slot === 0 ? seed : (seed + 0x632be5ab * slot) >>> 0) ?? { feeds: {}, shapes: {} };
    const s = await gradSession(slot, part, { ...data.shapes, ...extra.shapes });
    const all: Record<string, OrtTensor> = { ...data.feeds, ...extra.feeds, ...paramFeeds(net.train, weights, version) };
    for (const site of net.train.dropout) {
      const per = site.shape.reduce((a, b) => a * b, 1);
      all[site.input] = new ort.Tensor('float32', masks.get(site.input)!.subarray(offset * per, (offset + part.count) * per), [part.count, ...site.shape]);
    }
    const out = await s.run(all);
    const grads = new Float32Array(net.layout.total);
    for (const b of net.train.bindings) scatterGradient(b, out[gradientName(b.input)]!.data as Float32Array, grads);
    return { grads, stats: net.stats(out, part) };
  };

  const encoder = (): Promise<OrtSession> => {
    if (net.encoder === undefined) throw new Error(`${model.kind} has no encoder`);
    encodeSession ??= session(net.encoder.model);
    return encodeSession;
  };

  return {
    workers: 0,
    threads,
    sessions,
    async gradients(weights, version, batch, seed) {
      const masks = dropoutMasks(net.train.dropout, batch.count, net.dropoutRate, seed);
      const parts = splitBatch(batch, sessions);
      const offsets = parts.map((_, i) => parts.slice(0, i).reduce((a, p) => a + p.count, 0));
      const results = await Promise.all(parts.map((part, slot) => partGradients(weights, version, part, slot, offsets[slot]!, masks, seed)));
      const grads = weightedMeanGradients(results.map((r) => ({ grads: r.grads, count: r.stats.count })));
      return { grads, stats: results.length === 1 ? results[0]!.stats : combineStats(results.map((r) => r.stats)) };
    },
    async evaluate(weights, version, batches) {
      evalSession ??= session(net.evaluate.model);
      const s = await evalSession;
      const parts: BatchStats[] = [];
      for (const batch of batches) {
        const out = await s.run({ ...net.feeds(ort, batch).feeds, ...paramFeeds(net.evaluate, weights, version) });
        parts.push(net.stats(out, batch));
      }
      return combineStats(parts);
    },
    async encode(weights, version, batches) {
      const s = await encoder();
      const out: Int32Array[] = [];
      for (const batch of batches) {
        const r = await s.run({ ...net.feeds(ort, batch).feeds, ...paramFeeds(net.encoder!, weights, version) });
        out.push(Int32Array.from(r.codes!.data as Int32Array));
      }
      return out;
    },
    async latents(weights, version, batch: ImageBatch) {
      const s = await encoder();
      const r = await s.run({ ...net.feeds(ort, batch).feeds, ...paramFeeds(net.encoder!, weights, version) });
      return Float32Array.from(r.z!.data as Float32Array);
    },
    async close() {
      const all = [...gradSessions.values(), ...(evalSession ? [evalSession] : []), ...(encodeSession ? [encodeSession] : [])];
      for (const s of all) await (await s).release();
    },
  };
}
