/**
 * The LSGS transformer's training graph for ONNX Runtime, the same computation as
 * transformer.ts transformerRepairLoss: ./emit-transformer.ts's logits of the (tampered)
 * input codes, with element-wise dropout masks on the residual branches as inputs; per position
 * CE = −log softmax(logits)[target]; loss = Σ CE · weight / B; the mean CE over tampered and over
 * untampered positions (max(count, 1) in the denominator) as statistics.
 */
import type { TransformerConfig } from './transformer.js';
import type { HostParams } from '../../onnx/emit-blocks.js';
import { emitTransformer } from './emit-transformer.js';
import { DataType } from '../../onnx/onnx-proto.js';
import { residualDropoutInputs, type DropoutSite, type TrainingGraph } from '../../train/onnx-dropout.js';

export function emitTransformerTraining(params: HostParams, cfg: TransformerConfig, opts: { dropout: boolean }): TrainingGraph {
  const sites: DropoutSite[] = [];
  const { height: h, width: w, codebookSize: k } = cfg;
  const g = emitTransformer(params, cfg, 'logits', opts.dropout && cfg.dropout > 0 ? residualDropoutInputs(sites, [h * w, cfg.dim]) : undefined);
  const targets = g.input('targets', DataType.INT32, ['batch', h, w]);
  const weights = g.input('loss_weights', DataType.FLOAT, ['batch', h, w]);
  const tampered = g.input('tampered', DataType.FLOAT, ['batch', h, w]);
  const identity = new Float32Array(k * k);
  for (let i = 0; i < k; i++) identity[i * k + i] = 1;
  const oneHot = g.gather(g.initializer('target_rows', [k, k], identity), targets);
  const ce = g.neg(g.reduceSum(g.mul(g.logSoftmax('logits', 3), oneHot), [3], false)); // [B, h, w]
  const batch = g.cast(g.slice(g.shape(targets), [0], [1], [0]), DataType.FLOAT);
  const total = (x: string) => g.node('ReduceSum', [x], { keepdims: 0 });
  g.output(g.node('Div', [total(g.mul(ce, weights)), g.reshape(batch, [])]), 'loss', DataType.FLOAT, []);
  const groupMean = (mask: string) => g.node('Div', [total(g.mul(ce, mask)), g.node('Max', [total(mask), g.scalar(1)])]);
  g.output(groupMean(tampered), 'ceTampered', DataType.FLOAT, []);
  g.output(groupMean(g.sub(g.scalar(1), tampered)), 'ceUntampered', DataType.FLOAT, []);
  return { model: g.build({ producerVersion: 'train' }), dropout: sites };
}
