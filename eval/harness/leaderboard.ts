/**
 * A local leaderboard: run several predictors over one toy-format set, score them exactly as the MOOD
 * organisers do, and collect everything a report shows (metrics, curves, seconds per case, overlays).
 */
import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readNifti, isNiftiFileName } from '../../src/io/nifti.js';
import { findScore } from '../../src/methods/index.js';
import type { MoodRegion, MoodTask } from '../../src/mood/predictor.js';
import { MOOD_TASKS, taskOutputDir } from '../../src/mood/tasks.js';
import type { ToySetManifest } from '../inject/toyset.js';
import { TOY_DIRS } from '../inject/toyset.js';
import { chooseOverlaySlice, extractOverlay } from '../report/overlay.js';
import type { CaseView, KindMetrics, MethodResult, Report } from '../report/types.js';
import { evaluate, NaNPredictionError, readManifestIfPresent, type EvalResult } from './evaluate.js';
import { runEntry, runFailure, runTasks, type Entry, type RunOutcome, type RunTask } from './runner.js';

export interface LeaderboardOptions {
  readonly setDir: string;
  readonly entries: readonly Entry[];
  readonly tasks: readonly MoodTask[];
  readonly region: MoodRegion;
  /** Predictions go to workDir/predictions/<entry>/<task>. */
  readonly workDir: string;
  readonly timeoutSeconds: number;
  readonly seed: number;
  readonly bootstrap: number;
  /** Overlays for at most this many cases (each costs one read per method). */
  readonly overlayCases: number;
  readonly createdAt: string;
  readonly log: (line: string) => void;
}

export interface EntryResult {
  readonly name: string;
  /**
   * The run behind each task. A shared run (sharedRun: true) is the same outcome under both tasks: its
   * seconds are the one run's time for both tasks together, not each task's share.
   */
  readonly runs: Partial<Record<MoodTask, RunOutcome>>;
  readonly results: Partial<Record<MoodTask, EvalResult>>;
  /** Tasks whose evaluation is void (a NaN prediction, which voids the organisers' evaluation too). */
  readonly voided: Partial<Record<MoodTask, string>>;
  /** Tasks whose predictor run failed (non-zero exit, killed, timed out), with the reason. */
  readonly failures: Partial<Record<MoodTask, string>>;
}

export interface Leaderboard {
  readonly entries: EntryResult[];
  readonly report: Report;
  /** Compact metrics per entry and task, the form stored as regression baselines. */
  readonly scores: LeaderboardScores;
}

export interface LeaderboardScores {
  readonly set: string;
  readonly methods: Record<string, Partial<Record<MoodTask, { ap: number; auroc: number; best_dice: number; per_kind: Record<string, { ap: number; auroc: number; best_dice: number }> }>>>;
}

/** workDir/predictions/<entry>: a shared run's output folder (predict writes its sample/ and pixel/ folders there). */
function entryDir(workDir: string, entry: string): string {
  return join(workDir, 'predictions', entry.replace(/[^A-Za-z0-9_.-]/g, '_'));
}

export function predictionDir(workDir: string, entry: string, task: MoodTask): string {
  return taskOutputDir(entryDir(workDir, entry), task);
}

/**
 * The runs of one entry: a moodlsr method that scores both tasks, asked for both, scores them in one
 * `predict` run (each case read and modelled once). A command, a single task, or a method with one task
 * (or an unknown name: its run fails per task, as before) is one run per task.
 */
export function plannedRuns(entry: Entry, tasks: readonly MoodTask[]): RunTask[] {
  const bothAsked = MOOD_TASKS.every((t) => tasks.includes(t));
  const bothScored = entry.kind === 'method' && MOOD_TASKS.every((t) => findScore(entry.method)?.score.tasks.includes(t) === true);
  return bothAsked && bothScored ? ['both'] : [...tasks];
}

export async function runLeaderboard(opts: LeaderboardOptions): Promise<Leaderboard> {
  const inDir = join(opts.setDir, TOY_DIRS.image);
  await access(inDir).catch(() => {
    throw new Error(`${opts.setDir} is not a toy-format set (no ${TOY_DIRS.image}/ folder)`);
  });
  const folders = new Map<string, string>();
  for (const entry of opts.entries) {
    const dir = predictionDir(opts.workDir, entry.name, 'sample');
    const clash = folders.get(dir);
    if (clash !== undefined) throw new Error(`entries "${clash}" and "${entry.name}" would share a prediction folder: rename one`);
    folders.set(dir, entry.name);
  }
  const manifest = await readManifestIfPresent(opts.setDir);
  const caseCount = (await readdir(inDir)).filter(isNiftiFileName).length;
  const results: EntryResult[] = [];
  for (const entry of opts.entries) {
    const runs: EntryResult['runs'] = {};
    const evals: EntryResult['results'] = {};
    const voided: EntryResult['voided'] = {};
    const failures: EntryResult['failures'] = {};
    for (const runTask of plannedRuns(entry, opts.tasks)) {
      const tasks = runTasks(runTask);
      const label = `${entry.name} ${tasks.join('+')}`;
      const outDir = runTask === 'both' ? entryDir(opts.workDir, entry.name) : predictionDir(opts.workDir, entry.name, runTask);
      opts.log(`${label}: running${runTask === 'both' ? ' (one predict run scores both tasks)' : ''}`);
      const run = await runEntry(entry, { inDir, outDir, task: runTask, region: opts.region, seed: opts.seed, timeoutSeconds: opts.timeoutSeconds });
      const status = run.timedOut ? `TIMED OUT after ${run.limitSeconds} s` : `exit ${run.exitCode}`;
      const scope = run.sharedRun ? ' for both tasks' : '';
      opts.log(`${label}: ${status}, ${run.seconds.toFixed(1)} s${scope} (${(run.seconds / Math.max(1, caseCount)).toFixed(2)} s per case)`);
      if (run.exitCode !== 0) opts.log(`${label}: last output:\n${run.tail.trimEnd()}`);
      const failure = runFailure(run);
      for (const task of tasks) {
        runs[task] = run;
        if (failure !== null) {
          failures[task] = failure;
          opts.log(`${entry.name} ${task}: FAILED: ${failure}`);
        }
      }
      for (const task of tasks) {
        const pred = predictionDir(opts.workDir, entry.name, task);
        try {
          evals[task] = await evaluate({ labels: opts.setDir, pred, mode: task, manifest, bootstrap: opts.bootstrap, seed: opts.seed });
        } catch (err) {
          if (!(err instanceof NaNPredictionError)) throw err;
          voided[task] = err.message;
          opts.log(`${entry.name} ${task}: evaluation VOID: ${err.message}`);
        }
      }
    }
    results.push({ name: entry.name, runs, results: evals, voided, failures });
  }
  const methods = await buildMethodResults(results, opts, manifest, caseCount);
  const report: Report = {
    title: `MOOD local leaderboard — ${opts.region}`,
    createdAt: opts.createdAt,
    dataset: { name: opts.setDir, region: opts.region, cases: caseCount },
    methods,
    ciLevel: opts.bootstrap > 0 ? 0.95 : undefined,
    notes: [
      'AP is the official MOOD metric: sample AP over per-case scores (float64, clipped to [0, 1]); pixel AP pooled over every voxel of every case (float16, clipped).',
      'Missing or unreadable predictions count as all-zero, as in the organisers’ evaluation.',
      ...(results.some((r) => Object.values(r.runs).some((run) => run.sharedRun))
        ? ['s / case is the predictor’s wall-clock time per case over all its runs. A moodlsr method asked for both tasks scores them in one run (sharedRun in report.json): its time covers both tasks, once; a command runs once per task, the runs summed.']
        : []),
      ...(manifest ? [`Set built by moodlsr inject, seed ${manifest.seed}, ${manifest.size}³ volumes from ${manifest.sources.join(', ')}.`] : []),
    ],
  };
  return { entries: results, report, scores: toScores(opts.setDir, results) };
}

function toScores(set: string, results: readonly EntryResult[]): LeaderboardScores {
  const methods: LeaderboardScores['methods'] = {};
  for (const r of results) {
    const m: LeaderboardScores['methods'][string] = {};
    for (const [task, e] of Object.entries(r.results) as [MoodTask, EvalResult][]) {
      const perKind: Record<string, { ap: number; auroc: number; best_dice: number }> = {};
      for (const [k, v] of Object.entries(e.per_kind)) perKind[k] = { ap: v.ap, auroc: v.auroc, best_dice: v.best_dice };
      m[task] = { ap: e.ap, auroc: e.auroc, best_dice: e.best_dice, per_kind: perKind };
    }
    methods[r.name] = m;
  }
  return { set, methods };
}

/** Per anomaly kind, then per radius bucket ("radius small" …), for the report's per-kind table. */
function kindMetrics(e: EvalResult): Record<string, KindMetrics> {
  const out: Record<string, KindMetrics> = {};
  for (const [k, v] of Object.entries(e.per_kind)) out[k] = { ap: v.ap, auroc: v.auroc, n: v.n, bestDice: v.best_dice };
  for (const [k, v] of Object.entries(e.per_size)) out[`radius ${k}`] = { ap: v.ap, auroc: v.auroc, n: v.n, bestDice: v.best_dice };
  return out;
}

async function buildMethodResults(
  results: readonly EntryResult[],
  opts: LeaderboardOptions,
  manifest: ToySetManifest | null,
  caseCount: number,
): Promise<MethodResult[]> {
  const kinds = new Map((manifest?.cases ?? []).map((c) => [c.name, c.kind] as const));
  const overlays = await overlayViews(results, opts, kinds);
  return results.map((r, m) => {
    const s = r.results.sample;
    const p = r.results.pixel;
    // a shared run stands under both tasks: count its time once
    const distinctRuns = [...new Set(Object.values(r.runs))];
    const seconds = distinctRuns.reduce((a, run) => a + run.seconds, 0);
    const sharedRun = distinctRuns.some((run) => run.sharedRun);
    const missing = [...new Set([...(s?.missing ?? []).map((n) => `${n} (sample)`), ...(p?.missing ?? []).map((n) => `${n} (pixel)`)])];
    const bad = [
      ...Object.entries(r.voided).map(([task, reason]) => `all (${task}): evaluation void, ${reason}`),
      ...(s?.bad ?? []).map((b) => `${b.name} (sample): ${b.reason}`),
      ...(p?.bad ?? []).map((b) => `${b.name} (pixel): ${b.reason}`),
    ];
    return {
      name: r.name,
      secondsPerCase: seconds / Math.max(1, caseCount),
      ...(sharedRun ? { sharedRun } : {}),
      ...(s
        ? { sample: { ap: s.ap, auroc: s.auroc, prevalence: s.prevalence, pr: s.curves.pr, roc: s.curves.roc, perKind: kindMetrics(s), ...(s.ci ? { ci: { ap: s.ci.ap, auroc: s.ci.auroc } } : {}) } }
        : {}),
      ...(p
        ? {
            pixel: {
              ap: p.ap, auroc: p.auroc, bestDice: p.best_dice, bestDiceThreshold: p.best_dice_threshold, prevalence: p.prevalence,
              pr: p.curves.pr, roc: p.curves.roc, perKind: kindMetrics(p),
              ...(p.ci ? { ci: { ap: p.ci.ap, auroc: p.ci.auroc, bestDice: p.ci.best_dice } } : {}),
            },
          }
        : {}),
      missing,
      bad,
      failed: Object.entries(r.failures).map(([task, reason]) => `${task}: ${reason}`),
      cases: overlays[m],
    };
  });
}

/** Per method, the case views (one slice per case, the same slice for every method). */
async function overlayViews(results: readonly EntryResult[], opts: LeaderboardOptions, kinds: Map<string, string>): Promise<CaseView[][]> {
  const out: CaseView[][] = results.map(() => []);
  const names = (await readdir(join(opts.setDir, TOY_DIRS.image))).filter(isNiftiFileName).sort();
  const shown = pickOverlayCases(names, kinds, opts.overlayCases);
  for (const name of shown) {
    const { volume: image } = await readNifti(join(opts.setDir, TOY_DIRS.image, name));
    const label = await readNifti(join(opts.setDir, TOY_DIRS.pixel, name)).then((l) => l.volume.data, () => null);
    const maps = await Promise.all(
      results.map((r) => readNifti(join(predictionDir(opts.workDir, r.name, 'pixel'), name)).then((p) => p.volume.data, () => null)),
    );
    const firstMap = maps.find((m) => m !== null) ?? new Float32Array(image.data.length);
    const z = chooseOverlaySlice(label, firstMap, image.shape);
    results.forEach((r, m) => {
      const sampleCase = r.results.sample?.per_case.find((c) => c.name === name);
      const pixelCase = r.results.pixel?.per_case.find((c) => c.name === name);
      const map = maps[m];
      const view: CaseView = {
        name,
        kind: kinds.get(name) ?? (sampleCase?.label === 1 ? 'abnormal' : 'unknown'),
        ...(sampleCase ? { sampleScore: sampleCase.score, sampleLabel: sampleCase.label as 0 | 1 } : {}),
        ...(pixelCase?.dice !== undefined && Number.isFinite(pixelCase.dice) ? { dice: pixelCase.dice } : {}),
        ...(map && map.length === image.data.length ? { slice: extractOverlay(image.data, label, map, image.shape, z) } : {}),
      };
      out[m]!.push(view);
    });
  }
  return out;
}

/** One case of each kind first (normal included), then the rest in name order, up to `limit`. */
function pickOverlayCases(names: readonly string[], kinds: Map<string, string>, limit: number): string[] {
  const firstOfKind = new Map<string, string>();
  for (const n of names) {
    const k = kinds.get(n) ?? 'unknown';
    if (!firstOfKind.has(k)) firstOfKind.set(k, n);
  }
  const picked = [...firstOfKind.values()];
  for (const n of names) if (!picked.includes(n)) picked.push(n);
  return picked.slice(0, limit).sort();
}
