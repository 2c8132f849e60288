/**
 * The training graph of the DISYRE U-Net for ONNX Runtime: ./emit-unet.ts's body on the corrupted
 * slices, loss = mean over pixels and batch of (x̂ − clean)² (the paper's MSE). Inputs: image
 * (corrupted) [B, S, S, 1], target (clean) [B, S, S, 1], cond [B, 2E]. Outputs: loss, rec = mean |x̂ − clean|,
 * and restored = mean |x̂ − clean| / mean |image − clean| over the batch (how much of the corruption is
 * undone; 1 = none). No dropout.
 * With the segmentation head: a fourth input mask [B, S, S, 1] (targets in [0, 1]), loss = MSE +
 * segmentationWeight · BCE, BCE = mean of max(l, 0) − l·m + log(1 + exp(−|l|)) over the logits l (the
 * stable form of binary cross-entropy with logits), and output bce = that BCE.
 */
import { DataType } from '../../onnx/onnx-proto.js';
import { GraphBuilder, type Value } from '../../onnx/graph.js';
import type { HostParams } from '../../onnx/emit-blocks.js';
import type { TrainingGraph } from '../../train/onnx-dropout.js';
import { condInputSize, hasSegmentationHead, type DisyreConfig } from './config.js';
import { emitDisyreBody } from './emit-unet.js';

function meanAll(g: GraphBuilder, x: Value): Value {
  return g.node('ReduceMean', [x], { keepdims: 0 });
}

export function emitDisyreTraining(params: HostParams, cfg: DisyreConfig): TrainingGraph {
  const g = new GraphBuilder('disyre_train');
  const s = cfg.inputSize;
  const image = g.input('image', DataType.FLOAT, ['batch', s, s, 1]);
  const target = g.input('target', DataType.FLOAT, ['batch', s, s, 1]);
  const cond = g.input('cond', DataType.FLOAT, ['batch', condInputSize(cfg)]);
  const { xhat, segLogits } = emitDisyreBody(g, params, cfg, image, cond);
  const diff = g.sub(xhat, target);
  const rec = meanAll(g, g.node('Abs', [diff]));
  const corrupted = meanAll(g, g.node('Abs', [g.sub(image, target)]));
  let loss = meanAll(g, g.mul(diff, diff));
  if (hasSegmentationHead(cfg) && segLogits !== null) {
    const mask = g.input('mask', DataType.FLOAT, ['batch', s, s, 1]);
    const l = segLogits;
    const softplusNegAbs = g.node('Log', [g.add(g.scalar(1), g.node('Exp', [g.node('Neg', [g.node('Abs', [l])])]))]);
    const bce = meanAll(g, g.add(g.sub(g.node('Relu', [l]), g.mul(l, mask)), softplusNegAbs));
    loss = g.add(loss, g.mul(bce, g.scalar(cfg.segmentationWeight!)));
    g.output(bce, 'bce', DataType.FLOAT, []);
  }
  g.output(loss, 'loss', DataType.FLOAT, []);
  g.output(rec, 'rec', DataType.FLOAT, []);
  g.output(g.node('Div', [rec, g.add(corrupted, g.scalar(1e-8))]), 'restored', DataType.FLOAT, []);
  return { model: g.build({ producerVersion: 'train' }), dropout: [] };
}
