/**
 * The MOOD submission contract: score every case of an input folder into an output folder.
 *
 * - cases: every *.nii / *.nii.gz in IN, sorted; other entries are ignored with one note;
 * - sample task → OUT/F.txt holding one finite float in [0, 1]; pixel task → OUT/F, a NIfTI of the
 *   input's shape on the input's grid (header copied), finite values in [0, 1];
 * - every temporary file lives in the run's scratch folder OUT/.moodlsr-tmp-XXXXXX (src/mood/scratch.ts;
 *   unique per run, so shards on several hosts sharing OUT never remove each other's): outputs are
 *   written there and renamed into OUT when complete; TMPDIR points there while the run lasts (the root
 *   FS may be read-only); it is removed at the end, on SIGINT/SIGTERM/SIGHUP (src/mood/interrupt.ts),
 *   and by the next run when its owner died without removing it;
 * - the output folder is created level by level, never on a kernel file system (src/io/make-folder.ts);
 * - a bad case gets one log line and no output file (a stale one from an earlier run is removed); the
 *   other cases are still written.
 *
 * One run may score several tasks, each into its own folder (`predict --task sample,pixel`): each case is
 * read once and scored for every task on the same volume (src/mood/case-output.ts); every guarantee above
 * holds per folder, and a case that fails in one task is written in none.
 */
import { rmSync } from 'node:fs';
import { realpath, rm, access, constants, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createRng } from '../engine/random.js';
import { describeError, fsReason } from '../errors.js';
import { FolderError, makeFolder } from '../io/make-folder.js';
import { failureReason, scoreCase, type CaseTarget } from './case-output.js';
import { listCases, outputPathFor, selectShard, type Shard } from './cases.js';
import { interruptible } from './interrupt.js';
import type { MoodTask, Predictor } from './predictor.js';
import { createScratch, removeStaleScratch, SCRATCH_PREFIX, touchScratch } from './scratch.js';

export { SCRATCH_PREFIX };
export { formatScore } from './case-output.js';

/** What every run shares, whatever tasks it scores. */
interface RunOptions {
  readonly inDir: string;
  readonly seed: number;
  readonly shard?: Shard;
  /** NIfTI datatype of pixel maps: float32 (exact) or uint16 with slope 1/65535 (half the size). */
  readonly pixelDtype?: 'float32' | 'uint16';
  readonly log: (line: string) => void;
  /** Called before each case (1-based index), e.g. for a progress line on a terminal. */
  readonly onCaseStart?: (index: number, total: number, name: string) => void;
}

/** One task of a run: `predictor` scores `task` for every case into `outDir`. */
export interface PredictionTarget {
  readonly task: MoodTask;
  readonly outDir: string;
  readonly predictor: Predictor;
}

/** A run of one task: the MOOD contract's OUT/F.txt or OUT/F. */
export interface PredictionRequest extends RunOptions, PredictionTarget {}

/** A run of several tasks, each case read once; targets are scored in the order given. */
export interface MultiTaskPredictionRequest extends RunOptions {
  readonly targets: readonly PredictionTarget[];
}

export interface CaseFailure {
  readonly name: string;
  readonly reason: string;
}

export interface PredictionSummary {
  readonly task: MoodTask;
  readonly cases: readonly string[];
  readonly written: readonly string[];
  readonly failed: readonly CaseFailure[];
  /** Wall-clock seconds of the whole run; with sharedRun, one figure for all of its tasks (not split). */
  readonly seconds: number;
  /** True when this run scored several tasks in one pass over the cases. */
  readonly sharedRun: boolean;
}

/** A setup problem that stops the whole run before any case (unreadable IN, unwritable OUT, no cases). */
export class PredictionSetupError extends Error {
  override name = 'PredictionSetupError';
}

/** Seed of one case: depends on the run's seed and the case name only, so shards agree with a full run. */
export function caseSeed(runSeed: number, caseName: string): number {
  return createRng(`${runSeed}:${caseName}`).seed();
}

export async function runPrediction(req: PredictionRequest): Promise<PredictionSummary> {
  const { task, outDir, predictor, ...options } = req;
  const [summary] = await runPredictions({ ...options, targets: [{ task, outDir, predictor }] });
  return summary!;
}

/** Scores every case of IN for every target; one summary per target, in the targets' order. */
export async function runPredictions(req: MultiTaskPredictionRequest): Promise<PredictionSummary[]> {
  const started = performance.now();
  const inDir = resolve(req.inDir);
  const targets = req.targets.map((t) => ({ ...t, outDir: resolve(t.outDir) }));
  checkTargets(targets);
  let listing;
  try {
    listing = await listCases(inDir);
  } catch (err) {
    throw new PredictionSetupError(`cannot read input folder ${inDir}: ${fsReason(err)}`);
  }
  if (listing.cases.length === 0) throw new PredictionSetupError(`no .nii or .nii.gz files in ${inDir}`);
  if (listing.ignored.length > 0) {
    const shown = listing.ignored.slice(0, 5).join(', ');
    req.log(`ignoring ${listing.ignored.length} non-NIfTI entr${listing.ignored.length === 1 ? 'y' : 'ies'} of ${inDir}: ${shown}${listing.ignored.length > 5 ? ', …' : ''}`);
  }
  const cases = req.shard ? selectShard(listing.cases, req.shard) : listing.cases;
  if (req.shard) req.log(`shard ${req.shard.index}/${req.shard.count}: ${cases.length} of ${listing.cases.length} cases`);

  const scratches = await prepareOutputs(targets, inDir, req.log);
  const caseTargets: CaseTarget[] = targets.map((t) => ({ ...t, scratch: scratches.get(t.outDir)! }));
  const removeScratches = async (): Promise<void> => {
    await Promise.all([...scratches.values()].map((s) => rm(s, { recursive: true, force: true }).catch(() => undefined)));
  };
  const previousTmp = process.env.TMPDIR;
  process.env.TMPDIR = caseTargets[0]!.scratch;
  const restoreTmp = (): void => {
    if (previousTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previousTmp;
  };

  const written: string[] = [];
  const failed: CaseFailure[] = [];
  const taskNames = targets.map((t) => t.task).join(', ');
  for (const t of targets) req.log(`${t.predictor.name} ${t.task}: ${cases.length} case${cases.length === 1 ? '' : 's'} to score into ${t.outDir}`);
  const scoreAll = async (): Promise<void> => {
    for (const [i, name] of cases.entries()) {
      const t0 = performance.now();
      const progress = `[${i + 1}/${cases.length}]`;
      req.onCaseStart?.(i + 1, cases.length, name);
      const job = { path: join(inDir, name), name, seed: caseSeed(req.seed, name), pixelDtype: req.pixelDtype ?? 'float32', log: req.log };
      try {
        await scoreCase(job, caseTargets);
        written.push(name);
        req.log(`${progress} ${name}: ${taskNames} written (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (err) {
        const reason = failureReason(err);
        failed.push({ name, reason });
        // a stale output of an earlier run must not stand for this case in any task's folder
        await Promise.all(targets.map((t) => rm(outputPathFor(t.outDir, name, t.task), { force: true }).catch(() => undefined)));
        req.log(`${progress} ${name}: FAILED, no output written: ${reason}`);
      }
      for (const t of caseTargets) await touchScratch(t.scratch);
    }
  };
  try {
    await interruptible(
      scoreAll,
      () => {
        restoreTmp();
        for (const s of scratches.values()) rmSync(s, { recursive: true, force: true });
      },
      (signal) => req.log(`${signal}: stopping after ${written.length + failed.length} of ${cases.length} cases; removing the temporary files`),
    );
  } finally {
    restoreTmp();
    await removeScratches();
  }
  const seconds = (performance.now() - started) / 1000;
  const sharedRun = targets.length > 1;
  const shared = sharedRun ? ` (one pass scoring ${taskNames}: the time is the whole run's)` : '';
  for (const t of targets) {
    req.log(
      `${t.predictor.name} ${t.task}: ${written.length}/${cases.length} cases written, ${failed.length} failed, ` +
        `${seconds.toFixed(1)} s total, ${(seconds / Math.max(1, cases.length)).toFixed(2)} s per case${shared}`,
    );
  }
  return targets.map((t) => ({ task: t.task, cases, written, failed, seconds, sharedRun }));
}

/** At least one target, no task twice, and every predictor scores its task. */
function checkTargets(targets: readonly PredictionTarget[]): void {
  if (targets.length === 0) throw new PredictionSetupError('no task to score');
  const tasks = targets.map((t) => t.task);
  if (new Set(tasks).size !== tasks.length) throw new PredictionSetupError(`a task is listed twice: ${tasks.join(', ')}`);
  for (const t of targets) {
    if (!t.predictor.tasks.includes(t.task)) throw new PredictionSetupError(`method ${t.predictor.name} has no ${t.task} score`);
  }
}

/**
 * The scratch folder of every distinct output folder, made by prepareOutput; a pixel folder that is the
 * input folder is refused. On any failure the scratch folders made so far are removed.
 */
async function prepareOutputs(targets: readonly PredictionTarget[], inDir: string, log: (line: string) => void): Promise<Map<string, string>> {
  const scratches = new Map<string, string>();
  try {
    for (const t of targets) {
      if (!scratches.has(t.outDir)) scratches.set(t.outDir, await prepareOutput(t.outDir, log));
      if (t.task === 'pixel' && (await realpath(t.outDir)) === (await realpath(inDir))) {
        throw new PredictionSetupError(`the output folder is the input folder (${inDir}): pixel maps would overwrite the cases`);
      }
    }
    return scratches;
  } catch (err) {
    await Promise.all([...scratches.values()].map((s) => rm(s, { recursive: true, force: true }).catch(() => undefined)));
    throw err;
  }
}

/**
 * Creates OUT (never on a kernel file system), checks that it is writable, removes the scratch folders of
 * dead runs and creates this run's. Every failure is a PredictionSetupError naming the folder and the cause.
 */
async function prepareOutput(outDir: string, log: (line: string) => void): Promise<string> {
  try {
    await makeFolder(outDir);
  } catch (err) {
    const reason = err instanceof FolderError ? (err.folder === outDir ? err.reason : err.message) : describeError(err);
    throw new PredictionSetupError(`cannot use output folder ${outDir}: ${reason}`);
  }
  try {
    await access(outDir, constants.W_OK);
  } catch (err) {
    throw new PredictionSetupError(`cannot write to output folder ${outDir}: ${fsReason(err)}`);
  }
  const stale = await removeStaleScratch(outDir);
  if (stale.length > 0) log(`removed ${stale.length} scratch folder${stale.length === 1 ? '' : 's'} of interrupted runs: ${stale.join(', ')}`);
  let scratch: string | null = null;
  try {
    scratch = await createScratch(outDir);
    await writeFile(join(scratch, 'probe'), '');
    return scratch;
  } catch (err) {
    if (scratch !== null) await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
    throw new PredictionSetupError(`cannot write to output folder ${outDir}: ${fsReason(err)}`);
  }
}
