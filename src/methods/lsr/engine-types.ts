/** What every LSR inference engine offers (./engine.ts builds the TF.js one, ./onnx-engine.ts the ONNX Runtime one). */
import type { EngineName } from '../../inference/engine-choice.js';
import type { LsrNetworks } from './networks.js';

export interface LsrEngine {
  readonly name: EngineName;
  /** Configs (and, for TF.js, the parameters) of the two networks. */
  readonly nets: LsrNetworks;
  /** Most code maps per prior call the engine runs efficiently. */
  readonly priorBatch: number;
  /** Most maps per decoder call. */
  readonly decodeBatch: number;
  /** Whether pixel scores should run on worker threads (single-threaded backends such as wasm). */
  readonly wantsWorkers: boolean;
  /** Nearest-code maps of normalised slices (count × S × S) → int32 [count, h, w]. */
  encodeSlices(images: Float32Array, positions: Float32Array): Promise<Int32Array>;
  /**
   * Nearest codes and each one's quantisation distance ‖z − e‖² (../../score/quantisation-distance.ts),
   * both [count, h, w]. Only engines that expose the encoder output offer it.
   */
  encodeWithDistances?(images: Float32Array, positions: Float32Array): Promise<{ codes: Int32Array; distances: Float32Array }>;
  /** Decoded images of code maps (count × h × w) → float32 [count, S, S]. */
  decodeCodeMaps(codes: Int32Array, positions: Float32Array): Promise<Float32Array>;
  /** −log p(code | previous codes) for every code → float32 [count, h, w]. */
  codeNlls(codes: Int32Array, positions: Float32Array): Promise<Float32Array>;
  /** Prior logits for positions `from` … end → float32 [count, positions − from, K]. */
  priorLogitsFrom(codes: Int32Array, positions: Float32Array, from: number): Promise<Float32Array>;
  /** Releases sessions (ONNX); the networks' parameters stay with their owner. */
  dispose(): Promise<void>;
}
