import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { fsReason, InputFileError } from '../errors.js';
import { evaluate, readManifestIfPresent, type EvalMode, type EvalResult } from '../../eval/harness/evaluate.js';
import { describeDrops, findDrops } from '../../eval/harness/regression.js';
import type { ToySetManifest } from '../../eval/inject/toyset.js';
import { parseInteger, parseNumber } from './common.js';

interface EvalCliOptions {
  labels: string;
  pred: string;
  mode: EvalMode;
  manifest?: string;
  json?: boolean;
  curves?: boolean;
  threshold?: number;
  bootstrap: number;
  seed: number;
  baseline?: string;
  tolerance: number;
}

/** `moodlsr eval`: MOOD-exact metrics of a prediction folder, optionally gated against stored scores. */
export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('score predictions against MOOD-format labels exactly as the organisers do (AP pooled; AUROC; Dice)')
    .requiredOption('--labels <dir>', 'a toy-format set (with toy_label/), or a label folder')
    .requiredOption('--pred <dir>', 'folder of predictions (F.txt for sample, F NIfTI for pixel)')
    .requiredOption('--mode <mode>', 'sample or pixel')
    .option('--manifest <file>', 'manifest.json of the set, for per-kind metrics (default: the set’s own, if any)')
    .option('--json', 'print one JSON object')
    .option('--curves', 'with --json: include PR and ROC curve points')
    .option('--threshold <t>', 'also report Dice at this fixed threshold', parseNumber('--threshold', 0, 1))
    .option('--bootstrap <n>', 'bootstrap resamples over cases for 95 % confidence intervals (0: none)', parseInteger('--bootstrap', 0), 0)
    .option('--seed <s>', 'seed of the bootstrap', parseInteger('--seed'), 0)
    .option('--baseline <file>', 'stored scores (JSON from --json); exit 3 when a metric fell by more than --tolerance')
    .option('--tolerance <t>', 'allowed drop of any metric against --baseline', parseNumber('--tolerance', 0), 0.005)
    .action(async (opts: EvalCliOptions) => {
      if (opts.mode !== 'sample' && opts.mode !== 'pixel') throw new Error(`--mode must be sample or pixel, got "${opts.mode}"`);
      if (opts.curves && !opts.json) throw new Error('--curves adds curve points to the JSON output: give --json too');
      // read the stored scores before the evaluation: a bad --baseline should not cost a whole run
      const baseline = opts.baseline ? await readJson<unknown>(opts.baseline) : undefined;
      const manifest = opts.manifest ? await readJson<ToySetManifest>(opts.manifest) : await readManifestIfPresent(opts.labels);
      const result = await evaluate({
        labels: opts.labels,
        pred: opts.pred,
        mode: opts.mode,
        manifest,
        threshold: opts.threshold,
        bootstrap: opts.bootstrap,
        seed: opts.seed,
        refuseUnusablePred: true,
      });
      if (result.missing.length === result.cases) {
        throw new InputFileError(opts.pred, `none of the ${result.cases} cases has a prediction here (expected names like ${result.missing[0]}${opts.mode === 'sample' ? '.txt' : ''})`);
      }
      const { curves, ...rest } = result;
      if (opts.json) process.stdout.write(`${JSON.stringify(opts.curves ? result : rest)}\n`);
      else process.stdout.write(formatResult(result));
      if (opts.baseline) {
        const drops = findDrops(rest, baseline, opts.tolerance);
        if (drops.length > 0) {
          process.stderr.write(`moodlsr eval: REGRESSION against ${opts.baseline}:\n${describeDrops(drops, opts.tolerance)}\n`);
          process.exitCode = 3;
        } else process.stderr.write(`moodlsr eval: no metric fell by more than ${opts.tolerance} against ${opts.baseline}\n`);
      }
      void curves;
    });
}

async function readJson<T>(file: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InputFileError(file, `cannot read: ${fsReason(err)}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new InputFileError(file, `not valid JSON (${(err as Error).message})`);
  }
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(4) : 'n/a';
}

export function formatResult(r: EvalResult): string {
  const lines = [
    `${r.mode}: ${r.cases} cases  AP ${fmt(r.ap)}  AUROC ${fmt(r.auroc)}  best Dice ${fmt(r.best_dice)} (threshold ${fmt(r.best_dice_threshold)})`,
  ];
  if (r.ci) lines.push(`  ${Math.round(r.ci.level * 100)} % CI  AP [${r.ci.ap.map(fmt).join(', ')}]  AUROC [${r.ci.auroc.map(fmt).join(', ')}]  best Dice [${r.ci.best_dice.map(fmt).join(', ')}]`);
  if (r.dice_at_threshold) lines.push(`  Dice at ${r.dice_at_threshold.threshold}: ${fmt(r.dice_at_threshold.dice)}`);
  for (const [kind, k] of Object.entries(r.per_kind)) {
    lines.push(`  ${kind.padEnd(8)} n=${String(k.n).padStart(3)}  AP ${fmt(k.ap)}  AUROC ${fmt(k.auroc)}  best Dice ${fmt(k.best_dice)}`);
  }
  for (const [bucket, k] of Object.entries(r.per_size)) {
    lines.push(`  ${`r ${bucket}`.padEnd(8)} n=${String(k.n).padStart(3)}  AP ${fmt(k.ap)}  AUROC ${fmt(k.auroc)}  best Dice ${fmt(k.best_dice)}`);
  }
  if (r.missing.length) lines.push(`  missing (scored as 0): ${r.missing.join(', ')}`);
  for (const b of r.bad) lines.push(`  bad (scored as 0): ${b.name}: ${b.reason}`);
  return `${lines.join('\n')}\n`;
}
