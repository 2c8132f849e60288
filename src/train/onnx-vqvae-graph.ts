/**
 * The VQ-VAE's training graph for ONNX Runtime, the same computation as models/vqvae.ts vqvaeLoss:
 * encoder trunk → nearest code (argmin of ‖z‖² − 2z·e + ‖e‖²) → straight-through zq = z + sg(e − z)
 * → decoder trunk; loss = mean|x̂ − x| + mean‖sg(z) − e‖² + β·mean‖z − sg(e)‖².
 * The trunks are ../onnx/emit-vqvae.ts's, with channel dropout as a mask input per gated block
 * ([B, C, 1, 1], already scaled by 1/(1 − rate)), drawn on the host from the step's seed.
 *
 * Outputs: loss, rec, codebook, commit (scalars), codes [B, h, w] int32, z [B, h, w, D] for the
 * encoder-only graph, and the reconstruction xhat [B, s, s, 1] when `reconstruction` is set.
 */
import { vqvaeLatentSize, type VqvaeConfig } from '../models/config.js';
import { CODEBOOK } from '../models/vqvae.js';
import { stopGradient } from '../onnx/autodiff/backward.js';
import { hostParam, emitPositionColumn, feature, type HostParams } from '../onnx/emit-blocks.js';
import { emitVqvaeDecoderTrunk, emitVqvaeEncoderTrunk } from '../onnx/emit-vqvae.js';
import { GraphBuilder, type Value } from '../onnx/graph.js';
import { DataType, type OnnxModel } from '../onnx/onnx-proto.js';
import { dropoutInputs, type DropoutSite, type TrainingGraph } from './onnx-dropout.js';

function reduceMeanAll(g: GraphBuilder, x: Value): Value {
  return g.node('ReduceMean', [x], { keepdims: 0 });
}

/** Nearest code of every row of `flat` [N, D]: int64 [N] (no gradient flows through it). */
function nearestCodeIndices(g: GraphBuilder, flat: Value, codebook: Value): Value {
  const vectorNorms = g.reduceSum(g.mul(flat, flat), [1], true); // [N, 1]
  const codeNorms = g.reshape(g.reduceSum(g.mul(codebook, codebook), [1], false), [1, -1]); // [1, K]
  const dots = g.matMul(flat, g.transpose(codebook, [1, 0])); // [N, K]
  return g.argMin(g.add(g.sub(vectorNorms, g.mul(dots, g.scalar(2))), codeNorms), 1);
}

export function emitVqvaeTraining(params: HostParams, cfg: VqvaeConfig, opts: { dropout: boolean; encoderOnly?: boolean; reconstruction?: boolean }): TrainingGraph {
  const g = new GraphBuilder(opts.encoderOnly ? 'vqvae_encode' : 'vqvae_train');
  const s = cfg.inputSize;
  const latent = vqvaeLatentSize(cfg);
  const d = cfg.codeDim;
  const sites: DropoutSite[] = [];
  const withDropout = opts.dropout && cfg.dropout > 0 && !opts.encoderOnly;
  const image = g.input('image', DataType.FLOAT, ['batch', s, s, cfg.inChannels]);
  const pos = g.input('position', DataType.FLOAT, ['batch']);
  const posColumn = emitPositionColumn(g, pos);
  const z = emitVqvaeEncoderTrunk(g, params, cfg, image, posColumn, withDropout ? dropoutInputs(sites, 'enc') : undefined, 'space-to-depth');
  const zNhwc = g.transpose(z.value, [0, 2, 3, 1]);
  const flat = g.reshape(zNhwc, [-1, d]); // [N, D]
  const book = hostParam(params, CODEBOOK);
  const codebook = g.initializer(CODEBOOK, book.shape, book.values);
  const indices = nearestCodeIndices(g, stopGradient(g, flat), stopGradient(g, codebook));
  g.output(g.reshape(g.cast(indices, DataType.INT32), [-1, latent, latent]), 'codes', DataType.INT32, ['batch', latent, latent]);
  if (opts.encoderOnly) {
    g.output(zNhwc, 'z', DataType.FLOAT, ['batch', latent, latent, d]);
    return { model: g.build({ producerVersion: 'train' }), dropout: sites };
  }
  const codes = g.gather(codebook, indices); // [N, D]
  const sq = (a: Value, b: Value) => {
    const diff = g.sub(a, b);
    return reduceMeanAll(g, g.mul(diff, diff));
  };
  const codebookLoss = sq(stopGradient(g, flat), codes);
  const commit = sq(flat, stopGradient(g, codes));
  const zq = g.add(flat, stopGradient(g, g.sub(codes, flat))); // value: codes; gradient: to z
  const grid = feature(g.transpose(g.reshape(zq, [-1, latent, latent, d]), [0, 3, 1, 2]), d, latent, latent);
  const xhat = emitVqvaeDecoderTrunk(g, params, cfg, grid, posColumn, withDropout ? dropoutInputs(sites, 'dec') : undefined, 'phases');
  const rec = reduceMeanAll(g, g.node('Abs', [g.sub(xhat, image)]));
  const loss = g.add(g.add(rec, codebookLoss), g.mul(commit, g.scalar(cfg.commitmentWeight)));
  g.output(loss, 'loss', DataType.FLOAT, []);
  g.output(rec, 'rec', DataType.FLOAT, []);
  g.output(codebookLoss, 'codebook', DataType.FLOAT, []);
  g.output(commit, 'commit', DataType.FLOAT, []);
  if (opts.reconstruction) g.output(xhat, 'xhat', DataType.FLOAT, ['batch', s, s, cfg.inChannels]);
  return { model: g.build({ producerVersion: 'train' }), dropout: sites };
}
