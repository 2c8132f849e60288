/**
 * The registry of scoring methods: the one list the CLI reads (`predict --method`, `train`, `calibrate`,
 * `leaderboard --method`, `--help`). Adding a method = its folder src/methods/<id>/ (index.ts exporting a
 * `Method` by default, see ./method.ts) + one line below. Order = the order `--help` lists them in.
 */
import { join } from 'node:path';
import type { EngineChoice } from '../inference/engine-choice.js';
import type { MoodRegion, MoodTask, Predictor } from '../mood/predictor.js';
import { PACKAGE_ROOT } from '../package-root.js';
import type { Method, MethodScore } from './method.js';

export type { Method, MethodLoadOptions, MethodScore } from './method.js';

export const REGISTRY: readonly Method[] = [
  (await import('./zscore/index.js')).default,
  (await import('./lsr/index.js')).default,
  (await import('./vae/index.js')).default,
  (await import('./lsgs/index.js')).default,
  (await import('./disyre/index.js')).default,
];

/** A `predict --method` name with the method that computes it. */
export interface RegisteredScore {
  readonly method: Method;
  readonly score: MethodScore;
}

/** Every `predict --method` name, in registry order. */
export function registeredScores(registry: readonly Method[] = REGISTRY): RegisteredScore[] {
  return registry.flatMap((method) => method.scores.map((score) => ({ method, score })));
}

export function methodNames(registry: readonly Method[] = REGISTRY): string[] {
  return registeredScores(registry).map((s) => s.score.name);
}

export function findScore(name: string, registry: readonly Method[] = REGISTRY): RegisteredScore | undefined {
  return registeredScores(registry).find((s) => s.score.name === name);
}

/** The registered score of `name`, or an error listing the known names. */
export function requireScore(name: string, registry: readonly Method[] = REGISTRY): RegisteredScore {
  const found = findScore(name, registry);
  if (found === undefined) throw new Error(`unknown --method "${name}" (known: ${methodNames(registry).join(', ')})`);
  return found;
}

/** The registered score of `name`, checked to score `task` before anything loads. */
export function requireScoreFor(name: string, task: MoodTask, registry: readonly Method[] = REGISTRY): RegisteredScore {
  const found = requireScore(name, registry);
  if (!found.score.tasks.includes(task)) {
    const able = registeredScores(registry).filter((s) => s.score.tasks.includes(task)).map((s) => s.score.name);
    throw new Error(`--method ${name} has no ${task} score (${task}: ${able.join(', ')})`);
  }
  return found;
}

/** "zscore (sample, pixel), …, vae-elbo (sample), …": which name scores which task, for `--help`. */
export function describeScoreTasks(registry: readonly Method[] = REGISTRY): string {
  return registeredScores(registry)
    .map((s) => `${s.score.name} (${s.score.tasks.join(', ')})`)
    .join(', ');
}

/** "lsr: lambdaP, weighting, …; zscore: …": the `--set` keys of every method that has some, for `--help`. */
export function describeSettingKeys(registry: readonly Method[] = REGISTRY): string {
  const parts = registry.filter((m) => (m.settings ?? []).length > 0).map((m) => `${m.id}: ${m.settings!.map((s) => s.key).join(', ')}`);
  return parts.length > 0 ? parts.join('; ') : 'none';
}

/** Loaders by `predict --method` name (what `predict` runs after its checks). */
export const METHODS: Readonly<Record<string, (weightsDir: string, opts?: { readonly engine?: EngineChoice }) => Promise<Predictor>>> = Object.fromEntries(
  registeredScores().map(({ method, score }) => [
    score.name,
    (weightsDir: string, opts: { readonly engine?: EngineChoice } = {}) => method.load(weightsDir, { score: score.name, ...opts }),
  ]),
);

/** The sub-folder of weights/<region> that holds a method's shipped weights (zscore: the region folder itself). */
export function shippedSubfolder(name: string): string {
  return requireScore(name).method.shippedSubfolder;
}

/** The shipped weights of a method for a region: <package>/weights/<region>[/<sub-folder>]. */
export function methodWeightsDir(method: Method, region: MoodRegion): string {
  return join(PACKAGE_ROOT, 'weights', region, method.shippedSubfolder);
}

/** The shipped weights of a `predict --method` name for a region. */
export function shippedWeightsDir(region: MoodRegion, name = 'zscore'): string {
  return methodWeightsDir(requireScore(name).method, region);
}
