/**
 * The networks the ONNX Runtime training engine (./onnx-engine.ts) knows: per network its training
 * graph (a model emitter's graph with its parameters as inputs, ../onnx/autodiff/trainable.ts; dropout
 * masks as inputs), its evaluation graph, how a batch becomes graph inputs, and which statistics a
 * step reports. Pure descriptions: sessions live in ./onnx-runner.ts.
 */
import type { PixelSnailConfig, VqvaeConfig } from '../models/config.js';
import type { VaeConfig } from '../methods/vae/config.js';
import { reparameterisationNoise } from '../methods/vae/vae.js';
import type { TransformerConfig } from '../methods/lsgs/transformer.js';
import type { Shape } from '../onnx/autodiff/shapes.js';
import { traceParams, type TrainableModel } from '../onnx/autodiff/trainable.js';
import type { OrtModule, OrtTensor } from '../onnx/runtime.js';
import { paramLayout, type BatchStats, type ModelSpec, type ParamLayout, type TrainBatch } from './loop-worker.js';
import type { DropoutSite, TrainingGraph } from './onnx-dropout.js';
import type { HostTensor } from '../io/tensor-bundle.js';
import { emitPriorTraining } from '../methods/lsr/onnx-train-graph.js';
import { emitVqvaeTraining } from './onnx-vqvae-graph.js';
import { emitVaeTraining } from '../methods/vae/onnx-train-graph.js';
import { emitTransformerTraining } from '../methods/lsgs/onnx-train-graph.js';
import { condInputSize, hasSegmentationHead, type DisyreConfig } from '../methods/disyre/config.js';
import { conditionInput } from '../methods/disyre/embedding.js';
import { emitDisyreTraining } from '../methods/disyre/train-graph.js';
import { isDisyreBatch } from '../methods/disyre/batch.js';
import { layoutOfSpecs } from './param-layout.js';
import { disyreParamSpecs } from '../methods/disyre/unet.js';

/** A network the ONNX engine trains: the TF.js-trainable ones and the DISYRE U-Net (ONNX only). */
export type OnnxModelSpec = ModelSpec | { kind: 'disyre'; config: DisyreConfig };

/** What the engine needs to know about one network. */
export interface OnnxNet {
  readonly layout: ParamLayout;
  /** Training graph (dropout masks as inputs), evaluation graph (no dropout), and optionally the encoder. */
  readonly train: TrainableModel & { dropout: readonly DropoutSite[] };
  readonly evaluate: TrainableModel;
  readonly encoder?: TrainableModel;
  readonly dropoutRate: number;
  /** Data inputs of a batch and their shapes. */
  feeds(ort: OrtModule, batch: TrainBatch): { feeds: Record<string, OrtTensor>; shapes: Record<string, Shape> };
  /** Inputs only the training graph has, drawn from the step's seed (the VAE's noise ε). */
  trainFeeds?(ort: OrtModule, batch: TrainBatch, seed: number): { feeds: Record<string, OrtTensor>; shapes: Record<string, Shape> };
  /** Statistics of one batch from the graph outputs. */
  stats(outputs: Record<string, OrtTensor>, batch: TrainBatch): BatchStats;
}

/** The traced training graph (dropout on) and evaluation graph (dropout off) of one network. */
function tracedGraphs(model: OnnxModelSpec, emit: (params: ReadonlyMap<string, HostTensor>, training: boolean) => TrainingGraph): Pick<OnnxNet, 'layout' | 'train' | 'evaluate'> {
  const layout = onnxParamLayout(model);
  let sites: readonly DropoutSite[] = [];
  const train = traceParams(layout, (p) => {
    const out = emit(p, true);
    sites = out.dropout;
    return out.model;
  });
  return { layout, train: { ...train, dropout: sites }, evaluate: traceParams(layout, (p) => emit(p, false).model) };
}

export function vqvaeOnnxNet(cfg: VqvaeConfig): OnnxNet {
  const graphs = tracedGraphs({ kind: 'vqvae', config: cfg }, (p, training) => emitVqvaeTraining(p, cfg, { dropout: training, reconstruction: !training }));
  return {
    ...graphs,
    encoder: traceParams(graphs.layout, (p) => emitVqvaeTraining(p, cfg, { dropout: false, encoderOnly: true }).model),
    dropoutRate: cfg.dropout,
    feeds: imageFeeds,
    stats(outputs, batch) {
      const codeCounts = new Int32Array(cfg.codebookSize);
      for (const c of outputs.codes!.data as Int32Array) codeCounts[c]++;
      const means = scalarStats(outputs, ['loss', 'rec', 'codebook', 'commit']);
      if (outputs.xhat !== undefined && batch.kind === 'images' && batch.background !== undefined) {
        Object.assign(means, foregroundL1Parts(outputs.xhat.data as Float32Array, batch.images, batch.background, batch.count));
      }
      return { count: batch.count, means, codeCounts };
    },
  };
}

export function priorOnnxNet(cfg: PixelSnailConfig): OnnxNet {
  return {
    ...tracedGraphs({ kind: 'pixelsnail', config: cfg }, (p, training) => emitPriorTraining(p, cfg, { dropout: training })),
    dropoutRate: cfg.dropout,
    feeds(ort, batch) {
      if (batch.kind !== 'codes') throw new Error('the prior trains on code batches');
      const shape = [batch.count, batch.height, batch.width];
      return {
        feeds: { codes: new ort.Tensor('int32', batch.codes, shape), position: new ort.Tensor('float32', batch.positions, [batch.count]) },
        shapes: { codes: shape, position: [batch.count] },
      };
    },
    stats(outputs, batch) {
      const means = scalarStats(outputs, ['loss']);
      if (outputs.nll !== undefined && batch.kind === 'codes' && batch.foreground !== undefined) {
        Object.assign(means, foregroundNllParts(outputs.nll.data as Float32Array, batch.foreground, batch.count));
      }
      return { count: batch.count, means };
    },
  };
}

/** Like `foregroundL1Parts` for the prior: nllFgSum = Σ NLL over foreground codes / maps, codeFgFraction = foreground codes / codes. */
export function foregroundNllParts(nll: Float32Array, foreground: Uint8Array, count: number): { nllFgSum: number; codeFgFraction: number } {
  if (nll.length !== foreground.length) throw new RangeError(`foregroundNllParts: ${nll.length} NLL values, ${foreground.length} flags`);
  let sum = 0;
  let fg = 0;
  for (let i = 0; i < nll.length; i++) {
    if (foreground[i] !== 1) continue;
    fg++;
    sum += nll[i]!;
  }
  return { nllFgSum: sum / count, codeFgFraction: fg / nll.length };
}

/**
 * Parts of the L1 over foreground pixels (input ≠ background), as per-slice means so that the loop's
 * count-weighted combination stays exact: recFgSum = Σ|x̂ − x| over foreground / slices, fgFraction =
 * foreground pixels / all pixels; recFg = recFgSum / (fgFraction × pixels per slice) (see `deriveMetrics`).
 */
export function foregroundL1Parts(xhat: Float32Array, images: Float32Array, background: number, count: number): { recFgSum: number; fgFraction: number } {
  let sum = 0;
  let fg = 0;
  for (let i = 0; i < images.length; i++) {
    const x = images[i]!;
    if (x === background) continue;
    fg++;
    sum += Math.abs(xhat[i]! - x);
  }
  return { recFgSum: sum / count, fgFraction: fg / images.length };
}

/** Image feeds of the VQ-VAE and the VAE. */
function imageFeeds(ort: OrtModule, batch: TrainBatch): { feeds: Record<string, OrtTensor>; shapes: Record<string, Shape> } {
  if (batch.kind !== 'images') throw new Error('this network trains on image batches');
  const s = batch.size;
  return {
    feeds: { image: new ort.Tensor('float32', batch.images, [batch.count, s, s, 1]), position: new ort.Tensor('float32', batch.positions, [batch.count]) },
    shapes: { image: [batch.count, s, s, 1], position: [batch.count] },
  };
}

/** Scalar outputs as statistics. */
function scalarStats(outputs: Record<string, OrtTensor>, names: readonly string[]): Record<string, number> {
  return Object.fromEntries(names.map((n) => [n, (outputs[n]!.data as Float32Array)[0]!]));
}

export function vaeOnnxNet(cfg: VaeConfig): OnnxNet {
  return {
    ...tracedGraphs({ kind: 'vae', config: cfg }, (p, training) => emitVaeTraining(p, cfg, { training })),
    dropoutRate: cfg.dropout,
    feeds: imageFeeds,
    trainFeeds(ort, batch, seed) {
      const shape = [batch.count, cfg.latentDim];
      return { feeds: { noise: new ort.Tensor('float32', reparameterisationNoise(batch.count, cfg.latentDim, seed), shape) }, shapes: { noise: shape } };
    },
    stats: (outputs, batch) => ({ count: batch.count, means: scalarStats(outputs, ['loss', 'rec', 'kl', 'recNll']) }),
  };
}

export function transformerOnnxNet(cfg: TransformerConfig): OnnxNet {
  return {
    ...tracedGraphs({ kind: 'transformer', config: cfg }, (p, training) => emitTransformerTraining(p, cfg, { dropout: training })),
    dropoutRate: cfg.dropout,
    feeds(ort, batch) {
      if (batch.kind !== 'codes') throw new Error('the transformer trains on code batches');
      const shape = [batch.count, batch.height, batch.width];
      const cells = batch.height * batch.width;
      const n = batch.codes.length;
      return {
        feeds: {
          codes: new ort.Tensor('int32', batch.codes, shape),
          position: new ort.Tensor('float32', batch.positions, [batch.count]),
          targets: new ort.Tensor('int32', batch.targets ?? batch.codes, shape),
          loss_weights: new ort.Tensor('float32', batch.lossWeights ?? new Float32Array(n).fill(1 / cells), shape),
          tampered: new ort.Tensor('float32', batch.tampered ? Float32Array.from(batch.tampered) : new Float32Array(n), shape),
        },
        shapes: { codes: shape, position: [batch.count], targets: shape, loss_weights: shape, tampered: shape },
      };
    },
    stats(outputs, batch) {
      const means = scalarStats(outputs, ['loss', 'ceUntampered']);
      if (batch.kind === 'codes' && batch.tampered?.some((t) => t === 1)) means.ceTampered = (outputs.ceTampered!.data as Float32Array)[0]!;
      return { count: batch.count, means };
    },
  };
}

/** The DISYRE U-Net: corrupted slice → clean slice under MSE, conditioned on level t and position z; no dropout. */
export function disyreOnnxNet(cfg: DisyreConfig): OnnxNet {
  const layout = onnxParamLayout({ kind: 'disyre', config: cfg });
  const graph = traceParams(layout, (p) => emitDisyreTraining(p, cfg).model);
  if (graph.unused !== undefined) throw new Error(`DISYRE training graph: parameters ${graph.unused.join(', ')} are unused`);
  const s = cfg.inputSize;
  const e = condInputSize(cfg);
  const segmentation = hasSegmentationHead(cfg);
  return {
    layout,
    train: { ...graph, dropout: [] },
    evaluate: graph,
    dropoutRate: 0,
    feeds(ort, batch) {
      if (!isDisyreBatch(batch)) throw new Error('DISYRE trains on batches of corrupted slices with their clean targets and levels');
      if (batch.size !== s) throw new Error(`DISYRE batch of ${batch.size}×${batch.size} slices, the network takes ${s}×${s}`);
      const n = batch.count;
      const feeds = {
        image: new ort.Tensor('float32', batch.images, [n, s, s, 1]),
        target: new ort.Tensor('float32', batch.targets, [n, s, s, 1]),
        cond: new ort.Tensor('float32', conditionInput(cfg, batch.levels, batch.positions), [n, e]),
      };
      const shapes = { image: [n, s, s, 1], target: [n, s, s, 1], cond: [n, e] };
      if (!segmentation) return { feeds, shapes };
      if (batch.masks === undefined || batch.masks.length !== batch.targets.length) throw new Error('DISYRE with a segmentation head trains on batches with corruption masks');
      return { feeds: { ...feeds, mask: new ort.Tensor('float32', batch.masks, [n, s, s, 1]) }, shapes: { ...shapes, mask: [n, s, s, 1] } };
    },
    stats: (outputs, batch) => ({ count: batch.count, means: scalarStats(outputs, segmentation ? ['loss', 'rec', 'restored', 'bce'] : ['loss', 'rec', 'restored']) }),
  };
}

/** Sorted-name flat layout of a network's parameters (the layout checkpoints use). */
export function onnxParamLayout(model: OnnxModelSpec): ParamLayout {
  return model.kind === 'disyre' ? layoutOfSpecs(disyreParamSpecs(model.config)) : paramLayout(model);
}

export function onnxNetFor(model: OnnxModelSpec): OnnxNet {
  if (model.kind === 'disyre') return disyreOnnxNet(model.config);
  if (model.kind === 'transformer') return transformerOnnxNet(model.config);
  if (model.kind === 'vae') return vaeOnnxNet(model.config);
  if (model.kind === 'vqvae') return vqvaeOnnxNet(model.config);
  return priorOnnxNet(model.config);
}
