/**
 * The ONNX graph of the DISYRE U-Net (./unet.ts disyreForward, the same values), built with the
 * project's graph builder and block emitters. Graph inputs: image [B, S, S, 1] (NHWC, as the other
 * networks' graphs) and cond [B, 2E] (./embedding.ts conditionInput); the graph runs NCHW inside.
 * `emitDisyreBody` is shared by the inference graph (output xhat [B, S, S, 1]) and the training graph
 * (./train-graph.ts), which adds the loss.
 */
import { DataType } from '../../onnx/onnx-proto.js';
import { GraphBuilder, type Value } from '../../onnx/graph.js';
import { emitConcat, emitConv, emitGroupNorm, emitUpsampleNearest2x, feature, hostParam, type Feature, type HostParams } from '../../onnx/emit-blocks.js';
import { condInputSize, hasSegmentationHead, type DisyreConfig } from './config.js';

function emitDense(g: GraphBuilder, params: HostParams, prefix: string, x: Value): Value {
  const w = hostParam(params, `${prefix}.w`);
  const b = hostParam(params, `${prefix}.b`);
  return g.add(g.matMul(x, g.initializer(`${prefix}.w`, w.shape, w.values)), g.initializer(`${prefix}.b`, b.shape, b.values));
}

function emitBlock(g: GraphBuilder, params: HostParams, cfg: DisyreConfig, prefix: string, x: Feature, c: Value): Feature {
  const w = hostParam(params, `${prefix}.cond.w`);
  const cout = w.shape[1]!;
  const bias = g.reshape(g.matMul(c, g.initializer(`${prefix}.cond.w`, w.shape, w.values)), [-1, cout, 1, 1]);
  let h = emitConv(g, params, `${prefix}.conv1`, x);
  h = { ...h, value: g.add(h.value, bias) };
  h = emitGroupNorm(g, params, `${prefix}.norm1`, h, cfg.normGroups);
  h = { ...h, value: g.elu(h.value) };
  h = emitConv(g, params, `${prefix}.conv2`, h);
  h = emitGroupNorm(g, params, `${prefix}.norm2`, h, cfg.normGroups);
  return { ...h, value: g.elu(h.value) };
}

/** x̂ [B, S, S, 1] of `image` [B, S, S, 1] under `cond` [B, 2E], and the segmentation head's logits (same shape) when the config has it. */
export function emitDisyreBody(g: GraphBuilder, params: HostParams, cfg: DisyreConfig, image: Value, cond: Value): { xhat: Value; segLogits: Value | null } {
  const s = cfg.inputSize;
  const c = g.elu(emitDense(g, params, 'cond.fc2', g.elu(emitDense(g, params, 'cond.fc1', cond))));
  // One channel: NHWC [B, S, S, 1] and NCHW [B, 1, S, S] are the same memory.
  const x = feature(g.reshape(image, [-1, 1, s, s]), 1, s, s);
  const last = cfg.channels.length - 1;
  const skips: Feature[] = [];
  let h = emitConv(g, params, 'in', x);
  for (let l = 0; l <= last; l++) {
    h = emitBlock(g, params, cfg, `enc${l}`, h, c);
    skips.push(h);
    if (l < last) h = emitConv(g, params, `down${l}`, h, { stride: 2 });
  }
  for (let l = last - 1; l >= 0; l--) {
    h = emitUpsampleNearest2x(g, emitConv(g, params, `up${l}`, h));
    h = emitBlock(g, params, cfg, `dec${l}`, emitConcat(g, [h, skips[l]!]), c);
  }
  const delta = emitConv(g, params, 'out', h);
  const xhat = g.reshape(g.add(x.value, delta.value), [-1, s, s, 1]);
  return { xhat, segLogits: hasSegmentationHead(cfg) ? g.reshape(emitConv(g, params, 'seg', h).value, [-1, s, s, 1]) : null };
}

/** Inference graph: image [B, S, S, 1], cond [B, 2E] → xhat [B, S, S, 1] (and segmentation [B, S, S, 1], the head's sigmoid, when the config has it). */
export function emitDisyreForward(params: HostParams, cfg: DisyreConfig): GraphBuilder {
  const g = new GraphBuilder('disyre_unet');
  const s = cfg.inputSize;
  const image = g.input('image', DataType.FLOAT, ['batch', s, s, 1]);
  const cond = g.input('cond', DataType.FLOAT, ['batch', condInputSize(cfg)]);
  const { xhat, segLogits } = emitDisyreBody(g, params, cfg, image, cond);
  g.output(xhat, 'xhat', DataType.FLOAT, ['batch', s, s, 1]);
  if (segLogits !== null) g.output(g.node('Sigmoid', [segLogits]), 'segmentation', DataType.FLOAT, ['batch', s, s, 1]);
  return g;
}
