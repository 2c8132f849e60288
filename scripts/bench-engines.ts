/**
 * Inference engines side by side: TF.js (wasm), ONNX Runtime (CPU) and PyTorch (CPU, Debian's
 * python3-torch) on the LSR networks, and the MOOD scores end to end per 256³ brain volume.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/bench-engines.js [--runs 3] [--volumes 2]
 *       [--engines onnx,tfjs] [--tasks sample,pixel] [--forward-only] [--e2e-only]
 *       [--presets compact,reference] [--onnx-threads N,1] [--torch-threads N,1]
 *       [--weights weights/brain/training/lsr] [--volume-dir data/eval-brain20/toy] [--out FILE.json]
 *
 * Part 1, network throughput: encoder (slice → codes), decoder (codes → image) and prior (codes →
 * logits) per item, for the compact preset (the trained weights) and the reference preset (random
 * init: speed does not depend on the weights), each engine at its production batch size. TF.js runs
 * in-process on one wasm thread (the pixel score runs two such workers); ONNX Runtime and PyTorch
 * with every core (N = available cores) and with one thread. GFLOP/s from src/models/flops.ts.
 *
 * Part 2, end to end (compact, trained weights): sample and pixel scores of real 256³ brain volumes
 * (data/eval-brain20/toy) with each engine, per stage: read, preprocess, encode, prior passes,
 * decode (+ residuals), pooling, resampling, write. TF.js pixel scores run on two wasm workers,
 * ONNX Runtime in-process with intra-op threads on every core (what `predict` does).
 *
 * Every number is the median of --runs runs, printed with the 1-minute load average at its start:
 * the machines this runs on are shared, so compare numbers taken at similar load.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initEngine } from '../src/engine/backend.js';
import { readNifti, writeNifti } from '../src/io/nifti.js';
import {
  disposeParams,
  initPixelSnail,
  initVqvae,
  pixelsnailFlops,
  pixelsnailPreset,
  vqvaeFlops,
  vqvaeLatentSize,
  vqvaePreset,
  type PixelSnailConfig,
  type VqvaeConfig,
} from '../src/models/index.js';
import { createLsrEngine, type EngineName, type LsrEngine } from '../src/methods/lsr/engine.js';
import { createLsrPool, inProcessRunner, pixelScoreStack, readLsrCalibration, type RestorationRunner } from '../src/methods/lsr/model.js';
import { disposeLsrNetworks, loadLsrNetworks, type LsrNetworks } from '../src/methods/lsr/networks.js';
import { stackScoresToVolume } from '../src/score/pixel-score.js';
import { encodeVolume, sampleScoreOfCodes } from '../src/score/sample-score.js';
import { makeVolume } from '../src/volume/volume.js';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const flag = (name: string) => process.argv.includes(`--${name}`);

const load = () => os.loadavg()[0];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const fmt = (s: number) => (s >= 10 ? s.toFixed(1) : s >= 1 ? s.toFixed(2) : s.toFixed(3));

interface Measured {
  seconds: number;
  runs: number[];
  load: number;
}

async function measure(runs: number, fn: () => Promise<void>): Promise<Measured> {
  await fn(); // warm-up: session creation, first-call allocations
  const times: number[] = [];
  const loads: number[] = [];
  for (let i = 0; i < runs; i++) {
    loads.push(load());
    const t = performance.now();
    await fn();
    times.push((performance.now() - t) / 1000);
  }
  return { seconds: median(times), runs: times, load: median(loads) };
}

// ---- part 1: network throughput -------------------------------------------------------------

type Network = 'encoder' | 'decoder' | 'prior';
const NETWORKS: Network[] = ['encoder', 'decoder', 'prior'];

interface ForwardRow {
  preset: string;
  network: Network;
  runtime: string;
  msPerItem: number;
  gflops: number;
  load: number;
}

function itemsFor(preset: string, network: Network): number {
  if (preset === 'compact') return network === 'prior' ? 128 : 32;
  return network === 'prior' ? 32 : 16;
}

function flopsPerItem(vq: VqvaeConfig, prior: PixelSnailConfig, network: Network): number {
  if (network === 'prior') return pixelsnailFlops(prior);
  const f = vqvaeFlops(vq);
  return network === 'encoder' ? f.encoder + f.quantize : f.decoder;
}

async function engineForward(engine: LsrEngine, network: Network, items: number, runs: number): Promise<Measured> {
  const { vqvae, prior } = engine.nets;
  const s = vqvae.cfg.inputSize;
  const latent = vqvaeLatentSize(vqvae.cfg);
  const positions = Float32Array.from({ length: items }, (_, i) => -0.5 + i / items);
  const codes = Int32Array.from({ length: items * latent * latent }, (_, i) => (i * 37 + (i >> 5)) % prior.cfg.codebookSize);
  const images = Float32Array.from({ length: items * s * s }, (_, i) => Math.sin(i * 0.013) + 0.5 * Math.cos(i * 0.0007));
  // Production batch sizes: the engines' own; for the prior, what the restoration uses.
  const fn = async () => {
    if (network === 'encoder') await engine.encodeSlices(images, positions);
    else if (network === 'decoder') {
      for (let a = 0; a < items; a += engine.decodeBatch) {
        const b = Math.min(items, a + engine.decodeBatch);
        await engine.decodeCodeMaps(codes.subarray(a * latent * latent, b * latent * latent), positions.subarray(a, b));
      }
    } else {
      for (let a = 0; a < items; a += engine.priorBatch) {
        const b = Math.min(items, a + engine.priorBatch);
        await engine.priorLogitsFrom(codes.subarray(a * latent * latent, b * latent * latent), positions.subarray(a, b), 0);
      }
    }
  };
  return measure(runs, fn);
}

function torchForward(presets: Array<{ name: string; vq: VqvaeConfig; prior: PixelSnailConfig }>, threads: number, runs: number): ForwardRow[] {
  const jobs = presets.flatMap((p) =>
    NETWORKS.map((network) => ({
      name: `${p.name}/${network}`,
      network,
      vqvae: p.vq,
      prior: p.prior,
      items: itemsFor(p.name, network),
      batch: network === 'prior' ? 64 : 16,
    })),
  );
  const script = fileURLToPath(new URL('../../scripts/bench_infer_torch.py', import.meta.url));
  const run = spawnSync('/usr/bin/python3', [script, JSON.stringify({ threads, runs, jobs })], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (run.status !== 0) {
    console.log(`PyTorch skipped (${(run.stderr || run.error?.message || '').trim().split('\n').at(-1)}); install it with apt-get install -y python3-torch`);
    return [];
  }
  const rows: ForwardRow[] = [];
  for (const line of run.stdout.trim().split('\n').slice(1)) {
    const r = JSON.parse(line) as { name: string; secondsPerItem: number; loadavg: number };
    const [preset, network] = r.name.split('/') as [string, Network];
    const p = presets.find((x) => x.name === preset)!;
    rows.push({ preset, network, runtime: `pytorch ${threads} thr`, msPerItem: 1000 * r.secondsPerItem, gflops: flopsPerItem(p.vq, p.prior, network) / r.secondsPerItem / 1e9, load: r.loadavg });
  }
  return rows;
}

async function forwardPart(weights: string, engines: EngineName[], runs: number, torchThreads: number[], onnxThreads: number[], presetNames: string[]): Promise<ForwardRow[]> {
  const trained = loadLsrNetworks(weights);
  const reference: LsrNetworks = {
    vqvae: { cfg: vqvaePreset('reference', 'brain'), params: initVqvae(vqvaePreset('reference', 'brain'), 1) },
    prior: { cfg: pixelsnailPreset('reference', 'brain'), params: initPixelSnail(pixelsnailPreset('reference', 'brain'), 2) },
  };
  const presets = [
    { name: 'compact', nets: trained },
    { name: 'reference', nets: reference },
  ].filter((p) => presetNames.includes(p.name));
  const rows: ForwardRow[] = [];
  try {
    for (const p of presets) {
      const variants = engines.flatMap((name): Array<{ name: EngineName; threads: number }> =>
        name === 'onnx' ? onnxThreads.map((threads) => ({ name, threads })) : [{ name, threads: 1 }],
      );
      for (const { name, threads } of variants) {
        const engine = await createLsrEngine(name, p.nets, { threads, log: () => undefined });
        try {
          for (const network of NETWORKS) {
            const items = itemsFor(p.name, network);
            const m = await engineForward(engine, network, items, runs);
            const perItem = m.seconds / items;
            const label = name === 'tfjs' ? 'tfjs wasm 1 thr' : `onnx ${threads} thr`;
            rows.push({ preset: p.name, network, runtime: label, msPerItem: 1000 * perItem, gflops: flopsPerItem(p.nets.vqvae.cfg, p.nets.prior.cfg, network) / perItem / 1e9, load: m.load });
            console.log(`forward ${p.name} ${network} ${label}: ${(1000 * perItem).toFixed(2)} ms/item (load ${m.load.toFixed(1)})`);
          }
        } finally {
          await engine.dispose();
        }
      }
    }
    for (const threads of torchThreads) {
      const torchRows = torchForward(presets.map((p) => ({ name: p.name, vq: p.nets.vqvae.cfg, prior: p.nets.prior.cfg })), threads, runs);
      for (const r of torchRows) console.log(`forward ${r.preset} ${r.network} ${r.runtime}: ${r.msPerItem.toFixed(2)} ms/item (load ${r.load.toFixed(1)})`);
      rows.push(...torchRows);
    }
  } finally {
    disposeLsrNetworks(trained);
    disposeParams(reference.vqvae.params);
    disposeParams(reference.prior.params);
  }
  return rows;
}

// ---- part 2: end to end --------------------------------------------------------------------

interface StageRow {
  engine: string;
  task: 'sample' | 'pixel';
  volume: string;
  stages: Record<string, number>;
  total: number;
  load: number;
  mapPasses?: number;
}

async function endToEnd(weights: string, engines: EngineName[], tasks: Array<'sample' | 'pixel'>, volumeFiles: string[], runs: number, onnxThreads: number): Promise<StageRow[]> {
  const calibration = readLsrCalibration(weights);
  const scratch = mkdtempSync(join(tmpdir(), 'moodlsr-bench-engines-'));
  const rows: StageRow[] = [];
  const tf = await initEngine();
  try {
    for (const name of engines) {
      const nets = loadLsrNetworks(weights);
      const engine = await createLsrEngine(name, nets, { tfjsBackend: tf.backend, threads: onnxThreads, log: () => undefined });
      const workers = engine.wantsWorkers ? 2 : 0;
      const pool = workers > 0 ? await createLsrPool(weights, workers) : null;
      const runner: RestorationRunner = pool ? (t) => pool.runAll(t) : inProcessRunner(engine);
      try {
        for (const file of volumeFiles) {
          for (const task of tasks) {
            const samples: StageRow[] = [];
            for (let r = 0; r < runs; r++) {
              const startLoad = load();
              const stages: Record<string, number> = {};
              let t = performance.now();
              const lap = (stage: string) => {
                const now = performance.now();
                stages[stage] = (stages[stage] ?? 0) + (now - t) / 1000;
                t = now;
              };
              const { volume } = await readNifti(file);
              lap('read');
              let mapPasses: number | undefined;
              if (task === 'sample') {
                const encoded = await encodeVolume(engine, volume, calibration.region, calibration.slices);
                stages.preprocess = encoded.preprocessSeconds;
                stages.encode = encoded.encodeSeconds;
                lap('_');
                const score = await sampleScoreOfCodes(engine, encoded, calibration.lambdaS, calibration.sampleCalibration);
                stages.prior = score.priorSeconds;
                lap('_');
                writeFileSync(join(scratch, 'out.txt'), `${score.score}\n`);
                lap('write');
              } else {
                const result = await pixelScoreStack(
                  engine,
                  volume,
                  { region: calibration.region, slices: calibration.slices, copies: calibration.copies, lambdaP: calibration.lambdaP, k: calibration.k, seed: 0, chunks: Math.max(1, 2 * workers) },
                  runner,
                );
                lap('_');
                const tm = result.timings;
                stages.preprocess = tm.preprocess;
                stages.encode = tm.encode;
                // Restoration and decoding interleave on the workers; split the wall time by their CPU shares.
                const cpu = tm.restorePrior + tm.decode + tm.residual;
                const share = (x: number) => (cpu > 0 ? (tm.restoreWall * x) / cpu : 0);
                stages.prior = share(tm.restorePrior);
                stages.decode = share(tm.decode + tm.residual);
                stages.pooling = tm.smooth;
                mapPasses = result.stats.mapPasses;
                t = performance.now();
                const map = stackScoresToVolume(result.smoothed, result.encoded.stack, volume.shape, calibration.pixelScale);
                lap('resampling');
                await writeNifti(join(scratch, 'out.nii.gz'), makeVolume(volume.shape, map, volume.spacing, volume.affine));
                lap('write');
              }
              delete stages._;
              const total = Object.values(stages).reduce((a, b) => a + b, 0);
              samples.push({ engine: name === 'onnx' ? `onnx ${onnxThreads} thr` : 'tfjs wasm 2 workers', task, volume: file, stages, total, load: startLoad, ...(mapPasses !== undefined ? { mapPasses } : {}) });
              console.log(
                `e2e ${name}${name === 'onnx' ? ` ${onnxThreads} thr` : ''} ${task} ${file.split('/').at(-1)} run ${r + 1}: ${fmt(total)} s (load ${startLoad.toFixed(1)}): ` +
                  Object.entries(stages)
                    .map(([k, v]) => `${k} ${fmt(v)}`)
                    .join(', ') +
                  (mapPasses !== undefined ? `; ${mapPasses} prior map passes` : ''),
              );
            }
            const byTotal = [...samples].sort((a, b) => a.total - b.total);
            rows.push(byTotal[byTotal.length >> 1]);
          }
        }
      } finally {
        await pool?.close();
        await engine.dispose();
        disposeLsrNetworks(nets);
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return rows;
}

// ---- report -------------------------------------------------------------------------------------

function forwardTable(rows: ForwardRow[]): string {
  const lines = ['| preset | network | runtime | ms / item | GFLOP/s | load | vs ONNX Runtime |', '|---|---|---|---:|---:|---:|---:|'];
  for (const r of rows) {
    const onnx = rows.find((x) => x.preset === r.preset && x.network === r.network && x.runtime === `onnx ${os.availableParallelism()} thr`) ?? rows.find((x) => x.preset === r.preset && x.network === r.network && x.runtime.startsWith('onnx'));
    const ratio = onnx ? `${(r.msPerItem / onnx.msPerItem).toFixed(1)}×` : '';
    lines.push(`| ${r.preset} | ${r.network} | ${r.runtime} | ${r.msPerItem.toFixed(2)} | ${r.gflops.toFixed(1)} | ${r.load.toFixed(1)} | ${ratio} |`);
  }
  return lines.join('\n');
}

function stageTable(rows: StageRow[]): string {
  const stages = ['read', 'preprocess', 'encode', 'prior', 'decode', 'pooling', 'resampling', 'write'];
  const lines = [`| engine | task | volume | ${stages.join(' | ')} | total s | load | prior map passes |`, `|---|---|---|${stages.map(() => '---:').join('|')}|---:|---:|---:|`];
  for (const r of rows) {
    lines.push(
      `| ${r.engine} | ${r.task} | ${r.volume.split('/').at(-1)} | ${stages.map((s) => (r.stages[s] === undefined ? '' : fmt(r.stages[s]))).join(' | ')} | ${fmt(r.total)} | ${r.load.toFixed(1)} | ${r.mapPasses ?? ''} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const runs = Number(option('runs', '3'));
  const weights = option('weights', 'weights/brain/training/lsr');
  const engines = option('engines', 'onnx,tfjs').split(',') as EngineName[];
  const tasks = option('tasks', 'sample,pixel').split(',') as Array<'sample' | 'pixel'>;
  const cores = String(os.availableParallelism());
  const torchThreads = option('torch-threads', `${cores},1`).split(',').filter(Boolean).map(Number);
  const onnxThreads = option('onnx-threads', `${cores},1`).split(',').filter(Boolean).map(Number);
  const presetNames = option('presets', 'compact,reference').split(',');
  const dir = option('volume-dir', 'data/eval-brain20/toy');
  const volumes = readdirSync(dir)
    .filter((f) => f.endsWith('.nii.gz'))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    .slice(0, Number(option('volumes', '2')))
    .map((f) => join(dir, f));
  await initEngine({ prefer: 'wasm', log: () => undefined });
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`${new Date().toISOString()}: ${os.availableParallelism()} cores (${cpu}), node ${process.version}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' / ')}`);
  const report: { machine: string; forward?: ForwardRow[]; endToEnd?: StageRow[] } = { machine: `${os.availableParallelism()} × ${cpu}` };
  if (!flag('e2e-only')) {
    report.forward = await forwardPart(weights, engines, runs, torchThreads, onnxThreads, presetNames);
    console.log(`\nNetwork throughput (median of ${runs} runs)\n\n${forwardTable(report.forward)}\n`);
  }
  if (!flag('forward-only')) {
    report.endToEnd = await endToEnd(weights, engines, tasks, volumes, runs, onnxThreads[0]);
    console.log(`\nEnd to end per volume, seconds (median of ${runs} runs; compact, ${weights})\n\n${stageTable(report.endToEnd)}\n`);
  }
  const out = option('out', '');
  if (out) writeFileSync(out, `${JSON.stringify(report, null, 1)}\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
