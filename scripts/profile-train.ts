/**
 * Where a training step's time goes on ONNX Runtime: builds one network's gradient graph as the
 * trainer does (../src/train/onnx-runner.ts), runs it with ONNX Runtime's profiler on random inputs
 * of the compact brain preset, and prints the kernel time per operator type and the slowest nodes
 * (median over the profiled steps, the first run excluded).
 *   npx tsc -p tsconfig.json && node dist/scripts/profile-train.js --net vqvae|prior [--steps 4] [--threads 1] [--batch N] [--im2col-min PIXELS] [--height-shifts gather|conv] [--top 25] [--save-optimized FILE.onnx] [--kernels]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { convVjpOptions } from '../src/onnx/autodiff/vjp.js';
import { encodeModel } from '../src/onnx/onnx-proto.js';
import type { NativeTensor } from '../src/onnx/native-session.js';
import { requireOnnxRuntime, type OrtTensor } from '../src/onnx/runtime.js';
import { benchModel, randomTrainBatch, type BenchNet } from '../src/train/bench-train.js';
import { flattenParams, initModel, paramLayout } from '../src/train/loop-worker.js';
import { disposeParams } from '../src/models/params.js';
import { dropoutMasks } from '../src/train/onnx-dropout.js';
import { onnxNetFor } from '../src/train/onnx-nets.js';
import { customKernels, gradientModel, weightFeedsOf } from '../src/train/onnx-runner.js';

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string; input_type_shape?: Record<string, number[]>[]; output_type_shape?: Record<string, number[]>[] };
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

async function main(): Promise<void> {
  const net = arg('net', 'vqvae') as BenchNet;
  const steps = Number(arg('steps', '4'));
  const threads = Number(arg('threads', '1'));
  const top = Number(arg('top', '25'));
  const ort = await requireOnnxRuntime();
  convVjpOptions.im2colMinOutputPixels = Number(arg('im2col-min', String(convVjpOptions.im2colMinOutputPixels)));
  convVjpOptions.heightShifts = arg('height-shifts', convVjpOptions.heightShifts) as typeof convVjpOptions.heightShifts;
  const { model, batch: presetBatch } = benchModel(net, 'compact');
  const count = Number(arg('batch', String(presetBatch)));
  const onnx = onnxNetFor(model);
  const layout = paramLayout(model);
  const params = initModel(model, 1);
  const weights = flattenParams(params, layout);
  disposeParams(params);
  const batch = randomTrainBatch(model, count);
  const data = onnx.feeds(ort, batch);
  const extra = onnx.trainFeeds?.(ort, batch, 1) ?? { feeds: {}, shapes: {} };
  // --kernels: the gradient graph with the project's custom kernels, on its own binding (src/onnx/native-session.ts).
  const custom = process.argv.includes('--kernels') ? customKernels() : null;
  if (process.argv.includes('--kernels') && custom === null) throw new Error('profile-train --kernels: the custom kernels do not load here (sh native/ort-kernels/build.sh)');
  const withGrads = await gradientModel(ort, onnx, count, { ...data.shapes, ...extra.shapes }, { customOperators: custom !== null });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moodlsr-profile-'));
  const nativeSession = custom?.createSession(encodeModel(withGrads.model), withGrads.model.graph.outputs.map((o) => o.name), threads, path.join(dir, 'step'));
  const session = nativeSession !== undefined ? null : await ort.InferenceSession.create(encodeModel(withGrads.model), {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    enableProfiling: true,
    profileFilePrefix: path.join(dir, 'step'),
    extra: { session: { intra_op: { allow_spinning: '0' } } },
    ...(arg('save-optimized', '') !== '' ? { optimizedModelFilePath: arg('save-optimized', '') } : {}),
  });
  const feeds: Record<string, OrtTensor> = { ...data.feeds, ...extra.feeds };
  const p0 = performance.now();
  Object.assign(feeds, weightFeedsOf(ort, withGrads, weights));
  const preludeMs = performance.now() - p0;
  const masks = dropoutMasks(onnx.train.dropout, count, onnx.dropoutRate, 1);
  for (const site of onnx.train.dropout) feeds[site.input] = new ort.Tensor('float32', masks.get(site.input)!, [count, ...site.shape]);
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i <= steps; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    if (nativeSession !== undefined) await nativeSession.run(feeds as unknown as Record<string, NativeTensor>);
    else await session!.run(feeds);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
    wall.push(performance.now() - t0);
  }
  if (nativeSession !== undefined) {
    nativeSession.endProfiling();
    await nativeSession.release();
  } else {
    session!.endProfiling();
    await session!.release();
  }
  const written = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
  if (written.length !== 1) throw new Error(`profile-train: expected one profile in ${dir}, found ${written.length}`);
  const events = JSON.parse(fs.readFileSync(path.join(dir, written[0]!), 'utf8')) as ProfileEvent[];
  const runs = events.filter((ev) => ev.cat === 'Session' && ev.name === 'model_run');
  const kernels = events.filter((ev) => ev.cat === 'Node' && ev.name.endsWith('_kernel_time'));
  const perRun = kernels.length / runs.length;
  const measured = kernels.slice(perRun); // drop the first run
  const byOp = new Map<string, number>();
  const byNode = new Map<string, { op: string; us: number; shapes: string }>();
  for (const ev of measured) {
    const op = ev.args?.op_name ?? '?';
    byOp.set(op, (byOp.get(op) ?? 0) + ev.dur / steps);
    const node = ev.name.replace(/_kernel_time$/, '');
    const dims = (list: Record<string, number[]>[] | undefined) => (list ?? []).map((t) => `[${Object.values(t)[0]?.join('×') ?? ''}]`).join(' ');
    const cur = byNode.get(node) ?? { op, us: 0, shapes: `${dims(ev.args?.input_type_shape)} → ${dims(ev.args?.output_type_shape)}` };
    cur.us += ev.dur / steps;
    byNode.set(node, cur);
  }
  const total = [...byOp.values()].reduce((a, b) => a + b, 0);
  const phase = new Map<string, number>();
  for (const [node, { op, us }] of byNode) {
    const key = `${node.startsWith('grad/') ? 'backward' : 'forward '} ${op}`;
    phase.set(key, (phase.get(key) ?? 0) + us);
  }
  const sortedWall = wall.slice(1).sort((a, b) => a - b);
  console.log(`${net} batch ${count}, ${threads} thread(s), ${perRun} kernels per run; wall median ${sortedWall[Math.floor(sortedWall.length / 2)]!.toFixed(0)} ms (min ${sortedWall[0]!.toFixed(0)}), cpu median ${cpu.slice(1).sort((a, b) => a - b)[Math.floor((cpu.length - 1) / 2)]!.toFixed(0)} ms, kernels ${(total / 1000).toFixed(0)} ms, host prelude ${withGrads.prelude === null ? 'none' : `${withGrads.prelude.nodes.length} nodes, ${preludeMs.toFixed(1)} ms once`}, load ${os.loadavg()[0]!.toFixed(2)}`);
  for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1])) console.log(`  ${op.padEnd(24)} ${(us / 1000).toFixed(1).padStart(8)} ms ${((100 * us) / total).toFixed(1).padStart(5)} %`);
  console.log('by phase (backward = nodes the autodiff appended):');
  for (const [key, us] of [...phase].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${key.padEnd(34)} ${(us / 1000).toFixed(1).padStart(8)} ms`);
  console.log('slowest nodes:');
  for (const [node, { op, us, shapes }] of [...byNode].sort((a, b) => b[1].us - a[1].us).slice(0, top)) console.log(`  ${(us / 1000).toFixed(1).padStart(8)} ms  ${op.padEnd(20)} ${node}  ${shapes}`);
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
