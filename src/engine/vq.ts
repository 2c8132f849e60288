/**
 * Vector quantisation for the VQ-VAE: nearest codebook vector by L2, straight-through gradient,
 * codebook and commitment losses. Written only with ops that have gradients on the cpu and wasm
 * backends: code selection is oneHot(argMin)·E (a matMul), never a gather.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Identity in the forward pass, zero gradient in the backward pass (tfjs has no stopGradient).
 */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const input = args[0] as tf.Tensor;
    return { value: tf.clone(input), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
  });
  return op(x) as T;
}

/**
 * Forward value of `codes`; in the backward pass the gradient goes unchanged to `input` and not to
 * `codes` (the straight-through estimator of van den Oord et al.).
 */
export function straightThrough<T extends tf.Tensor>(input: T, codes: T): T {
  if (!tf.util.arraysEqual(input.shape, codes.shape)) {
    throw new Error(`straightThrough: shapes differ, ${input.shape} vs ${codes.shape}`);
  }
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const codeValues = args[1] as tf.Tensor;
    const codeShape = codeValues.shape;
    return { value: tf.clone(codeValues), gradFunc: (dy: tf.Tensor) => [tf.clone(dy), tf.zeros(codeShape)] };
  });
  return op(input, codes) as T;
}

/** Squared L2 distance of every row of `vectors` [N, D] to every code of `codebook` [K, D]: [N, K]. */
export function squaredDistances(vectors: tf.Tensor2D, codebook: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const vectorNorms = tf.sum(tf.square(vectors), 1, true); // [N, 1]
    const codeNorms = tf.reshape(tf.sum(tf.square(codebook), 1), [1, -1]); // [1, K]
    const dots = tf.matMul(vectors, codebook, false, true); // [N, K]
    return tf.add(tf.sub(vectorNorms, tf.mul(dots, 2)), codeNorms) as tf.Tensor2D;
  });
}

/** Index of the nearest code for every vector of `z` [B, H, W, D]: int32 [B, H, W]. No gradient. */
export function nearestCodes(z: tf.Tensor4D, codebook: tf.Tensor2D): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, h, w, d] = z.shape;
    const flat = tf.reshape(z, [b * h * w, d]) as tf.Tensor2D;
    return tf.reshape(tf.argMin(squaredDistances(flat, codebook), 1), [b, h, w]) as tf.Tensor3D;
  });
}

/** Code vectors for int32 `indices` of any shape S: [...S, D], selected with oneHot·E (differentiable in E). */
export function lookupCodes(indices: tf.Tensor, codebook: tf.Tensor2D): tf.Tensor {
  return tf.tidy(() => {
    const [k, d] = codebook.shape;
    const flat = tf.reshape(tf.cast(indices, 'int32'), [-1]) as tf.Tensor1D;
    const selected = tf.matMul(tf.oneHot(flat, k), codebook);
    return tf.reshape(selected, [...indices.shape, d]);
  });
}

export interface QuantizeResult {
  /** Quantised latents [B, H, W, D]: forward value = nearest codes, gradient passes straight to z. */
  zq: tf.Tensor4D;
  /** Nearest code index per position, int32 [B, H, W]. */
  indices: tf.Tensor3D;
  /** mean ‖sg[z] − e‖²: gradient reaches the codebook only. */
  codebookLoss: tf.Scalar;
  /** mean ‖z − sg[e]‖²: gradient reaches z only. */
  commitmentLoss: tf.Scalar;
  /** How many positions chose each code, float32 [K] (codebook usage / collapse monitoring). */
  codeCounts: tf.Tensor1D;
}

/**
 * Quantises z [B, H, W, D] with codebook [K, D]. Losses are means over all elements (as
 * PyTorch's mse_loss); weight them in the caller. All returned tensors are owned by the caller.
 */
export function quantize(z: tf.Tensor4D, codebook: tf.Tensor2D): QuantizeResult {
  const [b, h, w, d] = z.shape;
  const [k, codeDim] = codebook.shape;
  if (codeDim !== d) throw new Error(`quantize: latent depth ${d} differs from codebook depth ${codeDim}`);
  return tf.tidy(() => {
    const flat = tf.reshape(z, [b * h * w, d]) as tf.Tensor2D;
    const nearest = tf.argMin(squaredDistances(stopGradient(flat), stopGradient(codebook)), 1) as tf.Tensor1D;
    const assignment = tf.oneHot(nearest, k); // [N, K], float32
    const codes = tf.reshape(tf.matMul(assignment, codebook), [b, h, w, d]) as tf.Tensor4D;
    const codebookLoss = tf.mean(tf.squaredDifference(stopGradient(z), codes)) as tf.Scalar;
    const commitmentLoss = tf.mean(tf.squaredDifference(z, stopGradient(codes))) as tf.Scalar;
    return {
      zq: straightThrough(z, codes),
      indices: tf.reshape(nearest, [b, h, w]) as tf.Tensor3D,
      codebookLoss,
      commitmentLoss,
      codeCounts: tf.sum(assignment, 0) as tf.Tensor1D,
    };
  });
}
