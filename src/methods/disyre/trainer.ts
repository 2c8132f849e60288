/**
 * `trainDisyre`: trains the restoration U-Net on corrupted slices of normal volumes with ONNX Runtime
 * (./train-engine.ts) in the shared loop (src/train/loop.ts: Adam on the host, grad-value clip 1,
 * checkpoints with both Adam moments after every epoch, --resume, --max-minutes, training.json with
 * the wall time summed over sessions, best weights = lowest held-out loss in disyre.json/.bin).
 *
 * Data: every kept slice of the training volumes (raw intensities, resized to the network's side)
 * with at least `minTissue` of its pixels above the tissue threshold (the paper drops empty planes).
 * A sample: a random training slice (flipped left–right with probability ½), a donor slice from
 * another training volume, and ./corrupt.ts's corruption of the first with patches of the second;
 * the network learns x̂(corrupted, t, z) ≈ clean under MSE. Held out: fixed corrupted batches of the
 * held-out volumes (the same every epoch), so the held-out loss is comparable across epochs.
 *
 * Determinism: epoch e draws from createRng(`${seed}:epoch:${e}`) (the loop), each sample's
 * corruption from its own child seed; same data + seed = same batches, so a resumed run repeats an
 * uninterrupted one.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createRng } from '../../engine/random.js';
import { loadCheckpoint } from '../../train/checkpoint.js';
import { initEngine } from '../../engine/backend.js';
import { defaultHoldout, fingerprint } from '../../train/common.js';
import { openVolumeFolder, splitVolumes } from '../../train/dataset.js';
import { DEFAULT_ADAM, runTrainingLoop, type LoopResult } from '../../train/loop.js';
import { stderrSink, type ProgressSink } from '../../train/progress.js';
import type { Region } from '../../volume/normalise.js';
import { DISYRE_KIND, DISYRE_NAME, validateDisyreConfig, type DisyreConfig } from './config.js';
import { DEFAULT_CORRUPTION, type CorruptionOptions } from './corrupt.js';
import { DISYRE_SLICE_RULES, drawBatch, sourceOf } from './samples.js';
import { describeOnnxEngine, onnxSessionsForWorkers } from '../../train/onnx-engine.js';
import { createDisyreTrainingEngine, disyreLayout, disyreStartWeights, initialDisyreWeights, type DisyreBatch } from './train-engine.js';


export const DEFAULT_DISYRE_TRAINING = Object.freeze({
  batch: 16,
  epochs: 400,
  stepsPerEpoch: 50,
  lr: 5e-4,
  ...DISYRE_SLICE_RULES,
  holdoutBatches: 4,
});

export interface DisyreTrainOptions {
  readonly region: Region;
  readonly data: readonly string[];
  readonly outDir: string;
  readonly config: DisyreConfig;
  readonly corruption?: CorruptionOptions;
  readonly epochs?: number;
  readonly batch?: number;
  readonly stepsPerEpoch?: number;
  readonly seed?: number;
  readonly lr?: number;
  readonly resume?: boolean;
  readonly maxMinutes?: number;
  /** Held-out volumes (default 10 %, at least 1 from 3 volumes on). */
  readonly holdout?: number;
  /** Slices kept per volume (evenly spread). */
  readonly slicesPerVolume?: number;
  /** ONNX Runtime intra-op threads per session (default: every core / sessions). */
  readonly threads?: number;
  /** Data-parallel worker threads, one session each (default: `defaultOnnxSessions()`; 0 or 1 = this thread; `onnxSessionsForWorkers`). */
  readonly workers?: number;
  /** Warm start: the U-Net in this folder (disyre.json/.bin, same config; fresh Adam state); part of the run's fingerprint, so a --resume names it again. */
  readonly initFrom?: string;
  readonly command?: string;
  readonly log?: (line: string) => void;
  readonly sink?: ProgressSink;
}

export interface TrainOutcome extends LoopResult {
  readonly outDir: string;
}

/** One start of a run: when, how, and from which epoch (0: fresh). */
export interface TrainingSession {
  readonly started: string;
  readonly command: string | null;
  readonly resume: boolean;
  readonly fromEpoch: number;
}

/** The sessions recorded in `<outDir>/training.json` so far (none when it is absent or unreadable). */
export function previousSessions(outDir: string): TrainingSession[] {
  const file = path.join(outDir, 'training.json');
  if (!existsSync(file)) return [];
  try {
    const record = JSON.parse(readFileSync(file, 'utf8')) as { sessions?: TrainingSession[] };
    return Array.isArray(record.sessions) ? record.sessions : [];
  } catch {
    return [];
  }
}

export async function trainDisyre(opts: DisyreTrainOptions): Promise<TrainOutcome> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const cfg = validateDisyreConfig(opts.config);
  const corruption = opts.corruption ?? DEFAULT_CORRUPTION;
  const seed = opts.seed ?? 0;
  // TF.js only initialises and saves the flat weights (cpu backend: no threads of its own).
  await initEngine({ prefer: 'cpu', log: () => undefined });
  const batch = opts.batch ?? DEFAULT_DISYRE_TRAINING.batch;
  const stepsPerEpoch = opts.stepsPerEpoch ?? DEFAULT_DISYRE_TRAINING.stepsPerEpoch;
  const epochs = opts.epochs ?? DEFAULT_DISYRE_TRAINING.epochs;
  const minTissue = DEFAULT_DISYRE_TRAINING.minTissue;
  const folder = await openVolumeFolder(opts.data, {
    region: opts.region,
    size: cfg.inputSize,
    normalisation: cfg.normalisation,
    maxSlicesPerVolume: opts.slicesPerVolume ?? DEFAULT_DISYRE_TRAINING.slicesPerVolume,
    log: (line) => log(`warning: ${line}`),
  });
  const { train, holdout } = splitVolumes(folder.files, { holdoutCount: opts.holdout ?? defaultHoldout(folder.files.length), seed });
  const trainSource = sourceOf(train, corruption, minTissue);
  const holdoutBatches: DisyreBatch[] = [];
  if (holdout.length > 0) {
    const held = sourceOf(holdout, corruption, minTissue);
    const rng = createRng(`${seed}:holdout`);
    for (let i = 0; i < DEFAULT_DISYRE_TRAINING.holdoutBatches; i++) holdoutBatches.push(drawBatch(held, cfg.inputSize, batch, rng, corruption));
  }
  log(
    `data: ${folder.files.length} volumes (${folder.skipped.length} skipped), ${train.length} for training ` +
      `(${trainSource.usable.reduce((a, u) => a + u.length, 0)} slices with tissue), ${holdout.length} held out; ${cfg.inputSize}×${cfg.inputSize} slices`,
  );
  const layout = disyreLayout(cfg);
  const fromEpoch = opts.resume ? (loadCheckpoint(opts.outDir)?.state.epoch ?? 0) : 0;
  const sessions: TrainingSession[] = [
    ...(opts.resume ? previousSessions(opts.outDir) : []),
    { started: new Date().toISOString(), command: opts.command ?? null, resume: opts.resume ?? false, fromEpoch },
  ];
  const start = opts.initFrom !== undefined ? await disyreStartWeights(opts.initFrom, cfg, seed) : null;
  if (start !== null) log(`warm start from ${start.label}`);
  const engine = await createDisyreTrainingEngine(cfg, {
    sessions: onnxSessionsForWorkers(opts.workers),
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
  });
  log(`training engine: ${describeOnnxEngine(engine)}; ${layout.total} parameters`);
  const adam = { ...DEFAULT_ADAM, lr: opts.lr ?? DEFAULT_DISYRE_TRAINING.lr };
  try {
    const result = await runTrainingLoop({
      model: { kind: DISYRE_KIND, config: cfg },
      name: DISYRE_NAME,
      outDir: opts.outDir,
      engine,
      layout,
      initialWeights: start !== null ? start.weights : await initialDisyreWeights(cfg, seed),
      epochs,
      stepsPerEpoch,
      seed,
      adam,
      clip: 1,
      resume: opts.resume ?? false,
      ...(opts.maxMinutes !== undefined ? { maxMinutes: opts.maxMinutes } : {}),
      fingerprint: fingerprint({
        kind: DISYRE_KIND,
        cfg,
        corruption,
        seed,
        batch,
        stepsPerEpoch,
        lr: adam.lr,
        minTissue,
        train: train.map((e) => e.file),
        holdout: holdout.map((e) => e.file),
        ...(start !== null ? { initFrom: start.label } : {}),
      }),
      nextBatch: (rng) => drawBatch(trainSource, cfg.inputSize, batch, rng, corruption),
      holdout: holdoutBatches,
      record: {
        command: opts.command ?? null,
        model: DISYRE_KIND,
        region: opts.region,
        config: cfg,
        corruption,
        engine: 'onnx',
        threads: engine.threads,
        onnxSessions: engine.sessions,
        batch,
        minTissue,
        trainVolumes: train.map((e) => e.file),
        holdoutVolumes: holdout.map((e) => e.file),
        skippedFiles: folder.skipped.length,
        initFrom: start?.label ?? null,
        sessions,
      },
      log,
      sink: opts.sink ?? stderrSink(),
    });
    return { ...result, outDir: opts.outDir };
  } finally {
    await engine.close();
  }
}
