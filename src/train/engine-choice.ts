/**
 * Which engine trains a network: `tfjs` (the TF.js runner, in this thread or data-parallel wasm
 * workers) or `onnx` (ONNX Runtime over the project's own gradient graphs, ./onnx-engine.ts);
 * `auto` = ONNX Runtime where it loads and the network has a training graph, else TF.js.
 * Both keep the weights and Adam state in the shared loop, so a checkpoint of one resumes on the other.
 */
import { loadOnnxRuntime } from '../onnx/runtime.js';
import { createTrainingEngine, type EngineChoice, type TrainingEngine } from './engine.js';
import type { ModelSpec, TrainableKind } from './loop-worker.js';
import type { TrainEngineName } from './engine-name.js';

/** Networks with an ONNX Runtime training graph. */
export const ONNX_TRAINABLE: readonly TrainableKind[] = ['vqvae', 'pixelsnail', 'vae', 'transformer'];

/** The engine `name` resolves to for `model` here, and why when `auto` falls back to TF.js. */
export async function resolveTrainEngine(name: TrainEngineName, model: ModelSpec): Promise<{ engine: 'onnx' | 'tfjs'; reason?: string }> {
  if (name === 'tfjs') return { engine: 'tfjs' };
  const supported = ONNX_TRAINABLE.includes(model.kind);
  const ort = await loadOnnxRuntime();
  if (name === 'onnx') {
    if (!supported) throw new Error(`--engine onnx: no ONNX Runtime training graph for ${model.kind} yet (networks: ${ONNX_TRAINABLE.join(', ')}); use --engine tfjs`);
    if ('error' in ort) throw new Error(`--engine onnx: onnxruntime-node cannot be loaded: ${ort.error}`);
    return { engine: 'onnx' };
  }
  if (!supported) return { engine: 'tfjs', reason: `no ONNX Runtime training graph for ${model.kind}` };
  if ('error' in ort) return { engine: 'tfjs', reason: `onnxruntime-node cannot be loaded: ${ort.error}` };
  return { engine: 'onnx' };
}

/** Creates the training engine `name` resolves to. */
export async function createChosenTrainingEngine(
  name: TrainEngineName,
  model: ModelSpec,
  tfjs: EngineChoice,
  log: (line: string) => void,
): Promise<{ engine: TrainingEngine; name: 'onnx' | 'tfjs' }> {
  const resolved = await resolveTrainEngine(name, model);
  if (resolved.engine === 'onnx') {
    const { createOnnxTrainingEngine, describeOnnxEngine, onnxSessionsForWorkers } = await import('./onnx-engine.js');
    const engine = await createOnnxTrainingEngine(model, { sessions: onnxSessionsForWorkers(tfjs.workers) });
    log(`training engine: ${describeOnnxEngine(engine)}`);
    return { engine, name: 'onnx' };
  }
  if (resolved.reason !== undefined) log(`training engine: TF.js (${resolved.reason})`);
  return { engine: await createTrainingEngine(model, tfjs), name: 'tfjs' };
}
