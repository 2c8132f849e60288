/**
 * Worker job of the `lsr` pixel score (see src/engine/pool.ts): each worker loads the networks from
 * the weights folder once, then restores, decodes and scores the slice chunks it is given.
 */
import type { LsrJobInit } from './lsr-model.js';
import { loadLsrNetworks, type LsrNetworks } from './networks.js';
import { restorationScores, type RestorationScoreResult, type RestorationScoreTask } from './pixel-score.js';

let nets: LsrNetworks | null = null;

export function setup(init: LsrJobInit): void {
  nets = loadLsrNetworks(init.weightsDir);
}

export function run(task: RestorationScoreTask): RestorationScoreResult {
  if (nets === null) throw new Error('lsr job: setup() was not called');
  return restorationScores(nets, task);
}
