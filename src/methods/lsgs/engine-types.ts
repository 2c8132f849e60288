/** What every LSGS inference engine offers (./engine.ts builds the TF.js one, ./onnx-engine.ts the ONNX Runtime one). */
import type { EngineName } from '../../inference/engine-choice.js';
import type { TransformerConfig } from './transformer.js';
import type { LsgsNetworks } from './networks.js';

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
