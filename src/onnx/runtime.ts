/**
 * ONNX Runtime (onnxruntime-node, CPU execution provider) loaded on demand, so the package still
 * works where its native binary cannot load: `loadOnnxRuntime` reports why instead of throwing at
 * import time.
 */
import os from 'node:os';
import type * as Ort from 'onnxruntime-node';

export type OrtModule = typeof Ort;
export type OrtSession = Ort.InferenceSession;
export type OrtTensor = Ort.Tensor;

let loaded: Promise<{ ort: OrtModule } | { error: string }> | null = null;

/** The onnxruntime-node module, or the reason it cannot be used here. */
export function loadOnnxRuntime(): Promise<{ ort: OrtModule } | { error: string }> {
  loaded ??= import('onnxruntime-node').then(
    (m) => ({ ort: ((m as unknown as { default?: OrtModule }).default ?? m) as OrtModule }),
    (err: unknown) => ({ error: (err as Error).message }),
  );
  return loaded;
}

export async function requireOnnxRuntime(): Promise<OrtModule> {
  const r = await loadOnnxRuntime();
  if ('error' in r) throw new Error(`onnxruntime-node cannot be loaded: ${r.error}`);
  return r.ort;
}

export interface SessionOptions {
  /** Intra-op threads; default: all available cores. */
  threads?: number;
  /**
   * Let idle intra-op threads spin between operators (ONNX Runtime's default). Off by default: on a
   * shared machine a spinning thread that is descheduled stalls every operator; measured here
   * (2 cores, load ≈ 8) spinning made the prior 1.7× slower, and it costs little on an idle machine.
   */
  spin?: boolean;
}

/** Whether sessions let idle intra-op threads spin when not told (SessionOptions.spin): MOODLSR_ORT_SPIN=1. */
export function spinByDefault(): boolean {
  return process.env.MOODLSR_ORT_SPIN === '1';
}

/** A CPU session over a serialised model, all graph optimisations on, one inter-op thread. */
export async function createSession(model: Uint8Array, opts: SessionOptions = {}): Promise<OrtSession> {
  const ort = await requireOnnxRuntime();
  const spin = opts.spin ?? spinByDefault();
  return ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: opts.threads ?? os.availableParallelism(),
    interOpNumThreads: 1,
    extra: { session: { intra_op: { allow_spinning: spin ? '1' : '0' } } },
  });
}
