import { join } from 'node:path';
import { loadZScore, zscorePredictor } from '../methods/zscore/model.js';
import type { MoodRegion, Predictor } from './predictor.js';
import { CLI_ENTRY, PACKAGE_ROOT } from '../package-root.js';
import type { EngineChoice } from '../inference/engine-choice.js';

/** Options every method may use (methods without networks ignore them). */
export interface MethodOptions {
  /** Inference engine of network methods (default 'auto'). */
  readonly engine?: EngineChoice;
}

/**
 * Methods `predict` can run, each loading its weights from a weights folder. Network methods are imported
 * lazily, so that methods without TF.js (zscore) do not pay for loading it.
 */
export const METHODS: Readonly<Record<string, (weightsDir: string, opts?: MethodOptions) => Promise<Predictor>>> = {
  zscore: async (dir) => zscorePredictor(await loadZScore(dir)),
  lsr: async (dir, opts) => (await import('../methods/lsr/model.js')).createLsrPredictor(dir, opts),
  // VAE baselines (Zimmerer et al. 2019): sample scores vae-elbo, vae-kl, vae-rec; pixel maps vae-rec,
  // vae-elbograd, vae-klgrad, vae-recgrad, vae-combi (src/methods/vae/model.ts).
  ...Object.fromEntries(
    ['vae-rec', 'vae-elbo', 'vae-kl', 'vae-elbograd', 'vae-klgrad', 'vae-recgrad', 'vae-combi'].map((name) => [
      name,
      async (dir: string, opts?: MethodOptions) => (await import('../methods/vae/model.js')).createVaePredictor(dir, name, opts),
    ]),
  ),
  lsgs: async (dir, opts) => (await import('../methods/lsgs/model.js')).createLsgsPredictor(dir, opts),
};

export function methodNames(): string[] {
  return Object.keys(METHODS);
}

/** The sub-folder of weights/<region> that holds a method's shipped networks (zscore: the region folder itself). */
export function shippedSubfolder(method: string): string {
  if (method === 'lsr' || method === 'lsgs') return method;
  if (method.startsWith('vae-')) return 'vae';
  return '';
}

/** The shipped weights of a method for a region: <package>/weights/<region>[/lsr|/lsgs|/vae]. */
export function shippedWeightsDir(region: MoodRegion, method = 'zscore'): string {
  return join(PACKAGE_ROOT, 'weights', region, shippedSubfolder(method));
}

/** The compiled CLI entry, for running `predict` in a child process. */
export function cliEntryPath(): string {
  return CLI_ENTRY;
}
