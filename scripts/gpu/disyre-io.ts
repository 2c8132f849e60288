/**
 * What the GPU trainer (scripts/gpu/train_disyre.py) needs to train the DISYRE U-Net outside Node, and
 * the way back (CLI: ./export-disyre.ts):
 * - export: train.onnx (the ONNX Runtime engine's training graph, parameters as inputs),
 *   bindings.json + bindings.bin (each parameter input's index map into the flat weights and its
 *   constants: src/onnx/autodiff/trainable.ts), start.f32 (flat start weights), meta.json (config,
 *   layout, the start's label), check.* (a batch, ONNX Runtime's outputs and the flat gradient: ./net-io.ts);
 * - import: flat weights → DIR/disyre.json/.bin, the format the CPU trainer saves.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { saveFlatModel } from '../../src/train/checkpoint.js';
import { initEngine } from '../../src/engine/backend.js';
import { disyreOnnxNet } from '../../src/train/onnx-nets.js';
import { DISYRE_KIND, DISYRE_NAME, validateDisyreConfig, type DisyreConfig } from '../../src/methods/disyre/config.js';
import { disyreLayout, disyreStartWeights } from '../../src/methods/disyre/train-engine.js';
import { writeTrainingExport } from './net-io.js';

export async function exportDisyreForGpu(initDir: string, outDir: string, log: (line: string) => void = () => undefined): Promise<void> {
  const cfg = validateDisyreConfig((JSON.parse(readFileSync(path.join(initDir, `${DISYRE_NAME}.json`), 'utf8')) as { config: unknown }).config);
  await initEngine({ prefer: 'cpu', log: () => undefined });
  const start = await disyreStartWeights(initDir, cfg);
  const layout = disyreLayout(cfg);
  const { inputs } = await writeTrainingExport({ train: disyreOnnxNet(cfg).train, layout, weights: start.weights, meta: { kind: DISYRE_KIND, config: cfg, start: start.label }, checkBatch: 3 }, outDir);
  log(`${outDir}: ${inputs} parameter inputs, ${layout.total} parameters, start ${start.label}`);
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

