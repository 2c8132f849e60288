/**
 * The PixelSNAIL prior's training graph for ONNX Runtime, the same computation as
 * pixelsnail.ts priorLoss: ./emit-pixelsnail.ts's NLL graph (codes [B, h, w] int32,
 * positions [B] → NLL per code) with channel dropout masks as inputs, and loss = mean NLL (nats per code).
 */
import type { PixelSnailConfig } from '../../models/config.js';
import type { HostParams } from '../../onnx/emit-blocks.js';
import { emitPixelSnail } from './emit-pixelsnail.js';
import { DataType } from '../../onnx/onnx-proto.js';
import { dropoutInputs, type DropoutSite, type TrainingGraph } from '../../train/onnx-dropout.js';

export function emitPriorTraining(params: HostParams, cfg: PixelSnailConfig, opts: { dropout: boolean }): TrainingGraph {
  const sites: DropoutSite[] = [];
  const g = emitPixelSnail(params, cfg, 'nll', opts.dropout && cfg.dropout > 0 ? dropoutInputs(sites, 'enc') : undefined, 'logsumexp');
  g.output(g.node('ReduceMean', ['nll'], { keepdims: 0 }), 'loss', DataType.FLOAT, []);
  return { model: g.build({ producerVersion: 'train' }), dropout: sites };
}
