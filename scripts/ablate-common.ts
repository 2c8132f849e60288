/**
 * What the in-memory ablations of lsgs and the vae scores share (scripts/ablate-lsgs.ts,
 * scripts/ablate-vae.ts): command-line options, reading the cases of a toy-format set with their
 * labels, collecting sample scores and pixel histograms per variant, and the MOOD-exact summaries
 * (the metric code of `moodlsr eval`) in the JSON form scripts/ablation-table.ts reads.
 */
import { readdir, readFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readNifti, isNiftiFileName } from '../src/io/nifti.js';
import { ScoreHistogram } from '../eval/metrics/index.js';
import { caseGroupsOf, pixelResult, sampleResult, type CaseResult, type EvalResult } from '../eval/harness/evaluate.js';
import { TOY_DIRS, type ToySetManifest } from '../eval/inject/toyset.js';
import type { Volume } from '../src/volume/volume.js';

export { flag, option } from './cli-options.js';

export async function niftiFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter(isNiftiFileName).sort();
}

export interface AblationCase {
  readonly name: string;
  readonly volume: Volume;
  readonly labels: Float32Array;
  readonly sampleLabel: number;
  readonly kind: string;
}

/** The cases of a toy set in name order (`limit` > 0: the first `limit`). */
export async function* setCases(setDir: string, limit = 0): AsyncGenerator<AblationCase & { index: number; total: number }> {
  const manifest = JSON.parse(await readFile(join(setDir, 'manifest.json'), 'utf8')) as ToySetManifest;
  const groups = caseGroupsOf(manifest);
  let names = await niftiFiles(join(setDir, TOY_DIRS.image));
  if (limit > 0) names = names.slice(0, limit);
  for (const [index, name] of names.entries()) {
    const { volume } = await readNifti(join(setDir, TOY_DIRS.image, name));
    const { volume: labelVolume } = await readNifti(join(setDir, TOY_DIRS.pixel, name));
    const sampleLabel = Number((await readFile(join(setDir, TOY_DIRS.sample, `${name}.txt`), 'utf8')).trim());
    yield { index, total: names.length, name, volume, labels: labelVolume.data, sampleLabel, kind: groups.get(name)?.kind ?? 'unknown' };
  }
}

/**
 * A strictly increasing map of the real line into (0, 1): raw sample aggregates are unbounded and the
 * evaluation clips scores to [0, 1], so they go through it first (ranks, hence AP and AUROC, are unchanged).
 */
export function rankPreservingSquash(x: number): number {
  return 0.5 + Math.atan(x) / Math.PI;
}

/** Sample scores and pixel histograms per variant, in case order. */
export class AblationCollector {
  readonly sampleScores = new Map<string, number[]>();
  readonly pixelHist = new Map<string, ScoreHistogram[]>();
  readonly sampleLabels: number[] = [];
  readonly pixelInfo: { name: string; kind?: string; size?: string; label: number; status: 'ok' }[] = [];
  readonly names: string[] = [];
  private groups = new Map<string, { kind: string; size?: string }>();

  constructor(readonly setDir: string) {}

  async init(): Promise<void> {
    this.groups = caseGroupsOf(JSON.parse(await readFile(join(this.setDir, 'manifest.json'), 'utf8')) as ToySetManifest);
  }

  addCase(c: AblationCase): void {
    this.names.push(c.name);
    this.sampleLabels.push(c.sampleLabel);
    let positives = 0;
    for (const l of c.labels) if (l > 0.5) positives++;
    this.pixelInfo.push({ name: c.name, ...(this.groups.get(c.name) ?? {}), label: positives, status: 'ok' });
  }

  sample(key: string, v: number): void {
    (this.sampleScores.get(key) ?? this.sampleScores.set(key, []).get(key)!).push(v);
  }

  pixel(key: string, map: Float32Array, labels: Float32Array): void {
    (this.pixelHist.get(key) ?? this.pixelHist.set(key, []).get(key)!).push(new ScoreHistogram().add(map, labels));
  }

  /** MOOD-exact summaries with `bootstrap` resamples (seed 14); sample scores through rankPreservingSquash. */
  summaries(bootstrap: number): { sample: Record<string, unknown>; pixel: Record<string, unknown> } {
    const perCase = (scores: number[]): CaseResult[] =>
      this.names.map((name, i) => ({ name: name.replace(/\.nii(\.gz)?$/, ''), ...(this.groups.get(name) ?? {}), label: this.sampleLabels[i]!, score: scores[i]!, status: 'ok' as const }));
    const summarise = (r: EvalResult) => ({ ap: r.ap, auroc: r.auroc, best_dice: r.best_dice, ci: r.ci, per_kind: r.per_kind, per_size: r.per_size });
    const o = { bootstrap, seed: 14 };
    const sample: Record<string, unknown> = {};
    for (const [key, raw] of this.sampleScores) {
      const scores = raw.map(rankPreservingSquash);
      sample[key] = summarise(sampleResult(scores, this.sampleLabels, perCase(scores), o));
    }
    const pixel: Record<string, unknown> = {};
    for (const [key, hists] of this.pixelHist) pixel[key] = summarise(pixelResult(hists, this.pixelInfo, o));
    return { sample, pixel };
  }
}

export async function writeJson(file: string, value: unknown): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(value, null, 1)}\n`);
}
