/**
 * The training graph of the DISYRE U-Net for ONNX Runtime: ./emit-unet.ts's body on the corrupted
 * slices, loss = mean over pixels and batch of (x̂ − clean)² (the paper's MSE). Inputs: image
 * (corrupted) [B, S, S, 1], target (clean) [B, S, S, 1], cond [B, 2E]. Outputs: loss, rec = mean |x̂ − clean|,
 * and restored = mean |x̂ − clean| / mean |image − clean| over the batch (how much of the corruption is
 * undone; 1 = none). No dropout.
 */
import { DataType } from '../../onnx/onnx-proto.js';
import { GraphBuilder, type Value } from '../../onnx/graph.js';
import type { HostParams } from '../../onnx/emit-blocks.js';
import type { TrainingGraph } from '../../train/onnx-dropout.js';
import { condInputSize, type DisyreConfig } from './config.js';
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
  const xhat = emitDisyreBody(g, params, cfg, image, cond);
  const diff = g.sub(xhat, target);
  const rec = meanAll(g, g.node('Abs', [diff]));
  const corrupted = meanAll(g, g.node('Abs', [g.sub(image, target)]));
  g.output(meanAll(g, g.mul(diff, diff)), 'loss', DataType.FLOAT, []);
  g.output(rec, 'rec', DataType.FLOAT, []);
  g.output(g.node('Div', [rec, g.add(corrupted, g.scalar(1e-8))]), 'restored', DataType.FLOAT, []);
  return { model: g.build({ producerVersion: 'train' }), dropout: [] };
}
