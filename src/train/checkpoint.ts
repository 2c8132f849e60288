/**
 * Training checkpoints: everything a resumed run needs to continue exactly where an uninterrupted
 * one would be: the weights, both Adam moments, the step counter, the epoch reached, the best
 * held-out loss and the history. Every random stream of an epoch is derived from (seed, epoch), so
 * no generator state has to be stored.
 *
 * Files (in the run's output folder):
 *   checkpoint-e<epoch>.bin   weights, Adam m, Adam v: float32 little-endian, back to back
 *   checkpoint.json           manifest naming that .bin, with the layout and the training state
 * The .bin is written first under a new name, then checkpoint.json is replaced atomically, then the
 * previous .bin is deleted; a kill at any moment leaves a checkpoint.json whose .bin is complete.
 *
 * Best weights go through `saveModel` (the normal weights format), and `training.json` records the run.
 */
import { readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { atomicWriteFile } from '../io/atomic.js';
import { InputFileError } from '../errors.js';
import { saveModel } from '../models/weights.js';
import { variableFrom, type ParamMap } from '../models/params.js';
import type { ParamLayout } from './loop-worker.js';

export const CHECKPOINT_FORMAT = 'moodlsr-checkpoint';
export const CHECKPOINT_VERSION = 1;

export interface EpochRecord {
  epoch: number;
  steps: number;
  /** Mean training metrics over the epoch (loss, and rec/codebook/commit for the VQ-VAE). */
  train: Record<string, number>;
  /** Held-out metrics (dropout off); empty when nothing is held out. */
  holdout: Record<string, number>;
  /** VQ-VAE: codebook usage over the epoch's training batches. */
  codesUsed?: number;
  perplexity?: number;
  /** VQ-VAE: codes re-seeded after this epoch. */
  reseeded?: number;
  /** Learning rate of the epoch's last step (when a schedule is set). */
  lr?: number;
  seconds: number;
}

export interface TrainingState {
  /** Epochs completed (the next epoch to run is epoch + 1). */
  epoch: number;
  /** Optimiser steps taken (Adam's t). */
  step: number;
  bestHoldout: number | null;
  bestEpoch: number | null;
  /** Training wall time summed over all sessions of the run. */
  wallSeconds: number;
  history: EpochRecord[];
  /** What must not change between a run and its resumption (model, data, seed, batch …). */
  fingerprint: string;
}

export interface CheckpointData {
  kind: string;
  config: unknown;
  weights: Float32Array;
  adamM: Float32Array;
  adamV: Float32Array;
  state: TrainingState;
}

interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  kind: string;
  config: unknown;
  binary: string;
  values: number;
  state: TrainingState;
}

export function checkpointManifestPath(dir: string): string {
  return path.join(dir, 'checkpoint.json');
}

function toBytes(arrays: readonly Float32Array[]): Uint8Array {
  const total = arrays.reduce((a, x) => a + x.length, 0);
  const out = new Uint8Array(total * 4);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++, at += 4) view.setFloat32(at, a[i]!, true);
  return out;
}

export async function saveCheckpoint(dir: string, data: CheckpointData): Promise<void> {
  const n = data.weights.length;
  if (data.adamM.length !== n || data.adamV.length !== n) throw new Error('checkpoint: weights and Adam moments differ in length');
  const binary = `checkpoint-e${data.state.epoch}.bin`;
  await atomicWriteFile(path.join(dir, binary), toBytes([data.weights, data.adamM, data.adamV]));
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    kind: data.kind,
    config: data.config,
    binary,
    values: n,
    state: data.state,
  };
  await atomicWriteFile(checkpointManifestPath(dir), JSON.stringify(manifest) + '\n');
  for (const name of readdirSync(dir)) {
    if (/^checkpoint-e\d+\.bin$/.test(name) && name !== binary) rmSync(path.join(dir, name), { force: true });
  }
}

/** The checkpoint in `dir`, or null when there is none. A damaged one is an InputFileError. */
export function loadCheckpoint(dir: string): CheckpointData | null {
  const file = checkpointManifestPath(dir);
  if (!existsSync(file)) return null;
  let m: CheckpointManifest;
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as CheckpointManifest;
  } catch (err) {
    throw new InputFileError(file, `unreadable checkpoint manifest (${(err as Error).message})`);
  }
  if (m.format !== CHECKPOINT_FORMAT || m.version !== CHECKPOINT_VERSION) throw new InputFileError(file, `not a ${CHECKPOINT_FORMAT} v${CHECKPOINT_VERSION} file`);
  const binFile = path.join(dir, path.basename(m.binary));
  let bytes: Buffer;
  try {
    bytes = readFileSync(binFile);
  } catch (err) {
    throw new InputFileError(binFile, `cannot read checkpoint data (${(err as Error).message})`);
  }
  const n = m.values;
  if (bytes.byteLength !== 3 * 4 * n) throw new InputFileError(binFile, `has ${bytes.byteLength} bytes, expected ${3 * 4 * n}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const read = (k: number): Float32Array => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * (k * n + i), true);
    return out;
  };
  return { kind: m.kind, config: m.config, weights: read(0), adamM: read(1), adamV: read(2), state: m.state };
}

/** Writes the weights as a normal model (`<dir>/<name>.json/.bin`, atomic) through `saveModel`. */
export function saveFlatModel(
  dir: string,
  name: string,
  model: { kind: string; config: unknown; layout: ParamLayout; weights: Float32Array; extra?: Record<string, unknown> },
): void {
  const params: ParamMap = {};
  for (const e of model.layout.entries) params[e.name] = variableFrom(model.weights.slice(e.offset, e.offset + e.size), e.shape);
  try {
    saveModel(dir, name, { kind: model.kind, config: model.config, params, ...(model.extra ? { extra: model.extra } : {}) });
  } finally {
    tf.dispose(Object.values(params));
  }
}

export async function writeTrainingRecord(dir: string, record: Record<string, unknown>): Promise<void> {
  await atomicWriteFile(path.join(dir, 'training.json'), JSON.stringify(record, null, 1) + '\n');
}
