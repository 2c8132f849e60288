/** The training batch of the DISYRE U-Net. */
import type { ImageBatch, TrainBatch } from '../../train/loop-worker.js';

/** A training batch: corrupted slices (`images`), their clean originals, levels t and positions z. */
export interface DisyreBatch extends ImageBatch {
  readonly targets: Float32Array;
  readonly levels: Float32Array;
  /** Targets of the segmentation head: each corruption's soft mask times its level (absent without the head). */
  readonly masks?: Float32Array;
}

export function isDisyreBatch(b: TrainBatch): b is DisyreBatch {
  return b.kind === 'images' && (b as Partial<DisyreBatch>).targets instanceof Float32Array && (b as Partial<DisyreBatch>).levels instanceof Float32Array;
}
