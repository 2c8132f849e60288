import { join } from 'node:path';
import { loadZScore, zscorePredictor } from '../baselines/zscore-model.js';
import { createLsrPredictor } from '../score/lsr-model.js';
import type { MoodRegion, Predictor } from './predictor.js';
import { CLI_ENTRY, PACKAGE_ROOT } from '../package-root.js';

/** Methods `predict` can run, each loading its weights from a weights folder. */
export const METHODS: Readonly<Record<string, (weightsDir: string) => Promise<Predictor>>> = {
  zscore: async (dir) => zscorePredictor(await loadZScore(dir)),
  lsr: createLsrPredictor,
};

export function methodNames(): string[] {
  return Object.keys(METHODS);
}

/** The shipped weights of a region: <package>/weights/<region>. */
export function shippedWeightsDir(region: MoodRegion): string {
  return join(PACKAGE_ROOT, 'weights', region);
}

/** The compiled CLI entry, for running `predict` in a child process. */
export function cliEntryPath(): string {
  return CLI_ENTRY;
}
