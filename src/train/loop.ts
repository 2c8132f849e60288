/**
 * The training loop shared by the VQ-VAE and the prior: epochs of Adam steps on batches drawn by the
 * caller, gradient value clipping, held-out evaluation, an end-of-epoch hook (dead-code re-seeding),
 * checkpoints and the best weights after every epoch, and `--resume`.
 *
 * Weights and Adam moments live here as flat Float32Arrays (layout: ./loop-worker.ts); the model
 * runs in a `TrainingEngine` (this thread or worker threads). Adam is plain arithmetic on typed
 * arrays, so its state is saved and restored exactly.
 *
 * Determinism: epoch e draws everything (batch sampling, augmentation, dropout seeds, re-seeding)
 * from createRng(`${seed}:epoch:${e}`), so a run resumed after epoch e repeats, bit for bit, what an
 * uninterrupted run with the same seed, data and worker count computes from epoch e + 1 on.
 */
import { mkdirSync } from 'node:fs';
import { createRng, type Rng } from '../engine/random.js';
import {
  loadCheckpoint,
  saveCheckpoint,
  saveFlatModel,
  writeTrainingRecord,
  type EpochRecord,
  type TrainingState,
} from './checkpoint.js';
import { combineStats, type TrainingEngine } from './engine.js';
import type { BatchStats, ParamLayout, TrainBatch } from './loop-worker.js';
import { createProgress, type ProgressSink } from './progress.js';
import { scheduledLr, type LrSchedule } from './schedule.js';

export interface AdamOptions {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

export const DEFAULT_ADAM: AdamOptions = { lr: 1e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };

/** Clamps every gradient value to [−limit, limit] in place (the paper's grad-value clip, limit 1). */
export function clipValues(grads: Float32Array, limit: number): void {
  for (let i = 0; i < grads.length; i++) {
    const g = grads[i]!;
    if (g > limit) grads[i] = limit;
    else if (g < -limit) grads[i] = -limit;
  }
}

/** a += b, element-wise, in place. */
export function addInto(a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < a.length; i++) a[i] = a[i]! + b[i]!;
}

/** a *= k, element-wise, in place. */
export function scaleInto(a: Float32Array, k: number): void {
  for (let i = 0; i < a.length; i++) a[i] = a[i]! * k;
}

/**
 * One Adam step in place; `t` is the step number after this update (1 for the first). With `clip`,
 * each gradient value is first clamped to [−clip, clip] (as `clipValues`, without changing `grads`),
 * in the same pass: the update runs on the main thread between the workers' steps.
 */
export function adamStep(weights: Float32Array, grads: Float32Array, m: Float32Array, v: Float32Array, t: number, o: AdamOptions, clip = Infinity): void {
  const { beta1, beta2 } = o;
  const a1 = 1 - beta1;
  const a2 = 1 - beta2;
  // lr·m̂/(√v̂ + ε) with m̂ = m/(1 − β1ᵗ), v̂ = v/(1 − β2ᵗ), scaled by √(1 − β2ᵗ) so the loop has no division under the root.
  const root = Math.sqrt(1 - beta2 ** t);
  const step = (o.lr / (1 - beta1 ** t)) * root;
  const epsilon = o.epsilon * root;
  for (let i = 0; i < weights.length; i++) {
    const raw = grads[i]!;
    const g = raw > clip ? clip : raw < -clip ? -clip : raw;
    const mi = beta1 * m[i]! + a1 * g;
    const vi = beta2 * v[i]! + a2 * g * g;
    m[i] = mi;
    v[i] = vi;
    weights[i] = weights[i]! - (step * mi) / (Math.sqrt(vi) + epsilon);
  }
}

/** What the end-of-epoch hook may use and change. */
export interface EpochContext {
  epoch: number;
  rng: Rng;
  weights: Float32Array;
  adamM: Float32Array;
  adamV: Float32Array;
  /** Version the engine should see for `weights` (the hook must bump it via `changed()` after edits). */
  version: number;
  changed(): void;
  lastBatch: TrainBatch;
  /** Statistics of the epoch's training steps (code counts summed over the epoch). */
  trainStats: BatchStats;
  engine: TrainingEngine;
}

export interface LoopSpec {
  /** The network's kind and config (a ModelSpec, or a method's own network trained by its own engine). */
  model: { readonly kind: string; readonly config: unknown };
  /** 'vqvae' or 'pixelsnail': names of the best-weights files. */
  name: string;
  outDir: string;
  engine: TrainingEngine;
  layout: ParamLayout;
  initialWeights: Float32Array;
  epochs: number;
  stepsPerEpoch: number;
  seed: number;
  adam: AdamOptions;
  /** Warm-up and decay of adam.lr by optimiser step (default: constant). */
  schedule?: LrSchedule;
  /** Batches per optimiser step, their gradients averaged (default 1): an effective batch of accumulate × batch. */
  accumulate?: number;
  clip: number;
  resume: boolean;
  /** Stop before an epoch that would end after this many minutes of this session. */
  maxMinutes?: number;
  /** Must equal the checkpoint's on --resume (model, data, seed, batch …). */
  fingerprint: string;
  nextBatch(rng: Rng): TrainBatch;
  holdout: readonly TrainBatch[];
  /** Called before each epoch's first batch is drawn (e.g. to refresh what nextBatch draws from). */
  beforeEpoch?(epoch: number, weights: Float32Array): Promise<void>;
  /** Extra numbers for the epoch record (e.g. { reseeded: 3 }). */
  afterEpoch?(ctx: EpochContext): Promise<Partial<EpochRecord>>;
  /** Data-dependent initialisation of a fresh run (not called on resume); may edit the weights in place. */
  initialise?(weights: Float32Array, engine: TrainingEngine): Promise<void>;
  /** Codebook size when the training stats carry code counts. */
  codebookSize?: number;
  /** Static fields of training.json (command, backend, data …). */
  record: Record<string, unknown>;
  log: (line: string) => void;
  sink: ProgressSink;
}

export interface LoopResult {
  state: TrainingState;
  weights: Float32Array;
  /** Why the loop ended. */
  stopped: 'epochs' | 'max-minutes';
}

/**
 * Metrics combined from parts that an engine reports as count-weighted means: recFg (L1 over foreground
 * pixels) from recFgSum and fgFraction, nllFg (NLL over codes whose patch holds foreground) from nllFgSum
 * and codeFgFraction (see onnx-engine.ts foregroundL1Parts / foregroundNllParts); the parts are removed.
 */
export function deriveMetrics(means: Record<string, number>, batches: readonly TrainBatch[]): Record<string, number> {
  const { recFgSum, fgFraction, nllFgSum, codeFgFraction, ...rest } = means;
  const out: Record<string, number> = rest;
  const first = batches[0];
  if (recFgSum !== undefined && fgFraction !== undefined) {
    const pixels = first !== undefined && first.kind === 'images' ? first.size * first.size : NaN;
    out.recFg = fgFraction > 0 ? recFgSum / (fgFraction * pixels) : NaN;
  }
  if (nllFgSum !== undefined && codeFgFraction !== undefined) {
    const cells = first !== undefined && first.kind === 'codes' ? first.height * first.width : NaN;
    out.nllFg = codeFgFraction > 0 ? nllFgSum / (codeFgFraction * cells) : NaN;
  }
  return out;
}

/** Perplexity exp(H) and number of used codes of a histogram. */
export function codebookUsage(counts: Int32Array): { perplexity: number; used: number } {
  const total = counts.reduce((a, c) => a + c, 0);
  let entropy = 0;
  let used = 0;
  for (const c of counts) {
    if (c === 0) continue;
    used++;
    const p = c / total;
    entropy -= p * Math.log(p);
  }
  return { perplexity: Math.exp(entropy), used };
}

function fmt(x: number | undefined): string {
  return x === undefined ? '-' : Math.abs(x) >= 0.01 ? x.toFixed(4) : x.toExponential(3);
}

export function describeEpoch(r: EpochRecord, epochs: number): string {
  const parts = [`epoch ${r.epoch}/${epochs}`, `train loss ${fmt(r.train.loss)}`];
  if (r.train.rec !== undefined) parts.push(`rec ${fmt(r.train.rec)}`);
  if (r.holdout.loss !== undefined) parts.push(`held-out loss ${fmt(r.holdout.loss)}`);
  if (r.holdout.rec !== undefined) parts.push(`held-out rec ${fmt(r.holdout.rec)}`);
  if (r.holdout.recFg !== undefined) parts.push(`held-out brain L1 ${fmt(r.holdout.recFg)}`);
  if (r.holdout.nllFg !== undefined) parts.push(`held-out brain NLL ${fmt(r.holdout.nllFg)}`);
  if (r.holdout.kl !== undefined) parts.push(`held-out KL ${fmt(r.holdout.kl)}`);
  if (r.codesUsed !== undefined) parts.push(`codes used ${r.codesUsed}`, `perplexity ${r.perplexity!.toFixed(1)}`);
  if (r.reseeded !== undefined) parts.push(`re-seeded ${r.reseeded}`);
  if (r.lr !== undefined) parts.push(`lr ${r.lr.toExponential(2)}`);
  parts.push(`${r.seconds.toFixed(1)} s`);
  return parts.join(', ');
}

function freshState(fingerprint: string): TrainingState {
  return { epoch: 0, step: 0, bestHoldout: null, bestEpoch: null, wallSeconds: 0, history: [], fingerprint };
}

export async function runTrainingLoop(spec: LoopSpec): Promise<LoopResult> {
  mkdirSync(spec.outDir, { recursive: true });
  const n = spec.layout.total;
  let weights = spec.initialWeights;
  let adamM: Float32Array = new Float32Array(n);
  let adamV: Float32Array = new Float32Array(n);
  let state = freshState(spec.fingerprint);
  if (spec.resume) {
    const saved = loadCheckpoint(spec.outDir);
    if (saved === null) {
      spec.log(`no checkpoint in ${spec.outDir}: starting from scratch`);
    } else {
      if (saved.kind !== spec.model.kind || saved.state.fingerprint !== spec.fingerprint || saved.weights.length !== n) {
        throw new Error(
          `cannot resume from ${spec.outDir}: its checkpoint was made with a different model, data, seed or batch ` +
            `(expected ${spec.fingerprint}, found ${saved.state.fingerprint})`,
        );
      }
      ({ weights, adamM, adamV, state } = saved);
      spec.log(`resuming after epoch ${state.epoch} (step ${state.step}, best held-out ${state.bestHoldout ?? '-'})`);
    }
  }

  if (state.epoch === 0 && spec.initialise !== undefined) await spec.initialise(weights, spec.engine);
  let version = 1;
  const sessionStart = performance.now();
  let lastEpochSeconds = 0;
  let stopped: LoopResult['stopped'] = 'epochs';
  for (let epoch = state.epoch + 1; epoch <= spec.epochs; epoch++) {
    const sessionSeconds = (performance.now() - sessionStart) / 1000;
    if (spec.maxMinutes !== undefined && sessionSeconds + lastEpochSeconds > spec.maxMinutes * 60) {
      spec.log(`stopping before epoch ${epoch}: it would end after --max-minutes ${spec.maxMinutes}`);
      stopped = 'max-minutes';
      break;
    }
    const t0 = performance.now();
    if (spec.beforeEpoch !== undefined) await spec.beforeEpoch(epoch, weights);
    const rng = createRng(`${spec.seed}:epoch:${epoch}`);
    const progress = createProgress(spec.sink, `epoch ${epoch}/${spec.epochs}`);
    const stepStats: BatchStats[] = [];
    const accumulate = spec.accumulate ?? 1;
    if (!Number.isInteger(accumulate) || accumulate < 1) throw new RangeError(`accumulate must be a positive integer, got ${accumulate}`);
    let batch = spec.nextBatch(rng);
    let lastBatch = batch;
    let lr = spec.adam.lr;
    for (let s = 1; s <= spec.stepsPerEpoch; s++) {
      let sum: Float32Array | null = null;
      let stats: BatchStats | null = null;
      for (let a = 1; a <= accumulate; a++) {
        const pending = spec.engine.gradients(weights, version, batch, rng.seed());
        // Prepared while the engine computes (the draw order is the same either way).
        const next = s < spec.stepsPerEpoch || a < accumulate ? spec.nextBatch(rng) : null;
        const result = await pending;
        stats = result.stats;
        if (!Number.isFinite(stats.means.loss!)) throw new Error(`training diverged: loss ${stats.means.loss} at epoch ${epoch}, step ${s}`);
        if (accumulate === 1) sum = result.grads;
        else if (sum === null) sum = Float32Array.from(result.grads);
        else addInto(sum, result.grads);
        stepStats.push(stats);
        lastBatch = batch;
        if (next !== null) batch = next;
      }
      const grads = sum!;
      if (accumulate > 1) scaleInto(grads, 1 / accumulate);
      state.step++;
      lr = scheduledLr(spec.adam.lr, state.step, spec.schedule);
      adamStep(weights, grads, adamM, adamV, state.step, spec.schedule === undefined ? spec.adam : { ...spec.adam, lr }, spec.clip);
      version++;
      const perStep = (performance.now() - t0) / 1000 / s;
      progress.update(s, spec.stepsPerEpoch, `loss ${fmt(stats!.means.loss)} ${perStep.toFixed(2)} s/step`);
    }
    const trainStats = combineStats(stepStats);
    const record: EpochRecord = { epoch, steps: spec.stepsPerEpoch, train: trainStats.means, holdout: {}, seconds: 0 };
    if (spec.schedule !== undefined) record.lr = lr;
    if (trainStats.codeCounts !== undefined) {
      const usage = codebookUsage(trainStats.codeCounts);
      record.codesUsed = usage.used;
      record.perplexity = usage.perplexity;
    }
    if (spec.afterEpoch !== undefined) {
      const ctx: EpochContext = {
        epoch,
        rng,
        weights,
        adamM,
        adamV,
        version,
        changed: () => {
          version++;
          ctx.version = version;
        },
        lastBatch,
        trainStats,
        engine: spec.engine,
      };
      Object.assign(record, await spec.afterEpoch(ctx));
    }
    if (spec.holdout.length > 0) record.holdout = deriveMetrics((await spec.engine.evaluate(weights, version, spec.holdout)).means, spec.holdout);
    record.seconds = (performance.now() - t0) / 1000;
    lastEpochSeconds = record.seconds;
    state.epoch = epoch;
    state.wallSeconds += record.seconds;
    state.history.push(record);
    progress.line(describeEpoch(record, spec.epochs));

    // Best = lowest held-out loss; with nothing held out, the latest weights.
    const score = record.holdout.loss ?? record.train.loss!;
    const improved = spec.holdout.length === 0 || state.bestHoldout === null || score < state.bestHoldout;
    if (improved) {
      state.bestHoldout = spec.holdout.length > 0 ? score : null;
      state.bestEpoch = epoch;
      saveFlatModel(spec.outDir, spec.name, {
        kind: spec.model.kind,
        config: spec.model.config,
        layout: spec.layout,
        weights,
        extra: { training: summary(spec, state) },
      });
    }
    await saveCheckpoint(spec.outDir, { kind: spec.model.kind, config: spec.model.config, weights, adamM, adamV, state });
    await writeTrainingRecord(spec.outDir, { ...spec.record, ...summary(spec, state), history: state.history });
  }
  if (state.epoch === 0 && stopped === 'epochs' && spec.epochs > 0) throw new Error('no epoch was run');
  return { state, weights, stopped };
}

function summary(spec: LoopSpec, state: TrainingState): Record<string, unknown> {
  const last = state.history[state.history.length - 1];
  return {
    kind: spec.model.kind,
    seed: spec.seed,
    epochsDone: state.epoch,
    epochsPlanned: spec.epochs,
    steps: state.step,
    stepsPerEpoch: spec.stepsPerEpoch,
    wallSeconds: Math.round(state.wallSeconds * 10) / 10,
    bestEpoch: state.bestEpoch,
    bestHoldoutLoss: state.bestHoldout,
    final: last === undefined ? null : { train: last.train, holdout: last.holdout, codesUsed: last.codesUsed, perplexity: last.perplexity },
    workers: spec.engine.workers,
    adam: spec.adam,
    ...(spec.schedule !== undefined ? { schedule: spec.schedule } : {}),
    ...(spec.accumulate !== undefined && spec.accumulate > 1 ? { accumulate: spec.accumulate } : {}),
    clip: spec.clip,
  };
}
