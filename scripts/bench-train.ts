/**
 * Training throughput (samples per second) of the VQ-VAE and the prior, compact and reference
 * presets (brain), on wasm in this thread, on wasm data-parallel over 2 worker threads (what
 * `moodlsr train` uses), and in PyTorch CPU (scripts/bench_train_torch.py, the same architecture,
 * 2 threads), measured in one run. A step is what the trainer does: forward, backward, gradient
 * value clip at 1, Adam.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/bench-train.js [--quick | --reference] [--steps N] [--no-torch | --torch-only]
 *
 * --quick: compact presets only; --reference: reference presets only. Prints a markdown table; medians of N steps (default 3) after one
 * warm-up step. Random inputs (throughput does not depend on the values). --torch-only: PyTorch alone, one
 * JSON line per network in `moodlsr bench train --json`'s fields (scripts/bench-train-engines.sh).
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { pixelsnailPreset, vqvaePreset, type PixelSnailConfig, type VqvaeConfig } from '../src/models/config.js';
import { disposeParams } from '../src/models/params.js';
import { createTrainingEngine } from '../src/train/engine.js';
import { adamStep, DEFAULT_ADAM } from '../src/train/loop.js';
import { flattenParams, initModel, paramLayout, type ModelSpec, type TrainBatch } from '../src/train/loop-worker.js';

interface Job {
  name: string;
  preset: 'compact' | 'reference';
  model: ModelSpec;
  batch: number;
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const referenceOnly = args.includes('--reference');
const withTorch = !args.includes('--no-torch');
const torchOnly = args.includes('--torch-only');
const stepsArg = args.indexOf('--steps');
const steps = stepsArg >= 0 ? Number(args[stepsArg + 1]) : 3;

function jobs(): Job[] {
  const list: Job[] = [];
  const vq = (preset: 'compact' | 'reference', batch: number): void => {
    const config: VqvaeConfig = vqvaePreset(preset, 'brain');
    list.push({ name: `VQ-VAE ${preset} brain (${config.inputSize}²)`, preset, model: { kind: 'vqvae', config }, batch });
  };
  const prior = (preset: 'compact' | 'reference', batch: number): void => {
    const config: PixelSnailConfig = pixelsnailPreset(preset, 'brain');
    list.push({ name: `PixelSNAIL ${preset} brain (${config.height}×${config.width})`, preset, model: { kind: 'pixelsnail', config }, batch });
  };
  if (!referenceOnly) {
    vq('compact', 8);
    prior('compact', 32);
  }
  if (!quick) {
    vq('reference', 4);
    prior('reference', 8);
  }
  return list;
}

function randomBatch(model: ModelSpec, count: number): TrainBatch {
  const rng = createRng(1);
  const positions = Float32Array.from({ length: count }, (_, i) => -0.5 + i / count);
  if (model.kind === 'vqvae' || model.kind === 'vae') {
    const size = model.config.inputSize;
    return { kind: 'images', images: Float32Array.from({ length: count * size * size }, () => rng.normal()), positions, count, size };
  }
  const { height, width, codebookSize } = model.config;
  const codes = Int32Array.from({ length: count * height * width }, () => rng.int(codebookSize));
  return { kind: 'codes', codes, positions, count, height, width };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timeWasm(job: Job, workers: number): Promise<number> {
  const layout = paramLayout(job.model);
  const params = initModel(job.model, 1);
  const weights = flattenParams(params, layout);
  disposeParams(params);
  const m = new Float32Array(layout.total);
  const v = new Float32Array(layout.total);
  const engine = await createTrainingEngine(job.model, { workers, backend: 'wasm' });
  const batch = randomBatch(job.model, job.batch);
  const times: number[] = [];
  try {
    for (let i = 0; i <= steps; i++) {
      const t0 = performance.now();
      const { grads } = await engine.gradients(weights, i + 1, batch, i);
      adamStep(weights, grads, m, v, i + 1, DEFAULT_ADAM, 1);
      if (i > 0) times.push((performance.now() - t0) / 1000);
    }
  } finally {
    await engine.close();
  }
  return median(times);
}

function timeTorch(list: Job[]): Map<string, number> {
  const spec = {
    threads: 2,
    jobs: list.map((j) => ({ name: j.name, kind: j.model.kind, config: j.model.config, batch: j.batch, steps, warmup: 1 })),
  };
  const run = spawnSync('/usr/bin/python3', [new URL('../../scripts/bench_train_torch.py', import.meta.url).pathname, JSON.stringify(spec)], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (run.status !== 0) throw new Error(`PyTorch benchmark failed: ${run.stderr}`);
  const out = new Map<string, number>();
  for (const line of run.stdout.trim().split('\n')) {
    const r = JSON.parse(line) as { name?: string; secondsPerStep?: number; torch?: string };
    if (r.torch !== undefined) process.stderr.write(`PyTorch ${r.torch}\n`);
    if (r.name !== undefined) out.set(r.name, r.secondsPerStep!);
  }
  return out;
}

function torchJsonLines(): void {
  const list = jobs();
  const load0 = os.loadavg()[0]!;
  const torch = timeTorch(list);
  for (const job of list) {
    const s = torch.get(job.name);
    if (s === undefined) continue;
    const net = job.model.kind === 'vqvae' ? 'vqvae' : 'prior';
    const unit = job.model.kind === 'vqvae' ? 'slices' : 'maps';
    process.stdout.write(
      JSON.stringify({ net, engine: 'pytorch', preset: job.preset, batch: job.batch, steps, unit, seconds_per_step: s, items_per_second: job.batch / s, threads: 2, load_start: load0, load_end: os.loadavg()[0]! }) + '\n',
    );
  }
}

async function main(): Promise<void> {
  if (torchOnly) return torchJsonLines();
  const info = await initEngine({ prefer: 'wasm' });
  if (info.backend !== 'wasm') throw new Error('this benchmark needs the wasm backend');
  const load0 = os.loadavg()[0]!;
  const list = jobs();
  const rows: string[] = [];
  const results: { job: Job; one: number; two: number }[] = [];
  for (const job of list) {
    const one = await timeWasm(job, 0);
    const two = await timeWasm(job, Math.min(2, os.availableParallelism()));
    process.stderr.write(`${job.name}: wasm ${one.toFixed(2)} s/step, 2 workers ${two.toFixed(2)} s/step\n`);
    results.push({ job, one, two });
  }
  const torch = withTorch ? timeTorch(list) : new Map<string, number>();
  const load1 = os.loadavg()[0]!;
  rows.push('| model (batch) | wasm 1 thread | wasm 2 workers (trainer) | PyTorch CPU 2 threads | PyTorch / wasm 2 workers |');
  rows.push('|---|---|---|---|---|');
  const rate = (batch: number, s: number): string => `${(batch / s).toFixed(2)} samples/s (${s.toFixed(2)} s/step)`;
  for (const { job, one, two } of results) {
    const t = torch.get(job.name);
    rows.push(
      `| ${job.name} (${job.batch}) | ${rate(job.batch, one)} | ${rate(job.batch, two)} | ${t === undefined ? '-' : rate(job.batch, t)} | ${t === undefined ? '-' : (two / t).toFixed(2) + '×'} |`,
    );
  }
  process.stdout.write(`Node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'}, nproc ${os.availableParallelism()}, 1-min load ${load0.toFixed(1)} at start, ${load1.toFixed(1)} at end; medians of ${steps} steps after a warm-up.\n\n`);
  process.stdout.write(rows.join('\n') + '\n');
}

await main();
