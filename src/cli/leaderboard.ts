import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describeError, InputFileError } from '../errors.js';
import { atomicWriteFile } from '../io/atomic.js';
import type { MoodRegion, MoodTask } from '../mood/predictor.js';
import { runLeaderboard } from '../../eval/harness/leaderboard.js';
import { describeDrops, findDrops } from '../../eval/harness/regression.js';
import { parseEntry, type Entry } from '../../eval/harness/runner.js';
import { writeReport } from '../../eval/report/index.js';
import { ENGINE_HELP, parseEngineChoice } from '../inference/engine-choice.js';
import { methodNames, REGISTRY, requireScore, type Method } from '../methods/index.js';
import { checkSettingKeys, collectSetting } from '../score/settings.js';
import { findScore } from '../methods/index.js';
import { collect, parseInteger, parseNumber, stderrLog } from './common.js';

interface LeaderboardCliOptions {
  set: string;
  method: string[];
  command: string[];
  tasks: string;
  region: MoodRegion;
  out: string;
  timeout: number;
  seed: number;
  bootstrap: number;
  overlays: number;
  baseline?: string;
  tolerance: number;
  engine?: string;
  opt: Record<string, string>;
}

/** A method entry with the run-wide engine and settings; its own settings win, and every key is checked before anything runs. */
function withMethodOptions(entry: Extract<Entry, { kind: 'method' }>, engine: string | undefined, settings: Record<string, string>): Entry {
  const merged = { ...settings, ...(entry.settings ?? {}) };
  const found = findScore(entry.method);
  if (found) checkSettingKeys(merged, found.method.settings ?? [], found.method.id);
  return { ...entry, ...(engine !== undefined ? { engine } : {}), ...(Object.keys(merged).length > 0 ? { settings: merged } : {}) };
}

/** `moodlsr leaderboard`: several predictors side by side on one toy-format set, with a report. */
export function registerLeaderboard(program: Command, registry: readonly Method[] = REGISTRY): void {
  program
    .command('leaderboard')
    .description(
      'run predictors over a toy-format set under a timeout, score them the MOOD way, write JSON/Markdown/HTML. ' +
        'A --method asked for both tasks runs once for both (predict --task sample,pixel): its seconds are that one run\'s, ' +
        'marked sharedRun in report.json; a --command runs once per task',
    )
    .requiredOption('--set <dir>', 'toy-format set (toy/, toy_label/, manifest.json), e.g. from `moodlsr inject`')
    .option('--method <name[@weights]>', `one of moodlsr’s methods, run through \`moodlsr predict\`, both tasks in one run (repeatable): ${methodNames(registry).join(', ')}`, collect, [])
    .option('--engine <name>', `for every --method: ${ENGINE_HELP} (default: predict's, auto)`)
    .option('--opt <key=value>', 'a scoring option for every --method, passed to predict as --set key=value (repeatable; keys: predict --help); one entry\'s own: --method "lsr{lambdaP=inf,weighting=mean}@DIR"', collectSetting, {})
    .option('--command <NAME=CMD>', 'any predictor command, e.g. "lsr=sh scripts/run_pixel_brain.sh" or a docker run line; placeholders {in} {out} {task} {region}, else IN OUT are appended (repeatable)', collect, [])
    .option('--tasks <list>', 'sample,pixel', 'sample,pixel')
    .option('--region <region>', 'brain or abdom', 'brain')
    .requiredOption('--out <dir>', 'folder for predictions and the report')
    .option('--timeout <s>', 'wall-clock limit per predictor call and task, seconds (a --method run scoring both tasks gets twice it)', parseNumber('--timeout', 1), 3600)
    .option('--seed <s>', 'seed for predictors and the bootstrap', parseInteger('--seed'), 0)
    .option('--bootstrap <n>', 'bootstrap resamples for confidence intervals', parseInteger('--bootstrap', 0), 1000)
    .option('--overlays <n>', 'cases shown with slice overlays', parseInteger('--overlays', 0), 12)
    .option('--baseline <file>', 'stored scores (a scores.json); exit 3 when a metric fell by more than --tolerance')
    .option('--tolerance <t>', 'allowed drop against --baseline', parseNumber('--tolerance', 0), 0.005)
    .action(async (opts: LeaderboardCliOptions) => {
      const tasks = opts.tasks.split(',').map((t) => t.trim()) as MoodTask[];
      if (tasks.length === 0 || tasks.some((t) => t !== 'sample' && t !== 'pixel')) throw new Error(`--tasks must list sample and/or pixel, got "${opts.tasks}"`);
      if (opts.region !== 'brain' && opts.region !== 'abdom') throw new Error(`--region must be brain or abdom, got "${opts.region}"`);
      const engine = opts.engine === undefined ? undefined : parseEngineChoice(opts.engine);
      const methods = opts.method
        .map((m) => parseEntry(m, 'method'))
        .map((e) => (e.kind === 'method' ? withMethodOptions(e, engine, opts.opt) : e));
      for (const e of methods) if (e.kind === 'method') requireScore(e.method, registry);
      const entries: Entry[] = [...methods, ...opts.command.map((c) => parseEntry(c, 'command'))];
      if (entries.length === 0) throw new Error('give at least one --method or --command');
      const names = entries.map((e) => e.name);
      if (new Set(names).size !== names.length) throw new Error(`entry names repeat: ${names.join(', ')}`);
      // read the stored scores first: a bad --baseline should not cost a whole leaderboard run
      let baseline: unknown;
      if (opts.baseline) {
        try {
          baseline = JSON.parse(await readFile(opts.baseline, 'utf8'));
        } catch (err) {
          throw new InputFileError(opts.baseline, `cannot read stored scores (${describeError(err)})`);
        }
      }
      const board = await runLeaderboard({
        setDir: opts.set,
        entries,
        tasks,
        region: opts.region,
        workDir: opts.out,
        timeoutSeconds: opts.timeout,
        seed: opts.seed,
        bootstrap: opts.bootstrap,
        overlayCases: opts.overlays,
        createdAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        log: stderrLog('leaderboard: '),
      });
      const paths = await writeReport(opts.out, board.report);
      const failed = board.entries.filter((e) => Object.keys(e.failures).length > 0);
      await atomicWriteFile(join(opts.out, 'scores.json'), `${JSON.stringify(board.scores, null, 1)}\n`);
      process.stderr.write(`leaderboard: report ${paths.html}\n`);
      process.stdout.write(`${await readFile(paths.markdown, 'utf8')}\n${paths.html}\n`);
      for (const e of failed) {
        for (const [task, reason] of Object.entries(e.failures)) process.stderr.write(`leaderboard: ${e.name} ${task} FAILED: ${reason}\n`);
      }
      if (opts.baseline) {
        const drops = findDrops(board.scores, baseline, opts.tolerance);
        if (drops.length > 0) {
          process.stderr.write(`leaderboard: REGRESSION against ${opts.baseline}:\n${describeDrops(drops, opts.tolerance)}\n`);
          process.exitCode = 3;
        } else process.stderr.write(`leaderboard: no metric fell by more than ${opts.tolerance} against ${opts.baseline}\n`);
      }
      // a failed entry outranks a regression: its numbers are not a measurement at all
      if (failed.length > 0) process.exitCode = 2;
    });
}
