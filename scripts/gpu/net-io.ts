/**
 * Any network the ONNX Runtime engine trains, exported for a graph interpreter elsewhere
 * (scripts/gpu/onnx_torch.py) and proven there before it trains:
 * - train.onnx: the engine's training graph, parameters as inputs (dropout masks are inputs too);
 * - bindings.json + bindings.bin: each parameter input's index map into the flat weights and its constants
 *   (src/onnx/autodiff/trainable.ts);
 * - start.f32: the flat start weights; meta.json: the caller's facts, the parameter count and layout;
 * - check.json + check.bin: a seeded random batch, ONNX Runtime's outputs on it and the gradient of `loss`
 *   with respect to the flat weights from the project's own backward graph (src/onnx/autodiff/backward.ts),
 *   so an interpreter checks both its forward pass and its autograd (stop-gradients included).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DataType, encodeModel } from '../../src/onnx/onnx-proto.js';
import { backward, gradientName } from '../../src/onnx/autodiff/backward.js';
import { bindingValues, scatterGradient, type TrainableModel } from '../../src/onnx/autodiff/trainable.js';
import { createSession, requireOnnxRuntime, type OrtTensor } from '../../src/onnx/runtime.js';
import { createRng } from '../../src/engine/random.js';
import type { ParamLayout } from '../../src/train/param-layout.js';
import { initEngine } from '../../src/engine/backend.js';
import { onnxNetFor, onnxParamLayout, type OnnxModelSpec } from '../../src/train/onnx-nets.js';
import { loadWarmStart } from '../../src/train/warm-start.js';
import { flattenParams, initModel, type ModelSpec } from '../../src/train/loop-worker.js';
import { disposeParams } from '../../src/models/params.js';
import { saveFlatModel } from '../../src/train/checkpoint.js';

export interface TrainingExport {
  readonly train: TrainableModel;
  readonly layout: ParamLayout;
  readonly weights: Float32Array;
  /** Written into meta.json beside `total` and `layout` (config, the start's label, …). */
  readonly meta: Record<string, unknown>;
  /** Integer inputs: values drawn in [0, range) (codes: the codebook size). */
  readonly intRanges?: Readonly<Record<string, number>>;
  /** Batch size of the check (symbolic 'batch' dimensions). */
  readonly checkBatch?: number;
}

interface FeedRecord {
  readonly name: string;
  readonly dtype: 'float32' | 'int32' | 'int64';
  readonly dims: number[];
  readonly offset: number;
  readonly length: number;
}

const DTYPES: Partial<Record<number, FeedRecord['dtype']>> = { [DataType.FLOAT]: 'float32', [DataType.INT32]: 'int32', [DataType.INT64]: 'int64' };

function writeBindings(train: TrainableModel, outDir: string): number {
  const chunks: Buffer[] = [];
  let offset = 0;
  const bindings = train.bindings.map((b) => {
    const entry = { input: b.input, dims: b.dims, indexOffset: offset, constantsOffset: -1, length: b.index.length };
    chunks.push(Buffer.from(b.index.buffer, b.index.byteOffset, b.index.byteLength));
    offset += b.index.byteLength;
    if (b.constants !== null) {
      entry.constantsOffset = offset;
      chunks.push(Buffer.from(b.constants.buffer, b.constants.byteOffset, b.constants.byteLength));
      offset += b.constants.byteLength;
    }
    return entry;
  });
  writeFileSync(path.join(outDir, 'bindings.bin'), Buffer.concat(chunks));
  writeFileSync(path.join(outDir, 'bindings.json'), JSON.stringify(bindings, null, 1));
  return bindings.length;
}

export async function writeTrainingExport(exp: TrainingExport, outDir: string): Promise<{ inputs: number }> {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, 'train.onnx'), encodeModel(exp.train.model));
  const inputs = writeBindings(exp.train, outDir);
  const w = exp.weights;
  writeFileSync(path.join(outDir, 'start.f32'), Buffer.from(w.buffer, w.byteOffset, w.byteLength));
  writeFileSync(path.join(outDir, 'meta.json'), JSON.stringify({ ...exp.meta, total: exp.layout.total, layout: exp.layout.entries }, null, 1));
  await writeCheck(exp, outDir);
  return { inputs };
}

/** Seeded random data inputs, ONNX Runtime's outputs and the flat gradient of `loss` on them. */
async function writeCheck(exp: TrainingExport, outDir: string): Promise<void> {
  const ort = await requireOnnxRuntime();
  const rng = createRng('gpu-parity');
  const batch = exp.checkBatch ?? 2;
  const params = new Set(exp.train.bindings.map((b) => b.input));
  const feeds: Record<string, OrtTensor> = {};
  const shapes: Record<string, number[]> = {};
  const records: FeedRecord[] = [];
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const input of exp.train.model.graph.inputs) {
    if (params.has(input.name)) continue;
    const dtype = DTYPES[input.dataType];
    if (dtype === undefined) throw new Error(`GPU export: input ${input.name} has element type ${input.dataType}`);
    const dims = input.shape.map((d) => (typeof d === 'number' ? d : d === 'batch' ? batch : NaN));
    if (dims.some((d) => !Number.isInteger(d))) throw new Error(`GPU export: input ${input.name} has a symbolic dimension other than batch: ${JSON.stringify(input.shape)}`);
    const length = dims.reduce((a, b) => a * b, 1);
    const range = exp.intRanges?.[input.name] ?? 2;
    const values =
      dtype === 'float32'
        ? Float32Array.from({ length }, () => rng.next())
        : dtype === 'int32'
          ? Int32Array.from({ length }, () => rng.int(range))
          : BigInt64Array.from({ length }, () => BigInt(rng.int(range)));
    feeds[input.name] = new ort.Tensor(dtype, values, dims);
    shapes[input.name] = dims;
    records.push({ name: input.name, dtype, dims, offset, length });
    chunks.push(Buffer.from(values.buffer, values.byteOffset, values.byteLength));
    offset += values.byteLength;
  }
  for (const b of exp.train.bindings) feeds[b.input] = new ort.Tensor('float32', bindingValues(b, exp.weights), [...b.dims]);

  const { model: withGrads } = backward(exp.train.model, 'loss', [...params], { inputShapes: shapes });
  const session = await createSession(encodeModel(withGrads), { threads: 2 });
  const outputs = await session.run(feeds);
  await session.release();
  const grad = new Float32Array(exp.layout.total);
  for (const b of exp.train.bindings) {
    const g = outputs[gradientName(b.input)];
    if (g !== undefined) scatterGradient(b, g.data as Float32Array, grad);
  }
  const expected: Record<string, { sum: number; sumAbs: number; first: number[] }> = {};
  for (const name of exp.train.model.graph.outputs.map((o) => o.name)) {
    const data = Array.from(outputs[name]!.data as ArrayLike<number | bigint>, Number);
    expected[name] = { sum: data.reduce((a, v) => a + v, 0), sumAbs: data.reduce((a, v) => a + Math.abs(v), 0), first: data.slice(0, 8) };
  }
  writeFileSync(path.join(outDir, 'check.bin'), Buffer.concat(chunks));
  writeFileSync(path.join(outDir, 'check-grad.f32'), Buffer.from(grad.buffer));
  writeFileSync(path.join(outDir, 'check.json'), JSON.stringify({ batch, feeds: records, expected }, null, 1));
}

/** The networks besides DISYRE that the ONNX engine trains (weights file = `<kind>.json/.bin`). */
export const TRAINED_NET_KINDS = ['vqvae', 'pixelsnail', 'transformer', 'vae'] as const;
export type TrainedNetKind = (typeof TRAINED_NET_KINDS)[number];

export interface NetExportOptions {
  /** Start from a fresh initialisation with this seed instead of the weights in the folder (its config is kept). */
  readonly freshSeed?: string;
  /** Extra facts for meta.json (e.g. the region's normalised background value). */
  readonly meta?: Record<string, unknown>;
}

/** Exports `<dir>/<kind>.json/.bin` (or a fresh network of its config) with its training graph (codes drawn below its codebook size). */
export async function exportTrainedNet(kind: TrainedNetKind, dir: string, outDir: string, opts: NetExportOptions = {}): Promise<{ inputs: number; total: number; start: string }> {
  const config = (JSON.parse(readFileSync(path.join(dir, `${kind}.json`), 'utf8')) as { config: { codebookSize?: number } }).config;
  const spec = { kind, config } as OnnxModelSpec;
  await initEngine({ prefer: 'cpu', log: () => undefined });
  const layout = onnxParamLayout(spec);
  const start =
    opts.freshSeed !== undefined
      ? { weights: freshWeights(spec as ModelSpec, layout, opts.freshSeed), label: `fresh(seed ${opts.freshSeed})` }
      : loadWarmStart(dir, kind, kind, config, layout);
  const codes = config.codebookSize ?? 2;
  const { inputs } = await writeTrainingExport(
    { train: onnxNetFor(spec).train, layout, weights: start.weights, meta: { ...opts.meta, kind, config, start: start.label }, intRanges: { codes, targets: codes } },
    outDir,
  );
  return { inputs, total: layout.total, start: start.label };
}

function freshWeights(spec: ModelSpec, layout: ParamLayout, seed: string): Float32Array {
  const params = initModel(spec, seed);
  try {
    return flattenParams(params, layout);
  } finally {
    disposeParams(params);
  }
}

/**
 * The way back: flat weights trained elsewhere (float32, the export's layout) → `<outDir>/<kind>.json/.bin`,
 * the format the CPU trainer saves, with the training record under `extra.training`.
 */
export async function importTrainedNet(flatFile: string, exportDir: string, recordFile: string, outDir: string): Promise<string> {
  const meta = JSON.parse(readFileSync(path.join(exportDir, 'meta.json'), 'utf8')) as { kind: TrainedNetKind; config: unknown; total: number };
  if (!TRAINED_NET_KINDS.includes(meta.kind)) throw new Error(`export-net import: ${exportDir}/meta.json names kind ${String(meta.kind)}`);
  const spec = { kind: meta.kind, config: meta.config } as ModelSpec;
  await initEngine({ prefer: 'cpu', log: () => undefined });
  const layout = onnxParamLayout(spec);
  const bytes = readFileSync(flatFile);
  if (bytes.byteLength !== layout.total * 4) throw new Error(`export-net import: ${flatFile} holds ${bytes.byteLength} bytes, the ${meta.kind} layout needs ${layout.total * 4}`);
  const weights = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  if (!weights.every(Number.isFinite)) throw new Error(`export-net import: ${flatFile} holds non-finite weights`);
  const record = JSON.parse(readFileSync(recordFile, 'utf8')) as Record<string, unknown>;
  saveFlatModel(outDir, meta.kind, { kind: meta.kind, config: meta.config, layout, weights, extra: { training: record } });
  return path.join(outDir, `${meta.kind}.json`);
}
