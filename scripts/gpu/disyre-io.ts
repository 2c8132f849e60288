/**
 * What the GPU trainer (scripts/gpu/train_disyre.py) needs to train the DISYRE U-Net outside Node, and
 * the way back (CLI: ./export-disyre.ts):
 * - export: train.onnx (the ONNX Runtime engine's training graph, parameters as inputs),
 *   bindings.json + bindings.bin (each parameter input's index map into the flat weights and its
 *   constants: src/onnx/autodiff/trainable.ts), start.f32 (flat start weights), meta.json (config,
 *   layout, the start's label), check.bin/check.json (a batch and ONNX Runtime's outputs on it);
 * - import: flat weights → DIR/disyre.json/.bin, the format the CPU trainer saves.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodeModel } from '../../src/onnx/onnx-proto.js';
import { saveFlatModel } from '../../src/train/checkpoint.js';
import { initEngine } from '../../src/engine/backend.js';
import { disyreOnnxNet } from '../../src/train/onnx-nets.js';
import { DISYRE_KIND, DISYRE_NAME, hasSegmentationHead, validateDisyreConfig, type DisyreConfig } from '../../src/methods/disyre/config.js';
import { disyreLayout, disyreStartWeights } from '../../src/methods/disyre/train-engine.js';
import { conditionInput } from '../../src/methods/disyre/embedding.js';
import { bindingValues } from '../../src/onnx/autodiff/trainable.js';
import { createSession, requireOnnxRuntime, type OrtTensor } from '../../src/onnx/runtime.js';
import { createRng } from '../../src/engine/random.js';

export async function exportDisyreForGpu(initDir: string, outDir: string, log: (line: string) => void = () => undefined): Promise<void> {
  const cfg = validateDisyreConfig((JSON.parse(readFileSync(path.join(initDir, `${DISYRE_NAME}.json`), 'utf8')) as { config: unknown }).config);
  const net = disyreOnnxNet(cfg);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, 'train.onnx'), encodeModel(net.train.model));
  const chunks: Buffer[] = [];
  let offset = 0;
  const bindings = net.train.bindings.map((b) => {
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
  await initEngine({ prefer: 'cpu', log: () => undefined });
  const start = await disyreStartWeights(initDir, cfg);
  writeFileSync(path.join(outDir, 'start.f32'), Buffer.from(start.weights.buffer, start.weights.byteOffset, start.weights.byteLength));
  const layout = disyreLayout(cfg);
  writeFileSync(path.join(outDir, 'meta.json'), JSON.stringify({ config: cfg, total: layout.total, layout: layout.entries, start: start.label }, null, 1));
  await writeParityCheck(net, cfg, start.weights, outDir);
  log(`${outDir}: ${bindings.length} parameter inputs, ${layout.total} parameters, start ${start.label}`);
}

/**
 * check.bin/check.json: a seeded random batch of 3 and ONNX Runtime's outputs on it with the start
 * weights, so the GPU trainer can prove its interpretation of train.onnx before it trains.
 */
async function writeParityCheck(net: ReturnType<typeof disyreOnnxNet>, cfg: DisyreConfig, weights: Float32Array, outDir: string): Promise<void> {
  const ort = await requireOnnxRuntime();
  const rng = createRng('gpu-parity');
  const n = 3;
  const s = cfg.inputSize;
  const plane = n * s * s;
  const target = Float32Array.from({ length: plane }, () => rng.next());
  const image = Float32Array.from(target, (v) => (rng.next() < 0.2 ? rng.next() : v));
  const mask = Float32Array.from(image, (v, i) => (v !== target[i] ? 0.7 : 0));
  const cond = conditionInput(cfg, Float32Array.from([0.1, 0.5, 0.9]), Float32Array.from([-0.3, 0, 0.25]));
  const feeds: Record<string, OrtTensor> = {
    image: new ort.Tensor('float32', image, [n, s, s, 1]),
    target: new ort.Tensor('float32', target, [n, s, s, 1]),
    cond: new ort.Tensor('float32', cond, [n, cond.length / n]),
  };
  if (hasSegmentationHead(cfg)) feeds.mask = new ort.Tensor('float32', mask, [n, s, s, 1]);
  for (const b of net.train.bindings) feeds[b.input] = new ort.Tensor('float32', bindingValues(b, weights), [...b.dims]);
  const session = await createSession(encodeModel(net.train.model), { threads: 1 });
  const outputs = await session.run(feeds);
  const expected: Record<string, number> = {};
  for (const [name, t] of Object.entries(outputs)) expected[name] = Number((t.data as Float32Array)[0]);
  await session.release();
  writeFileSync(path.join(outDir, 'check.bin'), Buffer.concat([image, target, mask, cond].map((a) => Buffer.from(a.buffer))));
  writeFileSync(path.join(outDir, 'check.json'), JSON.stringify({ count: n, condSize: cond.length / n, expected }, null, 1));
}

export async function importDisyreFromGpu(flatFile: string, metaFile: string, recordFile: string, outDir: string, log: (line: string) => void = () => undefined): Promise<void> {
  const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as { config: DisyreConfig; total: number };
  const cfg = validateDisyreConfig(meta.config);
  const bytes = readFileSync(flatFile);
  if (bytes.byteLength % 4 !== 0) throw new Error(`export-disyre import: ${flatFile} holds ${bytes.byteLength} bytes, not whole float32 values`);
  const weights = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const layout = disyreLayout(cfg);
  if (weights.length !== layout.total) throw new Error(`export-disyre import: ${flatFile} holds ${weights.length} values, the network has ${layout.total}`);
  if (!weights.every(Number.isFinite)) throw new Error(`export-disyre import: ${flatFile} holds non-finite weights`);
  const record = JSON.parse(readFileSync(recordFile, 'utf8')) as Record<string, unknown>;
  await initEngine({ prefer: 'cpu', log: () => undefined });
  saveFlatModel(outDir, DISYRE_NAME, { kind: DISYRE_KIND, config: cfg, layout, weights, extra: { training: record } });
  log(`wrote ${outDir}/${DISYRE_NAME}.json/.bin`);
}

