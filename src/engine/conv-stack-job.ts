/**
 * A small encoder-like conv stack as an inference job (see ./pool.ts): used by the worker tests and
 * the engine benchmark. Weights come from a seed, so every worker builds the same network.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng } from './random.js';

export interface ConvStackConfig {
  seed: number;
  inputChannels: number;
  /** Output channels of each layer: 3×3 stride-1 conv, then 5×5 stride-2 conv, alternating. */
  channels: number[];
}

export interface ConvStackTask {
  data: Float32Array;
  shape: [number, number, number, number];
  /** Test hooks: make `run` throw, or kill the worker thread. */
  fail?: 'throw' | 'exit';
}

export interface ConvStackResult {
  data: Float32Array;
  shape: number[];
}

export interface ConvLayer {
  filter: tf.Tensor4D;
  bias: tf.Tensor1D;
  stride: 1 | 2;
}

export function buildConvStack(config: ConvStackConfig): ConvLayer[] {
  const rng = createRng(config.seed);
  let inChannels = config.inputChannels;
  return config.channels.map((outChannels, i) => {
    const stride: 1 | 2 = i % 2 === 0 ? 1 : 2;
    const size = stride === 1 ? 3 : 5;
    const count = size * size * inChannels * outChannels;
    const scale = Math.sqrt(2 / (size * size * inChannels));
    const weights = Float32Array.from({ length: count }, () => rng.normal() * scale);
    const biases = Float32Array.from({ length: outChannels }, () => rng.uniform(-0.1, 0.1));
    const layer: ConvLayer = {
      filter: tf.tensor4d(weights, [size, size, inChannels, outChannels]),
      bias: tf.tensor1d(biases),
      stride,
    };
    inChannels = outChannels;
    return layer;
  });
}

/** conv → bias → elu for every layer. */
export function forwardConvStack(layers: readonly ConvLayer[], x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    let h = x;
    for (const layer of layers) h = tf.elu(tf.add(tf.conv2d(h, layer.filter, layer.stride, 'same'), layer.bias)) as tf.Tensor4D;
    return h;
  });
}

let layers: ConvLayer[] | null = null;

export function setup(config: ConvStackConfig): void {
  layers = buildConvStack(config);
}

export async function run(task: ConvStackTask): Promise<ConvStackResult> {
  if (task.fail === 'throw') throw new Error('conv-stack job asked to fail');
  if (task.fail === 'exit') process.exit(7);
  if (layers === null) throw new Error('conv-stack job: setup() was not called');
  const current = layers;
  const out = tf.tidy(() => forwardConvStack(current, tf.tensor4d(task.data, task.shape)));
  const data = (await out.data()) as Float32Array;
  const shape = out.shape;
  out.dispose();
  return { data, shape };
}
