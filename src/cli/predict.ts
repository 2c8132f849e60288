import type { Command } from 'commander';
import { parseShard } from '../mood/cases.js';
import { describeScoreTasks, methodWeightsDir, REGISTRY, requireScoreFor, type Method } from '../methods/index.js';
import type { MoodRegion, MoodTask } from '../mood/predictor.js';
import { runPrediction } from '../mood/run.js';
import { ENGINE_HELP, parseEngineChoice } from '../inference/engine-choice.js';
import { parseInteger, stderrLog } from './common.js';

/** "lsr/, vae/, lsgs/": the shipped sub-folders of the registered methods. */
function shippedFolders(registry: readonly Method[]): string {
  return registry.filter((m) => m.shippedSubfolder !== '').map((m) => `${m.shippedSubfolder}/`).join(', ');
}

interface PredictCliOptions {
  task: MoodTask;
  region: MoodRegion;
  input: string;
  output: string;
  weights?: string;
  method: string;
  seed: number;
  shard?: string;
  dtype: 'float32' | 'uint16';
  engine: string;
}

export function registerPredict(program: Command, registry: readonly Method[] = REGISTRY): void {
  program
    .command('predict')
    .description('score every NIfTI case of a folder: OUT/F.txt (sample) or OUT/F (pixel), the MOOD contract')
    .requiredOption('--task <task>', 'sample or pixel')
    .requiredOption('--region <region>', 'brain or abdom')
    .requiredOption('-i, --input <dir>', 'folder of input cases (*.nii, *.nii.gz)')
    .requiredOption('-o, --output <dir>', 'output folder (created if missing)')
    .option('--weights <dir>', `weights folder (default: the shipped weights of the region and method: weights/REGION, or its ${shippedFolders(registry)} sub-folder)`)
    .option('--method <name>', `scoring method and the tasks it scores: ${describeScoreTasks(registry)}`, 'zscore')
    .option('--seed <s>', 'seed of every random draw', parseInteger('--seed'), 0)
    .option('--shard <K/N>', 'process only the K-th of N disjoint parts of the sorted case list')
    .option('--dtype <dtype>', 'pixel maps as float32 or uint16 (scale 1/65535)', 'float32')
    .option('--engine <name>', ENGINE_HELP, 'auto')
    .action(async (opts: PredictCliOptions) => {
      if (opts.task !== 'sample' && opts.task !== 'pixel') throw new Error(`--task must be sample or pixel, got "${opts.task}"`);
      if (opts.region !== 'brain' && opts.region !== 'abdom') throw new Error(`--region must be brain or abdom, got "${opts.region}"`);
      if (opts.dtype !== 'float32' && opts.dtype !== 'uint16') throw new Error(`--dtype must be float32 or uint16, got "${opts.dtype}"`);
      // Refused before any model loads: an unknown name, or a task the method does not score.
      const { method, score } = requireScoreFor(opts.method, opts.task, registry);
      const shard = opts.shard ? parseShard(opts.shard) : undefined;
      const engine = parseEngineChoice(opts.engine);
      const weightsDir = opts.weights ?? methodWeightsDir(method, opts.region);
      const predictor = await method.load(weightsDir, { score: score.name, engine });
      try {
        const summary = await runPrediction({
          task: opts.task,
          inDir: opts.input,
          outDir: opts.output,
          predictor,
          seed: opts.seed,
          shard,
          pixelDtype: opts.dtype,
          log: stderrLog('predict: '),
        });
        if (summary.failed.length > 0) process.exitCode = 2;
      } finally {
        await predictor.dispose?.();
      }
    });
}
