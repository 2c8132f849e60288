/**
 * The run every trainer shares (VQ-VAE, PixelSNAIL prior, LSGS transformer, VAE): flat start weights,
 * Adam, the run fingerprint, the training engine on the prepared data's backend and workers, the loop
 * with grad-value clip 1, --resume and --max-minutes, training.json with the same static fields.
 */import type { PresetName } from '../models/config.js';
import { disposeParams, type ParamMap } from '../models/params.js';
import { fingerprint, type CommonTrainOptions, type PreparedData } from './common.js';
import { createChosenTrainingEngine } from './engine-choice.js';
import { DEFAULT_ADAM, runTrainingLoop, type AdamOptions, type LoopResult, type LoopSpec } from './loop.js';
import { flattenParams, paramLayout, type ModelSpec, type ParamLayout } from './loop-worker.js';
import { validateSchedule, type LrSchedule } from './schedule.js';

export interface TrainOutcome extends LoopResult {
  outDir: string;
  backend: string;
  workers: number;
}

/** Freshly initialised parameters as flat weights in `layout` order; the tensors are disposed. */
function flatInitialWeights(params: ParamMap, layout: ParamLayout): Float32Array {
  const weights = flattenParams(params, layout);
  disposeParams(params);
  return weights;
}

/** The trainer's own fields of training.json, in their place among the shared ones. */
export interface TrainerRecord {
  /** After the config (e.g. the frozen VQ-VAE folder). */
  readonly details?: Record<string, unknown>;
  /** After the batch size (e.g. batch geometry, augmentation). */
  readonly batching?: Record<string, unknown>;
}

/** What a trainer decides; the rest of the run comes from the options and the data. */
export interface TrainerSpec extends Pick<LoopSpec, 'epochs' | 'stepsPerEpoch' | 'seed' | 'nextBatch' | 'holdout' | 'beforeEpoch' | 'afterEpoch' | 'initialise' | 'codebookSize'> {
  readonly model: ModelSpec;
  readonly batch: number;
  /** Fresh parameters (flattened, then disposed) or flat start weights, in `paramLayout(model)` order. */
  readonly start: ParamMap | Float32Array;
  /** Fingerprint fields after the shared ones (kind, config, seed, batch, steps per epoch, learning rate). */
  readonly fingerprint: Record<string, unknown>;
  readonly record?: TrainerRecord;
}

/**
 * Trains `spec` with Adam (learning rate `opts.lr` or the default) and writes its outputs to
 * `opts.outDir`; the best weights are `<model kind>.json/.bin`.
 */
export async function runTrainer(opts: CommonTrainOptions & { preset: PresetName }, data: PreparedData, spec: TrainerSpec): Promise<TrainOutcome> {
  const { model, seed, batch, stepsPerEpoch } = spec;
  const layout = paramLayout(model);
  const initialWeights = spec.start instanceof Float32Array ? spec.start : flatInitialWeights(spec.start, layout);
  const adam: AdamOptions = { ...DEFAULT_ADAM, lr: opts.lr ?? DEFAULT_ADAM.lr };
  const schedule = resolveSchedule(opts.schedule, spec.epochs * stepsPerEpoch);
  const accumulate = opts.accumulate ?? 1;
  const { engine, name: engineName } = await createChosenTrainingEngine(opts.engine ?? 'tfjs', model, { workers: data.workers, backend: data.info.backend === 'cpu' ? 'cpu' : 'wasm' }, data.log);
  try {
    const result = await runTrainingLoop({
      model,
      name: model.kind,
      outDir: opts.outDir,
      engine,
      layout,
      initialWeights,
      epochs: spec.epochs,
      stepsPerEpoch,
      seed,
      adam,
      ...(schedule !== undefined ? { schedule } : {}),
      ...(accumulate > 1 ? { accumulate } : {}),
      clip: 1,
      resume: opts.resume ?? false,
      ...(opts.maxMinutes !== undefined ? { maxMinutes: opts.maxMinutes } : {}),
      fingerprint: fingerprint({ kind: model.kind, cfg: model.config, seed, batch, stepsPerEpoch, lr: adam.lr, ...spec.fingerprint, ...recipeFingerprint(opts) }),
      nextBatch: spec.nextBatch,
      holdout: spec.holdout,
      afterEpoch: spec.afterEpoch,
      ...(spec.beforeEpoch !== undefined ? { beforeEpoch: spec.beforeEpoch } : {}),
      initialise: spec.initialise,
      codebookSize: spec.codebookSize,
      record: {
        command: opts.command ?? null,
        model: model.kind,
        preset: opts.preset,
        region: opts.region,
        config: model.config,
        ...spec.record?.details,
        backend: data.info.backend,
        engine: engineName,
        batch,
        ...spec.record?.batching,
        trainVolumes: data.train.map((e) => e.file),
        holdoutVolumes: data.holdout.map((e) => e.file),
        skippedFiles: data.skipped,
        slices: { rule: opts.sliceRule ?? 'even', ...(opts.minForegroundFraction !== undefined ? { minForegroundFraction: opts.minForegroundFraction } : {}), ...(opts.maxSlicesPerVolume !== undefined ? { maxSlicesPerVolume: opts.maxSlicesPerVolume } : {}) },
        ...(accumulate > 1 ? { accumulate, effectiveBatch: accumulate * batch } : {}),
      },
      log: data.log,
      sink: data.sink,
    });
    return { ...result, outDir: opts.outDir, backend: data.info.backend, workers: engine.workers };
  } finally {
    await engine.close();
  }
}

/** The schedule with a cosine decay's length defaulting to the whole run (epochs × steps per epoch). */
export function resolveSchedule(s: LrSchedule | undefined, runSteps: number): LrSchedule | undefined {
  if (s === undefined) return undefined;
  const out: LrSchedule = s.decay === 'cosine' && s.totalSteps === undefined ? { ...s, totalSteps: Math.max(1, runSteps) } : s;
  validateSchedule(out);
  return out;
}

/**
 * Fingerprint fields of the recipe options, present only when set, so runs without them keep their
 * fingerprints. The cosine length is left out: a resumed run may change --epochs (the curve stretches).
 */
export function recipeFingerprint(opts: CommonTrainOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (opts.sliceRule !== undefined && opts.sliceRule !== 'even') out.slices = { rule: opts.sliceRule, min: opts.minForegroundFraction ?? null, max: opts.maxSlicesPerVolume ?? null };
  if (opts.schedule !== undefined) {
    const { totalSteps: _ignored, ...rest } = opts.schedule;
    out.schedule = rest;
  }
  if (opts.accumulate !== undefined && opts.accumulate > 1) out.accumulate = opts.accumulate;
  return out;
}
