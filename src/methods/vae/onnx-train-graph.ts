/**
 * The VAE's training graph for ONNX Runtime, the same computation as vae.ts vaeLoss with
 * z sampled: ./emit-vae.ts's posterior and decoder with channel dropout masks as inputs, the
 * reparameterisation noise ε [B, L] as an input (drawn on the host by ./vae.ts
 * reparameterisationNoise from the step's seed, so it equals TF.js's), z = μ + exp(½ log σ²)·ε,
 * loss = mean_b(KL + Σ(x − x̂)²/2σ²) / pixels. Outputs loss, rec (mean |x̂ − x|), kl, recNll.
 */
import type { VaeConfig } from './config.js';
import { emitPositionColumn, type HostParams } from '../../onnx/emit-blocks.js';
import { emitPosterior, emitVaeDecoderBody } from './emit-vae.js';
import { GraphBuilder, type Value } from '../../onnx/graph.js';
import { DataType } from '../../onnx/onnx-proto.js';
import { dropoutInputs, type DropoutSite, type TrainingGraph } from '../../train/onnx-dropout.js';

function meanAll(g: GraphBuilder, x: Value): Value {
  return g.node('ReduceMean', [x], { keepdims: 0 });
}

export function emitVaeTraining(params: HostParams, cfg: VaeConfig, opts: { training: boolean }): TrainingGraph {
  const g = new GraphBuilder(opts.training ? 'vae_train' : 'vae_eval');
  const s = cfg.inputSize;
  const sites: DropoutSite[] = [];
  const dropout = opts.training && cfg.dropout > 0;
  const image = g.input('image', DataType.FLOAT, ['batch', s, s, cfg.inChannels]);
  const posColumn = emitPositionColumn(g, g.input('position', DataType.FLOAT, ['batch']));
  const { mu, logvar } = emitPosterior(g, params, cfg, image, posColumn, dropout ? dropoutInputs(sites, 'enc') : undefined);
  let z = mu;
  if (opts.training) {
    const noise = g.input('noise', DataType.FLOAT, ['batch', cfg.latentDim]);
    z = g.add(mu, g.mul(g.node('Exp', [g.mul(logvar, g.scalar(0.5))]), noise));
  }
  const xhat = emitVaeDecoderBody(g, params, cfg, z, posColumn, dropout ? dropoutInputs(sites, 'dec') : undefined);
  const kl = g.mul(g.reduceSum(g.sub(g.add(g.mul(mu, mu), g.node('Exp', [logvar])), g.add(logvar, g.scalar(1))), [1], false), g.scalar(0.5));
  const diff = g.sub(image, xhat);
  const rec = g.node('Div', [g.reduceSum(g.mul(diff, diff), [1, 2, 3], false), g.scalar(2 * cfg.recStd ** 2)]);
  const pixels = s * s * cfg.inChannels;
  g.output(g.node('Div', [meanAll(g, g.add(kl, rec)), g.scalar(pixels)]), 'loss', DataType.FLOAT, []);
  g.output(meanAll(g, g.node('Abs', [diff])), 'rec', DataType.FLOAT, []);
  g.output(meanAll(g, kl), 'kl', DataType.FLOAT, []);
  g.output(meanAll(g, rec), 'recNll', DataType.FLOAT, []);
  return { model: g.build({ producerVersion: 'train' }), dropout: sites };
}
