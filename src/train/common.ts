/**
 * What the VQ-VAE and prior trainers share: engine start-up, the held-out split, batch geometry and
 * the run fingerprint used to refuse a --resume on different settings.
 */
import { createHash } from 'node:crypto';
import { initEngine, type BackendPreference, type EngineInfo } from '../engine/backend.js';
import type { Region } from '../volume/normalise.js';
import { openVolumeFolder, splitVolumes, type TrainingSliceRule, type VolumeEntry } from './dataset.js';
import type { LrSchedule } from './schedule.js';
import { defaultWorkerCount } from './engine.js';
import type { TrainEngineName } from './engine-name.js';
import { stderrSink, type ProgressSink } from './progress.js';
export { evenIndices } from './holdout-slices.js';

export interface CommonTrainOptions {
  region: Region;
  /** Folders (or NIfTI files) of normal volumes. */
  data: string[];
  outDir: string;
  epochs?: number;
  /** Slices (VQ-VAE) or code maps (prior) per step. */
  batch?: number;
  seed?: number;
  resume?: boolean;
  /** Held-out volumes; default 10 % (at least 1 when there are ≥ 3 volumes, none below). */
  holdout?: number;
  stepsPerEpoch?: number;
  maxMinutes?: number;
  lr?: number;
  /** Worker threads (0 = this thread). Default: 2 on wasm (data-parallel), else 0. */
  workers?: number;
  backend?: BackendPreference;
  /** Training engine: tfjs (default), onnx, or auto (ONNX Runtime where it can train the network). */
  engine?: TrainEngineName;
  /** Slices kept per training volume (dataset default 64). */
  maxSlicesPerVolume?: number;
  /** Which slices of a training volume are kept (dataset default 'even'). */
  sliceRule?: TrainingSliceRule;
  /** Minimum foreground fraction of a plane for sliceRule 'foreground'. */
  minForegroundFraction?: number;
  /** Folder caching the preprocessed slice stacks between runs (default: none). */
  stackCache?: string;
  /** Learning-rate warm-up and decay (default: constant `lr`). */
  schedule?: LrSchedule;
  /** Batches whose mean gradient makes one optimiser step (default 1). */
  accumulate?: number;
  log?: (line: string) => void;
  sink?: ProgressSink;
  /** Recorded in training.json. */
  command?: string;
}

export interface PreparedData {
  info: EngineInfo;
  workers: number;
  train: VolumeEntry[];
  holdout: VolumeEntry[];
  skipped: number;
  log: (line: string) => void;
  sink: ProgressSink;
}

export function defaultHoldout(volumes: number): number {
  if (volumes < 3) return 0;
  return Math.max(1, Math.round(0.1 * volumes));
}

/** Starts the engine, reads and splits the data (skipping bad files with one warning each). */
export async function prepareData(opts: CommonTrainOptions, sliceSize: number): Promise<PreparedData> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const info = await initEngine({ prefer: opts.backend ?? 'auto', log });
  const workers = opts.workers ?? (info.backend === 'wasm' ? defaultWorkerCount('wasm') : 0);
  const folder = await openVolumeFolder(opts.data, {
    region: opts.region,
    log: (line) => log(`warning: ${line}`),
    size: sliceSize,
    ...(opts.maxSlicesPerVolume !== undefined ? { maxSlicesPerVolume: opts.maxSlicesPerVolume } : {}),
    ...(opts.sliceRule !== undefined ? { sliceRule: opts.sliceRule } : {}),
    ...(opts.stackCache !== undefined ? { cacheDir: opts.stackCache } : {}),
    ...(opts.minForegroundFraction !== undefined ? { minForegroundFraction: opts.minForegroundFraction } : {}),
  });
  const holdoutCount = opts.holdout ?? defaultHoldout(folder.files.length);
  const { train, holdout } = splitVolumes(folder.files, { holdoutCount, seed: opts.seed ?? 0 });
  const slices = folder.files.reduce((a, e) => a + e.stack.count, 0);
  log(
    `data: ${folder.files.length} volumes (${slices} slices, rule ${opts.sliceRule ?? 'even'}) of ${folder.shape.join('×')} (${folder.skipped.length} skipped), ` +
      `${train.length} for training, ${holdout.length} held out; backend ${info.backend}, ` +
      `${workers === 0 ? 'training in this thread' : `${workers} data-parallel worker threads`}`,
  );
  return { info, workers, train, holdout, skipped: folder.skipped.length, log, sink: opts.sink ?? stderrSink() };
}

/**
 * Slices per volume in a batch of `batch`: the smallest divisor d with batch / d ≤ 8 volumes (the
 * paper's 8 × 8 = 64 at batch 64; 8 volumes × 1 slice at the wasm default of 8).
 */
export function batchGeometry(batch: number): { volumesPerBatch: number; slicesPerVolume: number } {
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a positive integer, got ${batch}`);
  for (let d = 1; d <= batch; d++) {
    if (batch % d === 0 && batch / d <= 8) return { volumesPerBatch: batch / d, slicesPerVolume: d };
  }
  return { volumesPerBatch: 1, slicesPerVolume: batch };
}

export function fingerprint(fields: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex').slice(0, 16);
}
