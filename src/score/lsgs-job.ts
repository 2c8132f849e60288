/**
 * Worker job of the `lsgs` pixel score (see src/engine/pool.ts): each worker loads the networks from
 * the weights folder once, then restores, decodes and scores the slice chunks it is given.
 */
import type { LsgsJobInit } from './lsgs-model.js';
import { loadLsgsNetworks, type LsgsNetworks } from './lsgs-networks.js';
import { lsgsScores, type LsgsScoreResult, type LsgsScoreTask } from './lsgs-restoration.js';

let nets: LsgsNetworks | null = null;

export function setup(init: LsgsJobInit): void {
  nets = loadLsgsNetworks(init.weightsDir);
}

export function run(task: LsgsScoreTask): LsgsScoreResult {
  if (nets === null) throw new Error('lsgs job: setup() was not called');
  return lsgsScores(nets, task);
}
