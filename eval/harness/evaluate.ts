/**
 * Scoring a folder of predictions against MOOD-format labels, with the organisers' semantics:
 * - label names are walked in sorted order; the prediction with the same name is looked up
 *   (sample: `F.txt` next to the label `F.txt`; pixel: the NIfTI `F`);
 * - a missing prediction, an unparseable score file, an unreadable or wrong-shape NIfTI counts as all
 *   zeros (most normal) and is listed under `missing` or `bad`;
 * - a NaN in a prediction is an error naming the file (it would void the organisers' whole evaluation);
 * - sample scores are float64 clipped to [0, 1]; pixel scores are quantised to float16 and clipped;
 * - the pixel AP is ONE average precision over every voxel of every case (a histogram of float16 bit
 *   patterns per case: memory does not grow with the volume size, only 245 KB per case).
 * Per kind (with a manifest): each anomaly kind's cases together with all normal cases.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InputFileError, describeError } from '../../src/errors.js';
import { readNifti, isNiftiFileName, countNonFinite } from '../../src/io/nifti.js';
import type { ToySetManifest } from '../inject/toyset.js';
import {
  ScoreHistogram,
  apFromHistogram,
  aurocFromHistogram,
  bestDiceFromHistogram,
  diceAtThresholdFromHistogram,
  rankedCountsFromScores,
  sampleAp,
  sampleAuroc,
  sampleBestDice,
  sampleDiceAtThreshold,
  bootstrapPooledCi,
  bootstrapSampleCi,
  type ConfidenceInterval,
} from '../metrics/index.js';
import { curvesFrom, type Curves } from './curves.js';

export type EvalMode = 'sample' | 'pixel';

export interface EvalOptions {
  /** A toy-format set (holding toy_label/), a label folder holding sample/ and pixel/, or the mode's label folder. */
  readonly labels: string;
  readonly pred: string;
  readonly mode: EvalMode;
  readonly manifest?: ToySetManifest | null;
  /** Dice at this threshold (fixed beforehand), pooled and per case. */
  readonly threshold?: number;
  /** Bootstrap resamples for confidence intervals (0 = none). */
  readonly bootstrap?: number;
  readonly seed?: number;
}

export interface KindResult {
  readonly n: number;
  readonly ap: number;
  readonly auroc: number;
  readonly best_dice: number;
}

export interface CaseResult {
  readonly name: string;
  readonly kind?: string;
  /** Anomaly radius bucket (fraction of the volume side), from the manifest. */
  readonly size?: string;
  /** Sample: the label (0/1). Pixel: the number of positive voxels. */
  readonly label: number;
  /** Sample score as evaluated (clipped); pixel: absent. */
  readonly score?: number;
  /** Pixel: Dice at the fixed threshold (or at the pooled best-Dice threshold when none was given). */
  readonly dice?: number;
  readonly status: 'ok' | 'missing' | 'bad';
}

export interface EvalResult {
  readonly mode: EvalMode;
  readonly cases: number;
  readonly ap: number;
  readonly auroc: number;
  readonly best_dice: number;
  readonly best_dice_threshold: number;
  readonly dice_at_threshold?: { readonly threshold: number; readonly dice: number };
  readonly prevalence: number;
  readonly missing: string[];
  readonly bad: { name: string; reason: string }[];
  readonly per_kind: Record<string, KindResult>;
  /** Per anomaly radius bucket (small < 7 %, medium 7–10 %, large ≥ 10 % of the side), each with all normals. */
  readonly per_size: Record<string, KindResult>;
  readonly per_case: CaseResult[];
  readonly ci?: { readonly level: number; readonly ap: [number, number]; readonly auroc: [number, number]; readonly best_dice: [number, number] };
  readonly curves: Curves;
}

/** A NaN in a prediction: the organisers' evaluation would be void, so ours stops and names the file. */
export class NaNPredictionError extends InputFileError {}

export async function resolveLabelDir(labels: string, mode: EvalMode): Promise<string> {
  for (const candidate of [join(labels, 'toy_label', mode), join(labels, mode), labels]) {
    if (await isDirectory(candidate)) return candidate;
  }
  throw new InputFileError(labels, `no label folder for the ${mode} task (looked for toy_label/${mode}, ${mode}/, or the folder itself)`);
}

export async function readManifestIfPresent(setDir: string): Promise<ToySetManifest | null> {
  try {
    return JSON.parse(await readFile(join(setDir, 'manifest.json'), 'utf8')) as ToySetManifest;
  } catch {
    return null;
  }
}

export async function evaluate(opts: EvalOptions): Promise<EvalResult> {
  const labelDir = await resolveLabelDir(opts.labels, opts.mode);
  const kinds = caseGroups(opts.manifest ?? null);
  return opts.mode === 'sample' ? evaluateSample(labelDir, opts, kinds) : evaluatePixel(labelDir, opts, kinds);
}

interface CaseGroup {
  readonly kind: string;
  readonly size?: string;
}

/** Radius as a fraction of the volume side, in three buckets spanning the published 5–13 % range. */
export function sizeBucket(radius: number, side: number): string {
  const f = radius / side;
  return f < 0.07 ? 'small' : f < 0.1 ? 'medium' : 'large';
}

function caseGroups(manifest: ToySetManifest | null): Map<string, CaseGroup> {
  const out = new Map<string, CaseGroup>();
  for (const c of manifest?.cases ?? []) {
    out.set(c.name, typeof c.radius === 'number' && c.kind !== 'normal' ? { kind: c.kind, size: sizeBucket(c.radius, manifest!.size) } : { kind: c.kind });
  }
  return out;
}

async function sortedEntries(dir: string, keep: (name: string) => boolean): Promise<string[]> {
  const names = (await readdir(dir)).filter(keep);
  return names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

// ------------------------------------------------------------------------------------------------
// sample task

async function evaluateSample(labelDir: string, opts: EvalOptions, kinds: Map<string, CaseGroup>): Promise<EvalResult> {
  const labelFiles = await sortedEntries(labelDir, (n) => n.endsWith('.txt'));
  if (labelFiles.length === 0) throw new InputFileError(labelDir, 'no sample labels (*.txt)');
  const scores: number[] = [];
  const labels: number[] = [];
  const missing: string[] = [];
  const bad: { name: string; reason: string }[] = [];
  const perCase: CaseResult[] = [];
  for (const file of labelFiles) {
    const caseName = file.slice(0, -'.txt'.length);
    const label = parseLabel(join(labelDir, file), await readFile(join(labelDir, file), 'utf8'));
    const predPath = join(opts.pred, file);
    let score = 0;
    let status: CaseResult['status'] = 'ok';
    let text: string | null = null;
    try {
      text = await readFile(predPath, 'utf8');
    } catch {
      status = 'missing';
      missing.push(caseName);
    }
    if (text !== null) {
      const parsed = parseScore(text);
      if (Number.isNaN(parsed.value) && parsed.wasNaN) throw new NaNPredictionError(predPath, 'the sample score is NaN');
      if (Number.isNaN(parsed.value)) {
        status = 'bad';
        bad.push({ name: caseName, reason: `not a number: ${JSON.stringify(text.slice(0, 40))}` });
      } else score = Math.min(1, Math.max(0, parsed.value));
    }
    scores.push(score);
    labels.push(label);
    perCase.push({ name: caseName, ...kindOf(kinds, caseName), label, score, status });
  }

  return sampleResult(scores, labels, perCase, { missing, bad, bootstrap: opts.bootstrap, seed: opts.seed, threshold: opts.threshold });
}

/** Cases of a set with their kind and size bucket, from its manifest (name → group). */
export function caseGroupsOf(manifest: ToySetManifest | null): Map<string, { kind: string; size?: string }> {
  return caseGroups(manifest);
}

export interface ResultOptions {
  readonly missing?: string[];
  readonly bad?: { name: string; reason: string }[];
  readonly bootstrap?: number;
  readonly seed?: number;
  readonly threshold?: number;
}

/** Sample metrics from scores already clipped to [0, 1], one per case (what `evaluate` computes after reading the files). */
export function sampleResult(scores: number[], labels: number[], perCase: CaseResult[], o: ResultOptions): EvalResult {
  const missing = o.missing ?? [];
  const bad = o.bad ?? [];
  const opts = { bootstrap: o.bootstrap, seed: o.seed, threshold: o.threshold };
  const labelFiles = perCase;
  const counts = rankedCountsFromScores(scores, labels);
  const best = sampleBestDice(scores, labels);
  const groupMetrics = (members: number[]): KindResult => {
    const s = members.map((i) => scores[i]!);
    const l = members.map((i) => labels[i]!);
    return { n: members.length, ap: sampleAp(s, l), auroc: sampleAuroc(s, l), best_dice: sampleBestDice(s, l).dice };
  };
  const resamples = opts.bootstrap ?? 0;
  let ci: EvalResult['ci'];
  if (resamples > 0) {
    const o = { seed: opts.seed ?? 0, resamples };
    const ap = bootstrapSampleCi(scores, labels, sampleAp, o);
    const auroc = bootstrapSampleCi(scores, labels, sampleAuroc, o);
    const dice = bootstrapSampleCi(scores, labels, (s, l, w) => sampleBestDice(s, l, w).dice, o);
    ci = { level: ap.level, ap: interval(ap), auroc: interval(auroc), best_dice: interval(dice) };
  }
  return {
    mode: 'sample',
    cases: labelFiles.length,
    ap: sampleAp(scores, labels),
    auroc: sampleAuroc(scores, labels),
    best_dice: best.dice,
    best_dice_threshold: best.threshold,
    ...(opts.threshold !== undefined
      ? { dice_at_threshold: { threshold: opts.threshold, dice: sampleDiceAtThreshold(scores, labels, opts.threshold).dice } }
      : {}),
    prevalence: labels.reduce((a, b) => a + b, 0) / labels.length,
    missing,
    bad,
    per_kind: metricsPerGroup(perCase, (c) => c.kind, groupMetrics),
    per_size: metricsPerGroup(perCase, (c) => c.size, groupMetrics),
    per_case: perCase,
    ...(ci ? { ci } : {}),
    curves: curvesFrom(counts),
  };
}

function parseLabel(file: string, text: string): number {
  const v = Number(text.trim());
  if (v !== 0 && v !== 1) throw new InputFileError(file, `a sample label must be 0 or 1, found ${JSON.stringify(text.trim().slice(0, 20))}`);
  return v;
}

/** Python's float literal syntax: digit groups may hold single underscores between digits ("1_000.5"). */
const DIGITS = String.raw`\d(?:_?\d)*`;
/** The white space float() ignores around a number (checked against CPython): JS's plus \x85, but not the BOM. */
const PYTHON_SPACE = String.raw`(?:(?!\uFEFF)[\s\x85])`;
const PYTHON_EDGE_SPACE = new RegExp(`^${PYTHON_SPACE}+|${PYTHON_SPACE}+$`, 'g');
const PYTHON_FLOAT = new RegExp(String.raw`^[+-]?(?:${DIGITS}(?:\.(?:${DIGITS})?)?|\.${DIGITS})(?:e[+-]?${DIGITS})?$`, 'i');

/**
 * Like Python's float(open(f).readline()): the first line (text mode ends a line at \n, \r\n or \r),
 * surrounding whitespace allowed, 'nan'/'inf'/'infinity' spelled any case. ASCII digits only (Python also
 * takes other Unicode decimal digits, which no score writer emits).
 */
export function parseScore(text: string): { value: number; wasNaN: boolean } {
  const line = (text.split(/\r\n|\r|\n/)[0] ?? '').replace(PYTHON_EDGE_SPACE, '');
  if (/^[+-]?nan$/i.test(line)) return { value: NaN, wasNaN: true };
  if (/^[+-]?(inf|infinity)$/i.test(line)) return { value: line.startsWith('-') ? -Infinity : Infinity, wasNaN: false };
  if (!PYTHON_FLOAT.test(line)) return { value: NaN, wasNaN: false };
  return { value: Number(line.replace(/_/g, '')), wasNaN: false };
}

// ------------------------------------------------------------------------------------------------
// pixel task

async function evaluatePixel(labelDir: string, opts: EvalOptions, kinds: Map<string, CaseGroup>): Promise<EvalResult> {
  const labelFiles = await sortedEntries(labelDir, isNiftiFileName);
  if (labelFiles.length === 0) throw new InputFileError(labelDir, 'no pixel labels (*.nii, *.nii.gz)');
  const caseHistograms: ScoreHistogram[] = [];
  const missing: string[] = [];
  const bad: { name: string; reason: string }[] = [];
  const caseInfo: { name: string; kind?: string; label: number; status: CaseResult['status'] }[] = [];

  for (const file of labelFiles) {
    const { volume: labelVolume } = await readNifti(join(labelDir, file));
    const labels = labelVolume.data;
    const predPath = join(opts.pred, file);
    let predictions: Float32Array;
    let status: CaseResult['status'] = 'ok';
    if (!(await exists(predPath))) {
      status = 'missing';
      missing.push(file);
      predictions = new Float32Array(labels.length);
    } else {
      try {
        const { volume } = await readNifti(predPath);
        if (volume.shape.some((n, a) => n !== labelVolume.shape[a])) {
          throw new Error(`shape ${volume.shape.join('×')} differs from the label's ${labelVolume.shape.join('×')}`);
        }
        predictions = volume.data;
      } catch (err) {
        status = 'bad';
        bad.push({ name: file, reason: err instanceof InputFileError ? err.reason : describeError(err) });
        predictions = new Float32Array(labels.length);
      }
      if (status === 'ok' && countNonFinite(predictions) > 0) {
        let nan = 0;
        for (const v of predictions) if (Number.isNaN(v)) nan++;
        if (nan > 0) throw new NaNPredictionError(predPath, `${nan} voxel${nan === 1 ? ' is' : 's are'} NaN`);
      }
    }
    const h = new ScoreHistogram().add(predictions, labels);
    caseHistograms.push(h);
    caseInfo.push({ name: file, ...kindOf(kinds, file), label: h.totalPositives(), status });
  }

  return pixelResult(caseHistograms, caseInfo, { missing, bad, bootstrap: opts.bootstrap, seed: opts.seed, threshold: opts.threshold });
}

/** Pixel metrics from one score histogram per case (what `evaluate` computes after reading the files). */
export function pixelResult(
  caseHistograms: ScoreHistogram[],
  caseInfo: { name: string; kind?: string; size?: string; label: number; status: CaseResult['status'] }[],
  o: ResultOptions,
): EvalResult {
  const missing = o.missing ?? [];
  const bad = o.bad ?? [];
  const opts = { bootstrap: o.bootstrap, seed: o.seed, threshold: o.threshold };
  const labelFiles = caseInfo;
  const pooled = new ScoreHistogram();
  for (const h of caseHistograms) pooled.addHistogram(h);
  const best = bestDiceFromHistogram(pooled);
  const diceThreshold = opts.threshold ?? best.threshold;
  const perCase: CaseResult[] = caseInfo.map((c, i) => ({
    ...c,
    dice: Number.isFinite(diceThreshold) ? diceAtThresholdFromHistogram(caseHistograms[i]!, diceThreshold).dice : NaN,
  }));
  const groupMetrics = (members: number[]): KindResult => {
    const h = new ScoreHistogram();
    for (const i of members) h.addHistogram(caseHistograms[i]!);
    return { n: members.length, ap: apFromHistogram(h), auroc: aurocFromHistogram(h), best_dice: bestDiceFromHistogram(h).dice };
  };
  const resamples = opts.bootstrap ?? 0;
  let ci: EvalResult['ci'];
  if (resamples > 0) {
    const o = { seed: opts.seed ?? 0, resamples };
    const ap = bootstrapPooledCi(caseHistograms, apFromHistogram, o);
    const auroc = bootstrapPooledCi(caseHistograms, aurocFromHistogram, o);
    const dice = bootstrapPooledCi(caseHistograms, (h) => bestDiceFromHistogram(h).dice, o);
    ci = { level: ap.level, ap: interval(ap), auroc: interval(auroc), best_dice: interval(dice) };
  }
  const positives = pooled.totalPositives();
  return {
    mode: 'pixel',
    cases: labelFiles.length,
    ap: apFromHistogram(pooled),
    auroc: aurocFromHistogram(pooled),
    best_dice: best.dice,
    best_dice_threshold: best.threshold,
    ...(opts.threshold !== undefined
      ? { dice_at_threshold: { threshold: opts.threshold, dice: diceAtThresholdFromHistogram(pooled, opts.threshold).dice } }
      : {}),
    prevalence: positives / (positives + pooled.totalNegatives()),
    missing,
    bad,
    per_kind: metricsPerGroup(perCase, (c) => c.kind, groupMetrics),
    per_size: metricsPerGroup(perCase, (c) => c.size, groupMetrics),
    per_case: perCase,
    ...(ci ? { ci } : {}),
    curves: curvesFrom(pooled.toRankedCounts()),
  };
}

// ------------------------------------------------------------------------------------------------

function kindOf(kinds: Map<string, CaseGroup>, caseName: string): { kind?: string; size?: string } {
  const group = kinds.get(caseName);
  if (group === undefined) return {};
  return group.size === undefined ? { kind: group.kind } : { kind: group.kind, size: group.size };
}

/**
 * Metrics per group of abnormal cases (by kind or by size bucket), each group scored together with every
 * normal case; cases the manifest does not describe are left out of every group.
 */
function metricsPerGroup(
  cases: readonly CaseResult[],
  keyOf: (c: CaseResult) => string | undefined,
  metrics: (members: number[]) => KindResult,
): Record<string, KindResult> {
  const normals: number[] = [];
  const groups = new Map<string, number[]>();
  cases.forEach((c, i) => {
    if (c.kind === 'normal') normals.push(i);
    const key = c.kind === 'normal' ? undefined : keyOf(c);
    if (key !== undefined) groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  const out: Record<string, KindResult> = {};
  for (const [key, members] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
    out[key] = metrics([...members, ...normals].sort((a, b) => a - b));
  }
  return out;
}

function interval(ci: ConfidenceInterval): [number, number] {
  return [ci.lower, ci.upper];
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
