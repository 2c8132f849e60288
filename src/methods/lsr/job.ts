/**
 * Worker job of the `lsr` pixel score (see src/engine/pool.ts): each worker loads the networks from
 * the weights folder once (TF.js on the worker's own wasm backend), then restores, decodes and scores the slice chunks it is given.
 */
import { tfjsEngine, type LsrEngine } from './engine.js';
import type { LsrJobInit } from './model.js';
import { loadLsrNetworks } from './networks.js';
import { restorationScores, type RestorationScoreResult, type RestorationScoreTask } from '../../score/pixel-score.js';

let engine: LsrEngine | null = null;

export function setup(init: LsrJobInit): void {
  engine = tfjsEngine(loadLsrNetworks(init.weightsDir));
}

export function run(task: RestorationScoreTask): Promise<RestorationScoreResult> {
  if (engine === null) throw new Error('lsr job: setup() was not called');
  return restorationScores(engine, task);
}
