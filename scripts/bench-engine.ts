/**
 * Engine benchmark (not a test): wasm conv throughput, training-kernel speed, worker-pool speed-up.
 * Build and run:  npx tsc -p tsconfig.json && node dist/scripts/bench-engine.js [--no-write]
 * Writes the section "## Engine (wasm) throughput" of docs/benchmarks.md (other sections kept).
 */
import { execSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import * as tfWasm from '@tensorflow/tfjs-backend-wasm';
import { initEngine, wasmBinaryDirectory } from '../src/engine/backend.js';
import { buildConvStack, forwardConvStack, type ConvStackConfig, type ConvStackResult, type ConvStackTask } from '../src/engine/conv-stack-job.js';
import { createInferencePool } from '../src/engine/pool.js';
import { createRng } from '../src/engine/random.js';

const SECTION = '## Engine (wasm) throughput';
const RUNS = 5;

interface ConvLayerSpec {
  size: number;
  hw: number;
  cin: number;
  cout: number;
  stride: number;
  batch: number;
}

const layerSet: ConvLayerSpec[] = [
  { size: 3, hw: 160, cin: 16, cout: 16, stride: 1, batch: 8 },
  { size: 5, hw: 160, cin: 16, cout: 32, stride: 2, batch: 8 },
  { size: 3, hw: 80, cin: 32, cout: 32, stride: 1, batch: 8 },
  { size: 5, hw: 80, cin: 32, cout: 64, stride: 2, batch: 8 },
  { size: 3, hw: 80, cin: 64, cout: 64, stride: 1, batch: 8 },
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Median seconds of `runs` timed calls after one warm-up; `body` returns tensors to read back and dispose. */
function timeTensors(body: () => tf.Tensor | tf.Tensor[], runs = RUNS): number {
  const once = (): number => {
    const start = performance.now();
    const out = body();
    const outs = Array.isArray(out) ? out : [out];
    for (const t of outs) t.dataSync();
    tf.dispose(outs);
    return (performance.now() - start) / 1000;
  };
  once();
  return median(Array.from({ length: runs }, once));
}

function randomTensor(shape: number[], seed: number): tf.Tensor {
  const rng = createRng(seed);
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.normal()), shape);
}

function convFlops(l: ConvLayerSpec): number {
  const out = Math.ceil(l.hw / l.stride);
  return 2 * out * out * l.size * l.size * l.cin * l.cout * l.batch;
}

const label = (l: ConvLayerSpec): string => `${l.size}×${l.size}/s${l.stride}, ${l.hw}², ${l.cin}→${l.cout}, batch ${l.batch}`;
const gflops = (flops: number, seconds: number): string => (flops / seconds / 1e9).toFixed(1);

async function stockBackpropInputRate(): Promise<string> {
  // Before initEngine installs the replacement kernels: the stock wasm Conv2DBackpropInput.
  tfWasm.setWasmPaths(wasmBinaryDirectory());
  await tf.setBackend('wasm');
  const l = layerSet[2];
  const dy = randomTensor([l.batch, l.hw, l.hw, l.cout], 1) as tf.Tensor4D;
  const w = randomTensor([l.size, l.size, l.cin, l.cout], 2) as tf.Tensor4D;
  const seconds = timeTensors(() => tf.conv2dTranspose(dy, w, [l.batch, l.hw, l.hw, l.cin], l.stride, 'same'), 3);
  tf.dispose([dy, w]);
  return gflops(convFlops(l), seconds);
}

function convRows(): string[] {
  const rows: string[] = [];
  for (const l of layerSet) {
    const x = randomTensor([l.batch, l.hw, l.hw, l.cin], 3) as tf.Tensor4D;
    const w = randomTensor([l.size, l.size, l.cin, l.cout], 4) as tf.Tensor4D;
    const out = Math.ceil(l.hw / l.stride);
    const dy = randomTensor([l.batch, out, out, l.cout], 5) as tf.Tensor4D;
    const flops = convFlops(l);
    const forward = timeTensors(() => tf.conv2d(x, w, l.stride, 'same'));
    const inputGrad = timeTensors(() => tf.conv2dTranspose(dy, w, x.shape, l.stride, 'same'));
    const gradFn = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, l.stride, 'same'));
    const bothGrads = timeTensors(() => gradFn([x, w], dy));
    rows.push(`| ${label(l)} | ${(flops / 1e9).toFixed(2)} | ${gflops(flops, forward)} | ${gflops(flops, inputGrad)} | ${gflops(2 * flops, bothGrads)} |`);
    tf.dispose([x, w, dy]);
  }
  return rows;
}

const stackConfig: ConvStackConfig = { seed: 1, inputChannels: 2, channels: [16, 32, 32, 64, 64] };

function stackFlops(batch: number, hw: number): number {
  let flops = 0;
  let size = hw;
  let cin = stackConfig.inputChannels;
  stackConfig.channels.forEach((cout, i) => {
    const stride = i % 2 === 0 ? 1 : 2;
    const k = stride === 1 ? 3 : 5;
    size = Math.ceil(size / stride);
    flops += 2 * size * size * k * k * cin * cout * batch;
    cin = cout;
  });
  return flops;
}

async function poolRows(totalSlices: number, perTask: number, hw: number): Promise<{ rows: string[]; ratio: number }> {
  const rng = createRng(7);
  const makeTasks = (): ConvStackTask[] =>
    Array.from({ length: totalSlices / perTask }, () => ({
      data: Float32Array.from({ length: perTask * hw * hw * 2 }, () => rng.normal()),
      shape: [perTask, hw, hw, 2] as [number, number, number, number],
    }));
  const flops = stackFlops(totalSlices, hw);
  const jobModule = new URL('../src/engine/conv-stack-job.js', import.meta.url);
  const results: Record<number, number> = {};
  for (const workers of [1, 2]) {
    const pool = await createInferencePool<ConvStackConfig, ConvStackTask, ConvStackResult>({ jobModule, initArg: stackConfig, workers });
    await pool.runAll(makeTasks()); // warm-up
    const times: number[] = [];
    for (let r = 0; r < 3; r++) {
      const tasks = makeTasks();
      const start = performance.now();
      await pool.runAll(tasks);
      times.push((performance.now() - start) / 1000);
    }
    await pool.close();
    results[workers] = median(times);
  }
  const ratio = results[1] / results[2];
  return {
    ratio,
    rows: [1, 2].map((w) => `| ${w} | ${results[w].toFixed(2)} | ${gflops(flops, results[w])} | ${w === 1 ? '1.00' : ratio.toFixed(2)} |`),
  };
}

function cpuRow(): string {
  const l: ConvLayerSpec = { size: 3, hw: 40, cin: 16, cout: 16, stride: 1, batch: 2 };
  const x = randomTensor([l.batch, l.hw, l.hw, l.cin], 8) as tf.Tensor4D;
  const w = randomTensor([l.size, l.size, l.cin, l.cout], 9) as tf.Tensor4D;
  const seconds = timeTensors(() => tf.conv2d(x, w, 1, 'same'), 3);
  tf.dispose([x, w]);
  return `cpu backend (pure JS), conv ${label(l)}: ${gflops(convFlops(l), seconds)} GFLOP/s forward.`;
}

function machine(): string {
  const cpuModel = (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const nproc = execSync('nproc').toString().trim();
  return `nproc ${nproc}, ${cpuModel.trim()}, Node ${process.version}, tfjs ${tf.version.tfjs}`;
}

function writeSection(file: string, section: string): void {
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const start = existing.indexOf(SECTION);
  let updated: string;
  if (start < 0) {
    updated = `${existing.trimEnd()}\n\n${section}`;
  } else {
    const next = existing.indexOf('\n## ', start + SECTION.length);
    updated = existing.slice(0, start) + section + (next < 0 ? '' : `\n${existing.slice(next + 1)}`);
  }
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, updated.endsWith('\n') ? updated : `${updated}\n`);
  renameSync(temp, file);
}

async function main(): Promise<void> {
  const write = !process.argv.includes('--no-write');
  const loadBefore = os.loadavg()[0].toFixed(1);
  const stockRate = await stockBackpropInputRate();
  const engine = await initEngine({ prefer: 'wasm' });
  const conv = convRows();

  const layers = buildConvStack(stackConfig);
  const stackInput = randomTensor([8, 160, 160, 2], 6) as tf.Tensor4D;
  const stackSeconds = timeTensors(() => forwardConvStack(layers, stackInput));
  const stackLine = `Encoder-like stack (3×3 2→16, 5×5/s2 16→32, 3×3 32→32, 5×5/s2 32→64, 3×3 64→64, bias + elu), batch 8 × 160²: ` +
    `${(stackFlops(8, 160) / 1e9).toFixed(1)} GFLOP, median ${stackSeconds.toFixed(2)} s = ${gflops(stackFlops(8, 160), stackSeconds)} GFLOP/s.`;
  tf.dispose([stackInput, ...layers.flatMap((l) => [l.filter, l.bias])]);

  const pool = await poolRows(64, 8, 160);
  await tf.setBackend('cpu');
  const cpu = cpuRow();

  const load = `1-min load average ${loadBefore} at start, ${os.loadavg()[0].toFixed(1)} at end (other processes share the cores; ` +
    `a load above ${os.availableParallelism()} means the numbers below understate the machine)`;
  const section = [
    SECTION,
    '',
    `Command: \`npx tsc -p tsconfig.json && node dist/scripts/bench-engine.js\` — ${new Date().toISOString().slice(0, 10)}.`,
    `Machine: ${machine()}. Backend: ${engine.reason}. ${load}.`,
    `FLOPs = 2·H_out·W_out·K_h·K_w·C_in·C_out·B; medians of ${RUNS} runs after a warm-up.`,
    '',
    '| conv layer (NHWC, pad same) | GFLOP | forward GFLOP/s | input grad / conv2dTranspose GFLOP/s | input+filter grads GFLOP/s |',
    '|---|---|---|---|---|',
    ...conv,
    '',
    `Input gradients and conv2dTranspose run through the replacement \`Conv2DBackpropInput\` kernel of ` +
      `src/engine/gradients.ts; the stock wasm kernel did ${stockRate} GFLOP/s on the 3×3 80² 32→32 layer in the same run.`,
    '',
    stackLine,
    '',
    'Worker pool: 64 slices of 160²×2 through that stack, 8 tasks of 8 slices, wasm in each worker thread (median of 3):',
    '',
    '| workers | seconds | GFLOP/s | speed-up |',
    '|---|---|---|---|',
    ...pool.rows,
    '',
    cpu,
    '',
  ].join('\n');
  process.stdout.write(`${section}\n`);
  if (write) {
    const file = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'benchmarks.md');
    writeSection(file, section);
    process.stdout.write(`wrote ${path.resolve(file)}\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
