import type { Command } from 'commander';
import { parseInteger, stderrLog } from './common.js';

/** `moodlsr bench train`: training throughput of one network on one engine. */
export function registerBench(program: Command): void {
  const bench = program.command('bench').description('measure throughput');
  bench
    .command('train')
    .description('training steps per second of a brain preset network on one engine (random inputs; median after a warm-up step)')
    .requiredOption('--net <n>', 'vqvae, prior, transformer or vae')
    .option('--engine <e>', 'onnx (ONNX Runtime) or tfjs (wasm, data-parallel workers)', 'onnx')
    .option('--steps <n>', 'timed steps after one warm-up step', parseInteger('--steps', 1), 5)
    .option('--preset <p>', 'compact or reference', 'compact')
    .option('--batch <n>', 'samples per step (default: the trainer\'s)', parseInteger('--batch', 1))
    .option('--threads <n>', 'ONNX Runtime intra-op threads per session (default: every core / --sessions)', parseInteger('--threads', 1))
    .option('--sessions <n>', 'ONNX Runtime sessions a step\'s batch is split over, one worker thread each (default: as the trainers, 2 on 2 cores; 1 = this thread)', parseInteger('--sessions', 1))
    .option('--workers <n>', 'TF.js wasm worker threads (default 2; 0 = this thread)', parseInteger('--workers', 0))
    .option('--json', 'print one JSON object on the last line')
    .action(async (flags: { net: string; engine: string; steps: number; preset: string; batch?: number; threads?: number; sessions?: number; workers?: number; json?: boolean }) => {
      const { BENCH_NETS, benchTrain } = await import('../train/bench-train.js');
      const net = BENCH_NETS.find((n) => n === flags.net);
      if (net === undefined) throw new Error(`--net must be one of ${BENCH_NETS.join(', ')}, got "${flags.net}"`);
      if (flags.engine !== 'onnx' && flags.engine !== 'tfjs') throw new Error(`--engine must be onnx or tfjs, got "${flags.engine}"`);
      if (flags.preset !== 'compact' && flags.preset !== 'reference') throw new Error(`--preset must be compact or reference, got "${flags.preset}"`);
      const log = stderrLog('bench train: ');
      const r = await benchTrain({
        net,
        engine: flags.engine,
        steps: flags.steps,
        preset: flags.preset,
        log,
        ...(flags.batch !== undefined ? { batch: flags.batch } : {}),
        ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
        ...(flags.sessions !== undefined ? { sessions: flags.sessions } : {}),
        ...(flags.workers !== undefined ? { workers: flags.workers } : {}),
      });
      const where = r.engine === 'onnx' ? `ONNX Runtime, ${r.sessions} session${r.sessions === 1 ? '' : 's'} × ${r.threads} threads` : `TF.js wasm, ${r.workers} workers`;
      process.stdout.write(
        `${r.net} ${r.preset} brain, batch ${r.batch}, ${where}: ${r.items_per_second.toFixed(2)} ${r.unit}/s (${r.seconds_per_step.toFixed(3)} s/step, median of ${r.steps}; 1-min load ${r.load_start.toFixed(1)} → ${r.load_end.toFixed(1)})\n`,
      );
      if (flags.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    });
}
