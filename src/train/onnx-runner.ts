/**
 * One network's ONNX Runtime sessions for training: the gradient session (one per part size), the
 * evaluation session and the encoder, fed with the flat weights (re-bound only when their version
 * changes). Runs in the calling thread, or as the job of a worker thread (`setup` / `run`, the
 * worker-pool protocol of ../engine/pool.ts), which is how ./onnx-engine.ts puts a step's parts on
 * several cores at once: onnxruntime-node's `run` occupies the thread that calls it.
 */
import { backward, gradientName } from '../onnx/autodiff/backward.js';
import type { Shape } from '../onnx/autodiff/shapes.js';
import { bindingValues, scatterGradient, type ParamBinding, type TrainableModel } from '../onnx/autodiff/trainable.js';
import { lowerConvsToNchwc, nchwcBlockSize } from '../onnx/nchwc.js';
import { encodeModel, type OnnxModel } from '../onnx/onnx-proto.js';
import { fillFlatPrelude, flattenPrelude, hoistParameterPrelude, type FlatPreludeOutput, type ParamPrelude } from '../onnx/param-prelude.js';
import { loadNativeKernels, type NativeKernels } from '../onnx/native-session.js';
import { createSession, requireOnnxRuntime, type OrtModule, type OrtSession, type OrtTensor } from '../onnx/runtime.js';
import { combineStats } from './engine.js';
import type { BatchStats, ImageBatch, TrainBatch } from './loop-worker.js';
import { dropoutMasks } from './onnx-dropout.js';
import { onnxNetFor, type OnnxModelSpec, type OnnxNet } from './onnx-nets.js';

/** Where a part sits in its step's batch: samples `offset` … `offset + part.count` of `total`. */
export interface PartPlace {
  readonly offset: number;
  readonly total: number;
  /** The step's seed: dropout masks are drawn for the whole batch from it and sliced, so the split does not change them. */
  readonly seed: number;
  /** Seed of the part's own noise (the VAE's ε). */
  readonly noiseSeed: number;
}

export interface OnnxRunner {
  /** Mean-loss gradients of one part of a step's batch and its statistics. */
  gradients(weights: Float32Array, version: number, part: TrainBatch, place: PartPlace): Promise<{ grads: Float32Array; stats: BatchStats }>;
  evaluate(weights: Float32Array, version: number, batches: readonly TrainBatch[]): Promise<BatchStats>;
  encode(weights: Float32Array, version: number, batches: readonly ImageBatch[]): Promise<Int32Array[]>;
  latents(weights: Float32Array, version: number, batch: ImageBatch): Promise<Float32Array>;
  close(): Promise<void>;
}

/** A network's gradient graph and the parameter-only prelude hoisted out of it (null: none). */
export interface GradientGraph {
  readonly model: OnnxModel;
  readonly prelude: ParamPrelude | null;
  /** The bindings the graph still reads as inputs. */
  readonly bindings: readonly ParamBinding[];
  /** The prelude's values as indexed copies of the flat weights. */
  readonly preludeOutputs: readonly FlatPreludeOutput[];
}

/**
 * A network's gradient graph at a fixed part size: the training graph differentiated, its
 * convolutions put in ONNX Runtime's blocked layout where the runtime has those kernels (../onnx/nchwc.ts;
 * MOODLSR_ORT_NCHWC=0 keeps the plain layout), and its parameter-only rearrangements hoisted into a
 * prelude filled once per weights version (../onnx/param-prelude.ts; MOODLSR_PARAM_PRELUDE=0 keeps them).
 */
export async function gradientModel(ort: OrtModule, net: OnnxNet, count: number, shapes: Record<string, Shape>, opts: { customOperators?: boolean } = {}): Promise<GradientGraph> {
  const inputShapes: Record<string, Shape> = { ...shapes };
  for (const site of net.train.dropout) inputShapes[site.input] = [count, ...site.shape];
  const { model } = backward(net.train.model, 'loss', net.train.bindings.map((b) => b.input), { inputShapes, customOperators: opts.customOperators ?? false });
  const block = process.env.MOODLSR_ORT_NCHWC === '0' ? null : await nchwcBlockSize(ort);
  const lowered = block === null ? model : lowerConvsToNchwc(model, { inputShapes, blockSize: block, padOutputs: true, nchwInputs: true }).model;
  const hoisted = process.env.MOODLSR_PARAM_PRELUDE === '0' ? { model: lowered, prelude: null } : hoistParameterPrelude(lowered, new Map(net.train.bindings.map((b) => [b.input, [...b.dims]])));
  const inputs = new Set(hoisted.model.graph.inputs.map((i) => i.name));
  return {
    ...hoisted,
    bindings: net.train.bindings.filter((b) => inputs.has(b.input)),
    preludeOutputs: hoisted.prelude === null ? [] : flattenPrelude(hoisted.prelude, net.train.bindings),
  };
}

/**
 * The weight feeds of a graph for one weights version: the parameters it reads and, for a gradient
 * graph, its prelude's values.
 */
export function weightFeedsOf(
  ort: OrtModule,
  graph: { readonly bindings: readonly ParamBinding[]; readonly preludeOutputs?: readonly FlatPreludeOutput[] },
  weights: Float32Array,
): Record<string, OrtTensor> {
  const feeds: Record<string, OrtTensor> = {};
  for (const b of graph.bindings) feeds[b.input] = new ort.Tensor('float32', bindingValues(b, weights), [...b.dims]);
  const prelude = graph.preludeOutputs ?? [];
  const values = fillFlatPrelude(prelude, weights);
  for (const o of prelude) feeds[o.name] = new ort.Tensor('float32', values.get(o.name)!, [...o.shape]);
  return feeds;
}

/**
 * The binding that runs gradient graphs with the project's custom kernels (../onnx/native-session.ts),
 * or null where it is not built, is turned off, or its kernels would not run vectorised here.
 */
export function customKernels(): NativeKernels | null {
  const native = loadNativeKernels();
  return 'kernels' in native && native.kernels.vectorised ? native.kernels : null;
}

export async function createOnnxRunner(model: OnnxModelSpec, threads: number, net: OnnxNet = onnxNetFor(model), opts: { customKernels?: boolean } = {}): Promise<OnnxRunner> {
  const ort: OrtModule = await requireOnnxRuntime();
  const session = (m: TrainableModel['model']) => createSession(encodeModel(m), { threads });
  const kernels = opts.customKernels === false ? null : customKernels();
  // Gradient graphs with the custom kernels where the binding runs them, onnxruntime-node otherwise.
  const gradientSession = async (m: OnnxModel): Promise<OrtSession> =>
    kernels === null ? session(m) : (kernels.createSession(encodeModel(m), m.graph.outputs.map((o) => o.name), threads) as unknown as OrtSession);
  const gradSessions = new Map<number, Promise<{ graph: GradientGraph; session: OrtSession }>>();
  let evalSession: Promise<OrtSession> | null = null;
  let encodeSession: Promise<OrtSession> | null = null;
  // Weight feeds per graph (gradient graphs, evaluation, encoder), recomputed when the version changes.
  const weightFeeds = new Map<TrainableModel | GradientGraph, { version: number; feeds: Record<string, OrtTensor> }>();
  let masks: { key: string; masks: Map<string, Float32Array> } | null = null;

  const paramFeeds = (graph: TrainableModel | GradientGraph, weights: Float32Array, version: number): Record<string, OrtTensor> => {
    const cached = weightFeeds.get(graph);
    if (cached !== undefined && cached.version === version) return cached.feeds;
    const feeds = weightFeedsOf(ort, graph, weights);
    weightFeeds.set(graph, { version, feeds });
    return feeds;
  };

  // One compiled gradient graph per part size.
  const gradSession = (count: number, shapes: Record<string, Shape>): Promise<{ graph: GradientGraph; session: OrtSession }> => {
    let s = gradSessions.get(count);
    if (s === undefined) {
      s = gradientModel(ort, net, count, shapes, { customOperators: kernels !== null }).then(async (graph) => ({ graph, session: await gradientSession(graph.model) }));
      gradSessions.set(count, s);
    }
    return s;
  };

  const stepMasks = (total: number, seed: number): Map<string, Float32Array> => {
    const key = `${total}/${seed}`;
    if (masks?.key !== key) masks = { key, masks: dropoutMasks(net.train.dropout, total, net.dropoutRate, seed) };
    return masks.masks;
  };

  const encoder = (): Promise<OrtSession> => {
    if (net.encoder === undefined) throw new Error(`${model.kind} has no encoder`);
    encodeSession ??= session(net.encoder.model);
    return encodeSession;
  };

  return {
    async gradients(weights, version, part, place) {
      const data = net.feeds(ort, part);
      const extra = net.trainFeeds?.(ort, part, place.noiseSeed) ?? { feeds: {}, shapes: {} };
      const { graph, session: s } = await gradSession(part.count, { ...data.shapes, ...extra.shapes });
      const all: Record<string, OrtTensor> = { ...data.feeds, ...extra.feeds, ...paramFeeds(graph, weights, version) };
      if (net.train.dropout.length > 0) {
        const whole = stepMasks(place.total, place.seed);
        for (const site of net.train.dropout) {
          const per = site.shape.reduce((a, b) => a * b, 1);
          all[site.input] = new ort.Tensor('float32', whole.get(site.input)!.subarray(place.offset * per, (place.offset + part.count) * per), [part.count, ...site.shape]);
        }
      }
      const out = await s.run(all);
      const grads = new Float32Array(net.layout.total);
      for (const b of net.train.bindings) scatterGradient(b, out[gradientName(b.input)]!.data as Float32Array, grads);
      return { grads, stats: net.stats(out, part) };
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
    async latents(weights, version, batch) {
      const s = await encoder();
      const r = await s.run({ ...net.feeds(ort, batch).feeds, ...paramFeeds(net.encoder!, weights, version) });
      return Float32Array.from(r.z!.data as Float32Array);
    },
    async close() {
      const all = [...[...gradSessions.values()].map(async (g) => (await g).session), ...(evalSession ? [evalSession] : []), ...(encodeSession ? [encodeSession] : [])];
      gradSessions.clear();
      weightFeeds.clear();
      evalSession = null;
      encodeSession = null;
      for (const s of all) await (await s).release();
    },
  };
}

// ---- worker-thread job (../engine/worker-entry.ts) ----

export interface OnnxRunnerInit {
  readonly model: OnnxModelSpec;
  readonly threads: number;
  /** false: gradient graphs of standard operators on onnxruntime-node even where the custom kernels load. */
  readonly customKernels?: boolean;
}

export type OnnxRunnerTask =
  | { op: 'gradients'; weights: Float32Array; version: number; batch: TrainBatch; place: PartPlace }
  | { op: 'evaluate'; weights: Float32Array; version: number; batches: TrainBatch[] }
  | { op: 'encode'; weights: Float32Array; version: number; batches: ImageBatch[] }
  | { op: 'latents'; weights: Float32Array; version: number; batch: ImageBatch };

export type OnnxRunnerResult =
  | { grads: Float32Array; stats: BatchStats }
  | { stats: BatchStats }
  | { codes: Int32Array[] }
  | { latents: Float32Array };

let workerRunner: OnnxRunner | null = null;

export async function setup(init: OnnxRunnerInit): Promise<void> {
  workerRunner = await createOnnxRunner(init.model, init.threads, undefined, { customKernels: init.customKernels ?? true });
}

export async function run(task: OnnxRunnerTask): Promise<OnnxRunnerResult> {
  if (workerRunner === null) throw new Error('ONNX training worker: run before setup');
  const { weights, version } = task;
  switch (task.op) {
    case 'gradients':
      return workerRunner.gradients(weights, version, task.batch, task.place);
    case 'evaluate':
      return { stats: await workerRunner.evaluate(weights, version, task.batches) };
    case 'encode':
      return { codes: await workerRunner.encode(weights, version, task.batches) };
    case 'latents':
      return { latents: await workerRunner.latents(weights, version, task.batch) };
  }
}
