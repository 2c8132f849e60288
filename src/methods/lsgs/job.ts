/**
 * Worker job of the `lsgs` pixel score (see src/engine/pool.ts), always on TF.js (wasm, one backend per
 * worker; ONNX Runtime runs in-process on every core instead): each worker loads the networks from
 * the weights folder once, then restores, decodes and scores the slice chunks it is given.
 */
import { tfjsLsgsEngine, type LsgsEngine } from './engine.js';
import type { LsgsJobInit } from './model.js';
import { loadLsgsNetworks } from './networks.js';
import { lsgsScores, type LsgsScoreResult, type LsgsScoreTask } from './restoration.js';

let engine: LsgsEngine | null = null;

export function setup(init: LsgsJobInit): void {
  engine = tfjsLsgsEngine(loadLsgsNetworks(init.weightsDir));
}

export function run(task: LsgsScoreTask): Promise<LsgsScoreResult> {
  if (engine === null) throw new Error('lsgs job: setup() was not called');
  return lsgsScores(engine, task);
}
