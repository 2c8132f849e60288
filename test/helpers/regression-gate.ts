/** The regression gate as the tests run it: inject the recipe's set, run the leaderboard against the stored scores. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runChild, runChildOk, type ChildResult } from './run-node.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');

export interface StoredScores {
  recipe: { inject: string[]; leaderboard: string[]; tolerance: number };
  methods: Record<string, Record<string, { ap: number; auroc: number }>>;
}

export function storedPath(name: string): string {
  return join(ROOT, 'eval', 'regression', `${name}.json`);
}

export function readStored(name: string): StoredScores {
  return JSON.parse(readFileSync(storedPath(name), 'utf8')) as StoredScores;
}

/** Builds the recipe's seeded set in `out`. */
export async function injectRecipeSet(stored: StoredScores, out: string): Promise<void> {
  await runChildOk(process.execPath, [CLI, 'inject', ...stored.recipe.inject, '--out', out], { cwd: ROOT });
}

/** Runs the recipe's leaderboard on `set` against `baseline`; returns the run and the scores it wrote. */
export async function runGate(stored: StoredScores, set: string, baseline: string, out: string): Promise<{ run: ChildResult; scores: () => StoredScores }> {
  const run = await runChild(
    process.execPath,
    [CLI, 'leaderboard', '--set', set, ...stored.recipe.leaderboard, '--out', out, '--baseline', baseline, '--tolerance', String(stored.recipe.tolerance)],
    { cwd: ROOT },
  );
  return { run, scores: () => JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')) as StoredScores };
}
