import type { Command } from 'commander';
import { parseShard } from '../mood/cases.js';
import { describeScoreTasks, describeSettingKeys, methodWeightsDir, REGISTRY, requireScoreFor, type Method, type MethodScore } from '../methods/index.js';
import type { MoodRegion, MoodTask, Predictor } from '../mood/predictor.js';
import { runPredictions, type PredictionSummary } from '../mood/run.js';
import { parseTaskList, taskOutputDir } from '../mood/tasks.js';
import { checkWeightsFolder, weightsRegion } from '../mood/weights-check.js';
import { atomicWriteFile } from '../io/atomic.js';
import { checkSettingKeys, collectSetting } from '../score/settings.js';
import { ENGINE_HELP, parseEngineChoice, type EngineChoice } from '../inference/engine-choice.js';
import { parseInteger, stderrLog } from './common.js';

/** "lsr/, vae/, lsgs/": the shipped sub-folders of the registered methods. */
function shippedFolders(registry: readonly Method[]): string {
  return registry.filter((m) => m.shippedSubfolder !== '').map((m) => `${m.shippedSubfolder}/`).join(', ');
}

interface PredictCliOptions {
  task: string;
  region: MoodRegion;
  input: string;
  output: string;
  weights?: string;
  method: string;
  seed: number;
  shard?: string;
  dtype: 'float32' | 'uint16';
  engine: string;
  set: Record<string, string>;
  summary?: string;
}

export function registerPredict(program: Command, registry: readonly Method[] = REGISTRY): void {
  program
    .command('predict')
    .description('score every NIfTI case of a folder: OUT/F.txt (sample) or OUT/F (pixel), the MOOD contract; both tasks in one pass: OUT/sample/F.txt and OUT/pixel/F')
    .requiredOption('--task <task>', 'sample or pixel; or sample,pixel (alias both): each case read once and scored for both tasks, into OUT/sample and OUT/pixel')
    .requiredOption('--region <region>', 'brain or abdom')
    .requiredOption('-i, --input <dir>', 'folder of input cases (*.nii, *.nii.gz)')
    .requiredOption('-o, --output <dir>', 'output folder (created if missing)')
    .option('--weights <dir>', `weights folder (default: the shipped weights of the region and method: weights/REGION, or its ${shippedFolders(registry)} sub-folder)`)
    .option('--method <name>', `scoring method and the tasks it scores: ${describeScoreTasks(registry)}`, 'zscore')
    .option('--seed <s>', 'seed of every random draw', parseInteger('--seed'), 0)
    .option('--shard <K/N>', 'process only the K-th of N disjoint parts of the sorted case list')
    .option('--dtype <dtype>', 'pixel maps as float32 or uint16 (scale 1/65535)', 'float32')
    .option('--engine <name>', ENGINE_HELP, 'auto')
    .option('--set <key=value>', `override a scoring option of the method without editing its weights (repeatable); keys: ${describeSettingKeys(registry)}`, collectSetting, {})
    .option('--summary <file>', 'also write a JSON summary: cases written, cases failed with their reasons, seconds (every task of the run)')
    .action(async (opts: PredictCliOptions) => {
      const tasks = parseTaskList(opts.task);
      if (opts.region !== 'brain' && opts.region !== 'abdom') throw new Error(`--region must be brain or abdom, got "${opts.region}"`);
      if (opts.dtype !== 'float32' && opts.dtype !== 'uint16') throw new Error(`--dtype must be float32 or uint16, got "${opts.dtype}"`);
      // Refused before any model loads: an unknown name, or a task the method does not score.
      const scores: TaskScore[] = tasks.map((task) => ({ task, ...requireScoreFor(opts.method, task, registry) }));
      for (const { method } of scores) checkSettingKeys(opts.set, method.settings ?? [], method.id);
      const shard = opts.shard ? parseShard(opts.shard) : undefined;
      const engine = parseEngineChoice(opts.engine);
      const log = stderrLog('predict: ');
      const predictors = await loadTaskPredictors(scores, { ...opts, engine }, log);
      try {
        const targets = scores.map(({ task }) => ({
          task,
          outDir: tasks.length === 1 ? opts.output : taskOutputDir(opts.output, task),
          predictor: predictors.get(task)!,
        }));
        const summaries = await runPredictions({
          targets,
          inDir: opts.input,
          seed: opts.seed,
          shard,
          pixelDtype: opts.dtype,
          log,
          ...(process.stderr.isTTY ? { onCaseStart: (k: number, n: number, name: string) => log(`[${k}/${n}] ${name}: scoring …`) } : {}),
        });
        if (opts.summary) await atomicWriteFile(opts.summary, summaryJson(summaries, opts));
        if (summaries.some((s) => s.failed.length > 0)) process.exitCode = 2;
      } finally {
        for (const predictor of new Set(predictors.values())) await predictor.dispose?.();
      }
    });
}

/** A task of the run and the registered score that computes it. */
interface TaskScore {
  readonly task: MoodTask;
  readonly method: Method;
  readonly score: MethodScore;
}

/**
 * The predictor of every task. Tasks that resolve to the same score share one predictor (one model in
 * memory, and its per-volume work serves both tasks); the weights of every method are checked before
 * any model loads.
 */
async function loadTaskPredictors(
  scores: readonly TaskScore[],
  opts: Pick<PredictCliOptions, 'weights' | 'region' | 'method' | 'set'> & { engine: EngineChoice },
  log: (line: string) => void,
): Promise<Map<MoodTask, Predictor>> {
  const scoreKey = (s: TaskScore): string => `${s.method.id}/${s.score.name}`;
  const weightsOf = (method: Method): string => opts.weights ?? methodWeightsDir(method, opts.region);
  const distinct = [...new Map(scores.map((s) => [scoreKey(s), s] as const)).values()];
  for (const method of new Set(distinct.map((s) => s.method))) {
    const weightsDir = weightsOf(method);
    if (method.needsWeights !== false) await checkWeightsFolder(weightsDir, opts.method);
    const madeFor = method.needsWeights === false ? null : await weightsRegion(weightsDir);
    if (madeFor !== null && madeFor.region !== opts.region) {
      log(`warning: --region ${opts.region}, but the weights in ${weightsDir} were made for ${madeFor.region} (${madeFor.file})`);
    }
  }
  const loaded = new Map<string, Predictor>();
  try {
    for (const s of distinct) loaded.set(scoreKey(s), await s.method.load(weightsOf(s.method), { score: s.score.name, engine: opts.engine, settings: opts.set }));
  } catch (err) {
    for (const predictor of loaded.values()) await predictor.dispose?.();
    throw err;
  }
  return new Map(scores.map((s) => [s.task, loaded.get(scoreKey(s))!] as const));
}

/**
 * The machine-readable record of a run (--summary). One task: that task's record. Several tasks: one
 * record with each task's output folder, cases written and failed, and the seconds of the whole run
 * (one pass scored them all, so the time is not split between them).
 */
export function summaryJson(
  summaries: readonly PredictionSummary[],
  opts: Pick<PredictCliOptions, 'region' | 'method' | 'input' | 'output'>,
): string {
  const first = summaries[0]!;
  const seconds = Number(first.seconds.toFixed(3));
  const common = { region: opts.region, method: opts.method, input: opts.input, output: opts.output, cases: first.cases.length };
  const record =
    summaries.length === 1
      ? { task: first.task, ...common, written: first.written, failed: first.failed, seconds }
      : {
          tasks: summaries.map((s) => s.task),
          ...common,
          seconds,
          sharedRun: true,
          ...Object.fromEntries(
            summaries.map((s) => [s.task, { output: taskOutputDir(opts.output, s.task), written: s.written, failed: s.failed }] as const),
          ),
        };
  return `${JSON.stringify(record, null, 1)}\n`;
}
