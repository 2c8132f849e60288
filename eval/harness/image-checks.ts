/**
 * Checks of one prediction folder written by a MOOD entry script, as the organisers' docker test sees it
 * (MIC-DKFZ/mood scripts/test_docker.py runs the image on the toy cases, then evalresults.eval_dir walks the
 * sorted label names and reads the prediction of the same name), made explicit: every case has its output
 * under the exact name, a sample output's first line is a float, a pixel output is a 3-D NIfTI of the input's
 * shape, values are finite and in [0, 1], nothing else is left in the folder, and the run kept to a time
 * budget. Plus the comparison of two prediction folders (an image's and the host CLI's).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isNiftiFileName, readNifti } from '../../src/io/nifti.js';
import { evaluate, parseScore, type EvalMode } from './evaluate.js';

export interface Problem {
  /** The prediction (or folder) the problem is about. */
  readonly file: string;
  readonly reason: string;
}

export interface OrganiserCheckOptions {
  /** A toy-format set: toy/ (the inputs) and toy_label/<task>/. */
  readonly set: string;
  readonly pred: string;
  readonly task: EvalMode;
  /** Wall time of the run that wrote `pred`, for the time budget. */
  readonly seconds?: number;
  readonly maxSecondsPerCase?: number;
}

export interface OrganiserCheckReport {
  readonly cases: number;
  readonly problems: Problem[];
  /** The organisers' score of the folder (average precision), NaN when it could not be computed. */
  readonly ap: number;
  readonly secondsPerCase?: number;
}

export interface CompareReport {
  readonly files: number;
  readonly identical: number;
  readonly withinTolerance: number;
  /** Largest absolute difference of a value over the files that were not byte-identical (0 when all were). */
  readonly maxDifference: number;
  readonly problems: Problem[];
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

async function sortedNames(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort(byCodeUnit);
}

export function expectedOutputName(caseName: string, task: EvalMode): string {
  return task === 'sample' ? `${caseName}.txt` : caseName;
}

async function checkSampleOutput(path: string): Promise<string | null> {
  const { value, wasNaN } = parseScore(await readFile(path, 'utf8'));
  if (wasNaN) return 'the score is NaN (voids the whole evaluation)';
  if (Number.isNaN(value)) return 'the first line is not a number (scored as 0)';
  if (!Number.isFinite(value) || value < 0 || value > 1) return `the score ${value} is outside [0, 1]`;
  return null;
}

async function checkPixelOutput(path: string, inputPath: string): Promise<string | null> {
  const [pred, input] = await Promise.all([readNifti(path), readNifti(inputPath)]);
  if (pred.header.dims[0] !== 3) return `${pred.header.dims[0]}-D, not 3-D`;
  if (pred.volume.shape.join() !== input.volume.shape.join()) {
    return `shape ${pred.volume.shape.join('×')}, the input is ${input.volume.shape.join('×')} (scored as all zeros)`;
  }
  let min = Infinity;
  let max = -Infinity;
  for (const v of pred.volume.data) {
    if (Number.isNaN(v)) return 'holds NaN (voids the whole evaluation)';
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min < 0 || max > 1) return `values in [${min}, ${max}], not within [0, 1]`;
  return null;
}

/** The organisers' view of one region's prediction folder; `problems` is empty when it passes. */
export async function checkOrganiserOutputs(opts: OrganiserCheckOptions): Promise<OrganiserCheckReport> {
  const inputDir = join(opts.set, 'toy');
  const labelDir = join(opts.set, 'toy_label', opts.task);
  const inputs = (await sortedNames(inputDir)).filter(isNiftiFileName);
  const labels = await sortedNames(labelDir);
  const expected = inputs.map((name) => expectedOutputName(name, opts.task));
  const problems: Problem[] = [];
  if (labels.join('\n') !== expected.join('\n')) {
    problems.push({ file: labelDir, reason: `label names [${labels.join(', ')}] do not match the inputs' outputs [${expected.join(', ')}]` });
  }
  const present = new Set(await sortedNames(opts.pred));
  for (const [i, name] of expected.entries()) {
    const path = join(opts.pred, name);
    if (!present.has(name)) {
      problems.push({ file: path, reason: 'missing (scored as 0)' });
      continue;
    }
    present.delete(name);
    let reason: string | null;
    try {
      reason = opts.task === 'sample' ? await checkSampleOutput(path) : await checkPixelOutput(path, join(inputDir, inputs[i]!));
    } catch (err) {
      reason = `unreadable: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (reason) problems.push({ file: path, reason });
  }
  for (const extra of present) problems.push({ file: join(opts.pred, extra), reason: 'not an output of any case (left behind by the run?)' });

  let ap = NaN;
  try {
    ap = (await evaluate({ labels: opts.set, pred: opts.pred, mode: opts.task })).ap;
  } catch (err) {
    problems.push({ file: opts.pred, reason: `the evaluation failed: ${err instanceof Error ? err.message : String(err)}` });
  }
  let secondsPerCase: number | undefined;
  if (opts.seconds !== undefined && inputs.length > 0) {
    secondsPerCase = opts.seconds / inputs.length;
    if (opts.maxSecondsPerCase !== undefined && secondsPerCase > opts.maxSecondsPerCase) {
      problems.push({ file: opts.pred, reason: `${secondsPerCase.toFixed(1)} s per case, over the budget of ${opts.maxSecondsPerCase} s` });
    }
  }
  return { cases: inputs.length, problems, ap, secondsPerCase };
}

function largestDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= worst)) worst = d; // NaN on one side only counts as an infinite difference
  }
  return Number.isNaN(worst) ? Infinity : worst;
}

/** Two prediction folders of one task: byte-identical files, else values within `tolerance`. */
export async function compareOutputs(expectedDir: string, actualDir: string, task: EvalMode, tolerance: number): Promise<CompareReport> {
  const expected = await sortedNames(expectedDir);
  const actual = await sortedNames(actualDir);
  const problems: Problem[] = [];
  if (expected.join('\n') !== actual.join('\n')) {
    problems.push({ file: actualDir, reason: `files [${actual.join(', ')}], expected [${expected.join(', ')}]` });
  }
  let identical = 0;
  let withinTolerance = 0;
  let maxDifference = 0;
  for (const name of expected.filter((n) => actual.includes(n))) {
    const [a, b] = await Promise.all([readFile(join(expectedDir, name)), readFile(join(actualDir, name))]);
    if (a.equals(b)) {
      identical++;
      continue;
    }
    let difference: number;
    if (task === 'sample') {
      difference = largestDifference([parseScore(a.toString('utf8')).value], [parseScore(b.toString('utf8')).value]);
    } else {
      const [x, y] = await Promise.all([readNifti(join(expectedDir, name)), readNifti(join(actualDir, name))]);
      if (x.volume.shape.join() !== y.volume.shape.join()) {
        problems.push({ file: join(actualDir, name), reason: `shape ${y.volume.shape.join('×')}, expected ${x.volume.shape.join('×')}` });
        continue;
      }
      difference = largestDifference(x.volume.data, y.volume.data);
    }
    maxDifference = Math.max(maxDifference, difference);
    if (difference <= tolerance) withinTolerance++;
    else problems.push({ file: join(actualDir, name), reason: `differs from ${join(expectedDir, name)} by up to ${difference} (tolerance ${tolerance})` });
  }
  return { files: expected.length, identical, withinTolerance, maxDifference, problems };
}
