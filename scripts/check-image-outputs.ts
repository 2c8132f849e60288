/**
 * The checks scripts/test-image.sh applies to the image's prediction folders (eval/harness/image-checks.ts).
 *
 *   node dist/scripts/check-image-outputs.js organisers --set SET --pred DIR --task T [--seconds S] [--max-seconds-per-case X]
 *   node dist/scripts/check-image-outputs.js compare --task T --expected HOST_DIR --actual IMAGE_DIR [--tolerance 1e-4]
 *
 * Prints one summary line on stdout and each problem on stderr; exits 1 when there is a problem.
 */
import { Command } from 'commander';
import { checkOrganiserOutputs, compareOutputs, type Problem } from '../eval/harness/image-checks.js';
import type { EvalMode } from '../eval/harness/evaluate.js';

function task(text: string): EvalMode {
  if (text !== 'sample' && text !== 'pixel') throw new Error(`--task must be sample or pixel, got "${text}"`);
  return text;
}

function nonNegative(name: string): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number >= 0, got "${text}"`);
    return value;
  };
}

function finish(summary: string, problems: readonly Problem[]): void {
  process.stdout.write(`${summary}\n`);
  for (const p of problems) process.stderr.write(`${p.file}: ${p.reason}\n`);
  if (problems.length > 0) process.exitCode = 1;
}

const program = new Command('check-image-outputs');
program
  .command('organisers')
  .description("the organisers' docker test checks of one prediction folder")
  .requiredOption('--set <dir>', 'toy-format set: toy/ and toy_label/')
  .requiredOption('--pred <dir>', 'prediction folder')
  .requiredOption('--task <task>', 'sample or pixel', task)
  .option('--seconds <s>', 'wall time of the run that wrote the folder', nonNegative('--seconds'))
  .option('--max-seconds-per-case <s>', 'time budget per case', nonNegative('--max-seconds-per-case'))
  .action(async (o: { set: string; pred: string; task: EvalMode; seconds?: number; maxSecondsPerCase?: number }) => {
    const r = await checkOrganiserOutputs(o);
    const time = r.secondsPerCase === undefined ? '' : `, ${r.secondsPerCase.toFixed(2)} s per case`;
    finish(`${o.pred}: ${r.cases} cases, AP ${r.ap.toFixed(4)}${time}, ${r.problems.length === 0 ? 'all checks pass' : `${r.problems.length} problem(s)`}`, r.problems);
  });
program
  .command('compare')
  .description('two prediction folders: byte-identical, else within the tolerance')
  .requiredOption('--task <task>', 'sample or pixel', task)
  .requiredOption('--expected <dir>', "the host CLI's predictions")
  .requiredOption('--actual <dir>', "the image's predictions")
  .option('--tolerance <t>', 'largest allowed absolute difference of a value', nonNegative('--tolerance'), 1e-4)
  .action(async (o: { task: EvalMode; expected: string; actual: string; tolerance: number }) => {
    const r = await compareOutputs(o.expected, o.actual, o.task, o.tolerance);
    finish(
      `${o.actual}: ${r.files} files, ${r.identical} byte-identical, ${r.withinTolerance} within ${o.tolerance} (largest difference ${r.maxDifference})`,
      r.problems,
    );
  });
program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`check-image-outputs: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
