/**
 * Exact nearest-neighbour upsampling by an integer factor, built from reshape + concat so that its
 * gradient (a sum over each factor×factor block) is exact on every backend. The stock
 * resizeNearestNeighbor has a wrong gradient on the cpu backend at batch > 1.
 */
import * as tf from '@tensorflow/tfjs';

/** [B, H, W, C] → [B, f·H, f·W, C], every input pixel copied to an f×f block. */
export function upsampleNearest(x: tf.Tensor4D, factor = 2): tf.Tensor4D {
  if (!Number.isInteger(factor) || factor < 1) throw new Error(`upsampleNearest: factor must be a positive integer, got ${factor}`);
  if (factor === 1) return tf.clone(x);
  return tf.tidy(() => {
    const [b, h, w, c] = x.shape;
    const copies = (t: tf.Tensor4D): tf.Tensor4D[] => Array.from({ length: factor }, () => t);
    // Columns: [B·H, W, 1, C] → [B·H, W, f, C] is [B, H, f·W, C] in memory.
    const columns = tf.reshape(x, [b * h, w, 1, c]) as tf.Tensor4D;
    const wide = tf.concat(copies(columns), 2);
    // Rows: [B, H, 1, f·W·C] → [B, H, f, f·W·C] is [B, f·H, f·W, C] in memory.
    const rows = tf.reshape(wide, [b, h, 1, factor * w * c]) as tf.Tensor4D;
    const tall = tf.concat(copies(rows), 2);
    return tf.reshape(tall, [b, factor * h, factor * w, c]) as tf.Tensor4D;
  });
}

/** Exact 2× nearest-neighbour upsampling. */
export function upsampleNearest2x(x: tf.Tensor4D): tf.Tensor4D {
  return upsampleNearest(x, 2);
}
