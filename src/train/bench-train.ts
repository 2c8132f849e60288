/**
 * Training throughput of one network on one engine: steps as the trainer takes them (gradients of
 * a batch, grad-value clip 1, Adam) on random inputs of the compact (or reference) brain preset,
 * the median seconds per step after one warm-up step, and items (slices or code maps) per second.
 * `moodlsr bench train` prints it; docs/benchmarks.md compares the engines with it.
 */
import os from 'node:os';
import { createRng } from '../engine/random.js';
import { pixelsnailPreset, vqvaePreset, type PresetName } from '../models/config.js';
import { disposeParams } from '../models/params.js';
import { transformerPreset } from '../methods/lsgs/transformer.js';
import { vaePreset } from '../methods/vae/config.js';
import { DEFAULT_PRIOR_BATCH, DEFAULT_TRANSFORMER_BATCH, DEFAULT_VQVAE_BATCH } from './defaults.js';
import { createTrainingEngine, type TrainingEngine } from './engine.js';
import { adamStep, DEFAULT_ADAM } from './loop.js';
import { flattenParams, initModel, paramLayout, type ModelSpec, type TrainBatch } from './loop-worker.js';

export type BenchNet = 'vqvae' | 'prior' | 'transformer' | 'vae';
export const BENCH_NETS: readonly BenchNet[] = ['vqvae', 'prior', 'transformer', 'vae'];

export function benchModel(net: BenchNet, preset: PresetName): { model: ModelSpec; batch: number; unit: 'slices' | 'maps' } {
  switch (net) {
    case 'vqvae':
      return { model: { kind: 'vqvae', config: vqvaePreset(preset, 'brain') }, batch: DEFAULT_VQVAE_BATCH, unit: 'slices' };
    case 'prior':
      return { model: { kind: 'pixelsnail', config: pixelsnailPreset(preset, 'brain') }, batch: DEFAULT_PRIOR_BATCH, unit: 'maps' };
    case 'transformer':
      return { model: { kind: 'transformer', config: transformerPreset(preset, 'brain') }, batch: DEFAULT_TRANSFORMER_BATCH, unit: 'maps' };
    case 'vae':
      return { model: { kind: 'vae', config: vaePreset(preset, 'brain') }, batch: DEFAULT_VQVAE_BATCH, unit: 'slices' };
  }
}

/** Random inputs of the model's shape (throughput does not depend on the values). */
export function randomTrainBatch(model: ModelSpec, count: number, seed = 1): TrainBatch {
  const rng = createRng(seed);
  const positions = Float32Array.from({ length: count }, (_, i) => -0.5 + i / count);
  if (model.kind === 'vqvae' || model.kind === 'vae') {
    const size = model.config.inputSize;
    return { kind: 'images', images: Float32Array.from({ length: count * size * size }, () => rng.normal()), positions, count, size };
  }
  const { height, width } = model.config;
  const codes = Int32Array.from({ length: count * height * width }, () => rng.int(model.config.codebookSize));
  return { kind: 'codes', codes, positions, count, height, width };
}

export interface BenchResult {
  net: BenchNet;
  engine: 'onnx' | 'tfjs';
  preset: PresetName;
  batch: number;
  steps: number;
  unit: 'slices' | 'maps';
  seconds_per_step: number;
  items_per_second: number;
  /** ONNX Runtime intra-op threads per session (1 for TF.js). */
  threads: number;
  /** ONNX Runtime sessions a step's batch is split over, each in its own worker thread when > 1 (1 for TF.js). */
  sessions: number;
  workers: number;
  /** ONNX Runtime: whether the gradient graphs ran with the custom kernels (native/ort-kernels); false for TF.js. */
  custom_kernels: boolean;
  load_start: number;
  load_end: number;
  node: string;
  cpu: string;
  nproc: number;
  step_seconds: number[];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function benchTrain(opts: {
  net: BenchNet;
  engine: 'onnx' | 'tfjs';
  steps: number;
  preset?: PresetName;
  batch?: number;
  /** ONNX Runtime intra-op threads per session (default: every core / sessions). */
  threads?: number;
  /** ONNX Runtime sessions over parts of the batch, each in a worker thread (default: the trainers', `defaultOnnxSessions()`). */
  sessions?: number;
  /** TF.js wasm workers (default 2, or the core count if smaller). */
  workers?: number;
  log?: (line: string) => void;
}): Promise<BenchResult> {
  const preset = opts.preset ?? 'compact';
  const { model, batch: defaultBatch, unit } = benchModel(opts.net, preset);
  const batchSize = opts.batch ?? defaultBatch;
  const layout = paramLayout(model);
  const params = initModel(model, 1);
  const weights = flattenParams(params, layout);
  disposeParams(params);
  let engine: TrainingEngine;
  let threads = 1;
  let sessions = 1;
  let workers = 0;
  let kernels = false;
  if (opts.engine === 'onnx') {
    const { createOnnxTrainingEngine, defaultOnnxSessions } = await import('./onnx-engine.js');
    const e = await createOnnxTrainingEngine(model, {
      ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
      sessions: opts.sessions ?? defaultOnnxSessions(),
    });
    threads = e.threads;
    sessions = e.sessions;
    workers = e.workers;
    kernels = e.customKernels;
    engine = e;
  } else {
    const { initEngine } = await import('../engine/backend.js');
    const info = await initEngine({ prefer: 'wasm', log: () => undefined });
    workers = opts.workers ?? Math.min(2, os.availableParallelism());
    engine = await createTrainingEngine(model, { workers, backend: info.backend === 'cpu' ? 'cpu' : 'wasm' });
  }
  const m = new Float32Array(layout.total);
  const v = new Float32Array(layout.total);
  const batch = randomTrainBatch(model, batchSize);
  const times: number[] = [];
  const loadStart = os.loadavg()[0]!;
  try {
    for (let i = 0; i <= opts.steps; i++) {
      const t0 = performance.now();
      const { grads } = await engine.gradients(weights, i + 1, batch, i);
      adamStep(weights, grads, m, v, i + 1, DEFAULT_ADAM, 1);
      const seconds = (performance.now() - t0) / 1000;
      if (i > 0) times.push(seconds);
      opts.log?.(`${i === 0 ? 'warm-up' : `step ${i}/${opts.steps}`}: ${seconds.toFixed(3)} s`);
    }
  } finally {
    await engine.close();
  }
  const perStep = median(times);
  return {
    net: opts.net,
    engine: opts.engine,
    preset,
    batch: batchSize,
    steps: opts.steps,
    unit,
    seconds_per_step: perStep,
    items_per_second: batchSize / perStep,
    threads,
    sessions,
    workers,
    custom_kernels: kernels,
    load_start: loadStart,
    load_end: os.loadavg()[0]!,
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'cpu',
    nproc: os.availableParallelism(),
    step_seconds: times,
  };
}
