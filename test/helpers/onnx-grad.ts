/**
 * Gradient checks of ONNX graphs: a graph built with GraphBuilder is differentiated by
 * src/onnx/autodiff and run on ONNX Runtime; its gradients are compared with central finite
 * differences of the same graph's loss (float32: ONNX Runtime's CPU Conv, ConvTranspose and
 * InstanceNormalization have no float64 kernels, so the differences run in float32 with a step of
 * 1e-2 on O(1) inputs and a relative tolerance to match).
 */
import { backward, gradientName } from '../../src/onnx/autodiff/backward.js';
import { GraphBuilder, type Value } from '../../src/onnx/graph.js';
import { DataType, encodeModel, type OnnxModel } from '../../src/onnx/onnx-proto.js';
import { createSession, requireOnnxRuntime } from '../../src/onnx/runtime.js';
import { createRng } from '../../src/engine/random.js';

export interface FloatInput {
  shape: number[];
  values: Float32Array;
}

export function randomInput(shape: number[], seed: string, scale = 1): FloatInput {
  const rng = createRng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, values: Float32Array.from({ length: n }, () => scale * rng.normal()) };
}

/** A graph over float inputs → scalar loss = Σ out · r (r fixed random), so every output element gets a distinct weight. */
export function lossGraph(inputs: Record<string, FloatInput>, build: (g: GraphBuilder, x: Record<string, Value>) => { value: Value; shape: number[] }): OnnxModel {
  const g = new GraphBuilder('grad_check');
  const values: Record<string, Value> = {};
  for (const [name, t] of Object.entries(inputs)) values[name] = g.input(name, DataType.FLOAT, t.shape);
  const out = build(g, values);
  const weights = randomInput(out.shape, 'loss-weights');
  const loss = g.reduceSum(g.mul(out.value, g.initializer('loss_weights', out.shape, weights.values)), [], false);
  g.output(loss, 'loss', DataType.FLOAT, []);
  return g.build({ producerVersion: 'test' });
}

async function runLoss(session: Awaited<ReturnType<typeof createSession>>, inputs: Record<string, FloatInput>, names: readonly string[]): Promise<Record<string, Float32Array>> {
  const ort = await requireOnnxRuntime();
  const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
  for (const [name, t] of Object.entries(inputs)) feeds[name] = new ort.Tensor('float32', t.values, t.shape);
  const out = await session.run(feeds);
  const result: Record<string, Float32Array> = {};
  for (const n of names) result[n] = out[n]!.data as Float32Array;
  return result;
}

export interface GradCheck {
  /** max over inputs and directions of |analytic − numeric| / max(|numeric|, floor). */
  worst: number;
  analytic: Record<string, Float32Array>;
}

/**
 * Directional derivatives along `directions` random unit directions per input, plus single
 * elements, analytic (ONNX gradient graph) vs central differences.
 */
export async function checkGradients(model: OnnxModel, inputs: Record<string, FloatInput>, opts: { step?: number; directions?: number; elements?: number } = {}): Promise<GradCheck> {
  const names = Object.keys(inputs);
  const shapes = Object.fromEntries(names.map((n) => [n, inputs[n]!.shape]));
  const { model: withGrads } = backward(model, 'loss', names, { inputShapes: shapes });
  const gradSession = await createSession(encodeModel(withGrads), { threads: 1 });
  const lossSession = await createSession(encodeModel(model), { threads: 1 });
  const analytic = await runLoss(gradSession, inputs, names.map(gradientName));
  const step = opts.step ?? 1e-2;
  let worst = 0;
  const lossAt = async (name: string, delta: Float32Array, sign: number) => {
    const moved = { ...inputs, [name]: { shape: inputs[name]!.shape, values: inputs[name]!.values.map((v, i) => v + sign * step * delta[i]!) } };
    return (await runLoss(lossSession, moved, ['loss'])).loss![0]!;
  };
  for (const name of names) {
    const g = analytic[gradientName(name)]!;
    const n = g.length;
    const rng = createRng(`dir:${name}`);
    const dirs: Float32Array[] = [];
    for (let d = 0; d < (opts.directions ?? 3); d++) {
      const v = Float32Array.from({ length: n }, () => rng.normal());
      const norm = Math.hypot(...v);
      dirs.push(v.map((x) => x / norm));
    }
    for (let k = 0; k < (opts.elements ?? 2); k++) {
      const v = new Float32Array(n);
      v[rng.int(n)] = 1;
      dirs.push(v);
    }
    let gradNorm = 0;
    for (const x of g) gradNorm = Math.max(gradNorm, Math.abs(x));
    for (const v of dirs) {
      const numeric = ((await lossAt(name, v, 1)) - (await lossAt(name, v, -1))) / (2 * step);
      let exact = 0;
      for (let i = 0; i < n; i++) exact += g[i]! * v[i]!;
      worst = Math.max(worst, Math.abs(exact - numeric) / Math.max(Math.abs(numeric), gradNorm, 1e-3));
    }
  }
  return { worst, analytic };
}
