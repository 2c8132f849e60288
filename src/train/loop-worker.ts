/**
 * The model side of training: gradients, evaluation, encoding and latents of one batch, given the
 * weights as one flat Float32Array. The trainer keeps the weights and the Adam state as typed arrays
 * (see ./loop.ts) and hands them to a `ModelRunner`, either in this thread or in a worker thread
 * (this file is also the worker-pool job module: `setup` / `run`).
 *
 * The flat layout is the parameter names in sorted order, each tensor's values in row-major order,
 * the same order `saveModel` writes.
 */
import * as tf from '@tensorflow/tfjs';
import type { PixelSnailConfig, VqvaeConfig } from '../models/config.js';
import type { ParamMap, ParamSpec } from '../models/params.js';
import { layoutOfSpecs, type ParamLayout } from './param-layout.js';
import { initPixelSnail, pixelsnailParamSpecs, priorLoss } from '../methods/lsr/pixelsnail.js';
import { initVqvae, vqvaeEncode, vqvaeEncodeCodes, vqvaeLoss, vqvaeParamSpecs } from '../models/vqvae.js';
import { initVae, vaeLoss, vaeParamSpecs } from '../methods/vae/vae.js';
import type { VaeConfig } from '../methods/vae/config.js';
import { initTransformer, transformerParamSpecs, transformerRepairLoss, type TransformerConfig } from '../methods/lsgs/transformer.js';

export type TrainableKind = 'vqvae' | 'pixelsnail' | 'vae' | 'transformer';

export type ModelSpec =
  | { kind: 'vqvae'; config: VqvaeConfig }
  | { kind: 'pixelsnail'; config: PixelSnailConfig }
  | { kind: 'vae'; config: VaeConfig }
  | { kind: 'transformer'; config: TransformerConfig };

/** Slices for the VQ-VAE: count × size × size, W fastest. */
export interface ImageBatch {
  kind: 'images';
  images: Float32Array;
  positions: Float32Array;
  count: number;
  size: number;
  /** The normalised value of empty space; when set, an evaluation may report foreground-only metrics (pixels ≠ background). */
  background?: number;
}

/** Code maps for the prior: count × height × width int32. */
export interface CodeBatch {
  kind: 'codes';
  codes: Int32Array;
  positions: Float32Array;
  count: number;
  height: number;
  width: number;
  /** Transformer repair training (src/methods/lsgs/tamper.ts): `codes` is the tampered input, these the originals. */
  targets?: Int32Array;
  /** Per-position loss weights, each map's summing to 1. */
  lossWeights?: Float32Array;
  /** 1 where the input code was tampered. */
  tampered?: Uint8Array;
  /** 1 where the code's image patch holds foreground; when set, an evaluation may report foreground-only NLL. */
  foreground?: Uint8Array;
}

export type TrainBatch = ImageBatch | CodeBatch;

/** Metric means of one batch (mean over its elements) and how many samples they cover. */
export interface BatchStats {
  count: number;
  /** vqvae: loss, rec, codebook, commit; pixelsnail: loss (= NLL in nats per code); vae: loss (−ELBO per pixel), rec (L1), kl, recNll (nats per slice). */
  means: Record<string, number>;
  /** vqvae: how many latent positions chose each code. */
  codeCounts?: Int32Array;
}

/** `version` identifies the weights' contents: a runner reloads them only when it changes. */
interface WeightsRef {
  weights: Float32Array;
  version: number;
}

export type RunnerTask = WeightsRef &
  (
    | { op: 'gradients'; batch: TrainBatch; seed: number }
    | { op: 'evaluate'; batch: TrainBatch }
    | { op: 'encode'; batch: ImageBatch }
    | { op: 'latents'; batch: ImageBatch }
  );

export interface RunnerResult {
  grads?: Float32Array;
  stats?: BatchStats;
  codes?: Int32Array;
  latents?: Float32Array;
}

export type { ParamLayout, ParamLayoutEntry } from './param-layout.js';

export function paramSpecsOf(model: ModelSpec): ParamSpec[] {
  if (model.kind === 'vae') return vaeParamSpecs(model.config);
  if (model.kind === 'transformer') return transformerParamSpecs(model.config);
  return model.kind === 'vqvae' ? vqvaeParamSpecs(model.config) : pixelsnailParamSpecs(model.config);
}

/** Fresh parameters of any trainable model. */
export function initModel(model: ModelSpec, seed: number | string): ParamMap {
  if (model.kind === 'vqvae') return initVqvae(model.config, seed);
  if (model.kind === 'vae') return initVae(model.config, seed);
  return model.kind === 'transformer' ? initTransformer(model.config, seed) : initPixelSnail(model.config, seed);
}

/** Sorted-name flat layout of a model's parameters. */
export function paramLayout(model: ModelSpec): ParamLayout {
  return layoutOfSpecs(paramSpecsOf(model));
}

export function flattenParams(params: ParamMap, layout: ParamLayout): Float32Array {
  const flat = new Float32Array(layout.total);
  for (const e of layout.entries) {
    const v = params[e.name];
    if (v === undefined) throw new Error(`parameter ${e.name} is missing`);
    flat.set(v.dataSync() as Float32Array, e.offset);
  }
  return flat;
}

/** Holds one copy of the model's variables and runs tasks on them. */
export class ModelRunner {
  readonly layout: ParamLayout;
  private readonly params: ParamMap;
  private loadedVersion: number | null = null;

  constructor(readonly model: ModelSpec) {
    this.layout = paramLayout(model);
    this.params = initModel(model, 0);
  }

  /** Copies `weights` into the variables (skipped when this version is already loaded). */
  setWeights(weights: Float32Array, version: number): void {
    if (weights.length !== this.layout.total) {
      throw new Error(`weights hold ${weights.length} values, the ${this.model.kind} layout ${this.layout.total}`);
    }
    if (this.loadedVersion === version) return;
    for (const e of this.layout.entries) {
      const t = tf.tensor(weights.subarray(e.offset, e.offset + e.size), e.shape, 'float32');
      this.params[e.name]!.assign(t);
      t.dispose();
    }
    this.loadedVersion = version;
  }

  run(task: RunnerTask): RunnerResult {
    this.setWeights(task.weights, task.version);
    switch (task.op) {
      case 'gradients':
        return this.gradients(task.batch, task.seed);
      case 'evaluate':
        return { stats: this.evaluate(task.batch) };
      case 'encode':
        return { codes: this.encode(task.batch) };
      case 'latents':
        return { latents: this.latents(task.batch) };
    }
  }

  private vqvaeConfig(): VqvaeConfig {
    if (this.model.kind !== 'vqvae') throw new Error('this operation needs a VQ-VAE');
    return this.model.config;
  }

  private imageTensors(batch: ImageBatch): { x: tf.Tensor4D; pos: tf.Tensor1D } {
    return {
      x: tf.tensor4d(batch.images, [batch.count, batch.size, batch.size, 1]),
      pos: tf.tensor1d(batch.positions),
    };
  }

  /** The scalar losses of a forward pass (inside a tidy / gradient scope); extra tensors are kept. */
  private losses(batch: TrainBatch, training: boolean, seed: number, kept: tf.Tensor[]): tf.Scalar {
    if (this.model.kind === 'vqvae') {
      if (batch.kind !== 'images') throw new Error('the VQ-VAE trains on image batches');
      const { x, pos } = this.imageTensors(batch);
      const out = vqvaeLoss(this.params, this.model.config, x, pos, { training, seed });
      kept.push(tf.keep(out.rec), tf.keep(out.codebook), tf.keep(out.commit), tf.keep(out.indices));
      return out.loss;
    }
    if (this.model.kind === 'vae') {
      if (batch.kind !== 'images') throw new Error('the VAE trains on image batches');
      const { x, pos } = this.imageTensors(batch);
      const out = vaeLoss(this.params, this.model.config, x, pos, { training, seed });
      kept.push(tf.keep(out.l1), tf.keep(out.kl), tf.keep(out.recNll));
      return out.loss;
    }
    if (batch.kind !== 'codes') throw new Error('the prior trains on code batches');
    if (this.model.kind === 'transformer') {
      const shape: [number, number, number] = [batch.count, batch.height, batch.width];
      const cells = batch.height * batch.width;
      const out = transformerRepairLoss(
        this.params,
        this.model.config,
        tf.tensor3d(batch.codes, shape, 'int32'),
        tf.tensor3d(batch.targets ?? batch.codes, shape, 'int32'),
        tf.tensor3d(batch.lossWeights ?? new Float32Array(batch.codes.length).fill(1 / cells), shape),
        tf.tensor3d(batch.tampered ? Float32Array.from(batch.tampered) : new Float32Array(batch.codes.length), shape),
        tf.tensor1d(batch.positions),
        { training, seed },
      );
      kept.push(tf.keep(out.ceTampered), tf.keep(out.ceUntampered));
      return out.loss;
    }
    const codes = tf.tensor3d(batch.codes, [batch.count, batch.height, batch.width], 'int32');
    return priorLoss(this.params, this.model.config, codes, tf.tensor1d(batch.positions), { training, seed });
  }

  private statsOf(batch: TrainBatch, loss: tf.Scalar, kept: tf.Tensor[]): BatchStats {
    const means: Record<string, number> = { loss: loss.dataSync()[0]! };
    if (this.model.kind === 'vae') {
      const [l1, kl, recNll] = kept;
      return { count: batch.count, means: { ...means, rec: l1!.dataSync()[0]!, kl: kl!.dataSync()[0]!, recNll: recNll!.dataSync()[0]! } };
    }
    if (this.model.kind === 'transformer') {
      const [tampered, untampered] = kept;
      if (batch.kind === 'codes' && batch.tampered?.some((t) => t === 1)) means.ceTampered = tampered!.dataSync()[0]!;
      means.ceUntampered = untampered!.dataSync()[0]!;
      return { count: batch.count, means };
    }
    if (this.model.kind !== 'vqvae') return { count: batch.count, means };
    const [rec, codebook, commit, indices] = kept;
    means.rec = rec!.dataSync()[0]!;
    means.codebook = codebook!.dataSync()[0]!;
    means.commit = commit!.dataSync()[0]!;
    const codeCounts = new Int32Array(this.model.config.codebookSize);
    for (const i of indices!.dataSync() as Int32Array) codeCounts[i]++;
    return { count: batch.count, means, codeCounts };
  }

  private gradients(batch: TrainBatch, seed: number): RunnerResult {
    const kept: tf.Tensor[] = [];
    const vars = this.layout.entries.map((e) => this.params[e.name]!);
    const { value, grads } = tf.variableGrads(() => this.losses(batch, true, seed, kept), vars);
    const flat = new Float32Array(this.layout.total);
    this.layout.entries.forEach((e, i) => {
      const g = grads[vars[i]!.name];
      if (g !== undefined) flat.set(g.dataSync() as Float32Array, e.offset);
    });
    const stats = this.statsOf(batch, value, kept);
    tf.dispose([value, ...Object.values(grads), ...kept]);
    return { grads: flat, stats };
  }

  private evaluate(batch: TrainBatch): BatchStats {
    const kept: tf.Tensor[] = [];
    const loss = tf.tidy(() => this.losses(batch, false, 0, kept));
    const stats = this.statsOf(batch, loss, kept);
    tf.dispose([loss, ...kept]);
    return stats;
  }

  private encode(batch: ImageBatch): Int32Array {
    const cfg = this.vqvaeConfig();
    const codes = tf.tidy(() => {
      const { x, pos } = this.imageTensors(batch);
      return vqvaeEncodeCodes(this.params, cfg, x, pos);
    });
    const out = codes.dataSync() as Int32Array;
    codes.dispose();
    return Int32Array.from(out);
  }

  /** Pre-quantisation encoder outputs z, [count, h, w, D] flattened. */
  private latents(batch: ImageBatch): Float32Array {
    const cfg = this.vqvaeConfig();
    const z = tf.tidy(() => {
      const { x, pos } = this.imageTensors(batch);
      return vqvaeEncode(this.params, cfg, x, pos).z;
    });
    const out = Float32Array.from(z.dataSync() as Float32Array);
    z.dispose();
    return out;
  }
}

// ---- worker-pool job module -------------------------------------------------------------------

let runner: ModelRunner | null = null;

export function setup(model: ModelSpec): void {
  runner = new ModelRunner(model);
}

export function run(task: RunnerTask): RunnerResult {
  if (runner === null) throw new Error('training worker: setup() was not called');
  return runner.run(task);
}
