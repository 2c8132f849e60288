/**
 * Channel dropout in the ONNX training graphs: one mask input per gated block, [B, C, 1, 1], drawn
 * on the host from the step's seed (0, or 1/(1 − rate) as tf.dropout scales), so a step is
 * reproducible and the graph needs no random operator.
 */
import { createRng } from '../engine/random.js';
import type { DropoutHook, Feature } from '../onnx/emit-blocks.js';
import type { GraphBuilder } from '../onnx/graph.js';
import { DataType, type OnnxModel } from '../onnx/onnx-proto.js';

/** A dropout mask input: its name, its shape per sample, and the stream ('enc' or 'dec') its mask is drawn from. */
export interface DropoutSite {
  readonly input: string;
  /** [C, 1, 1] for channel dropout, [N, d] for the transformer's element-wise residual dropout. */
  readonly shape: readonly number[];
  readonly stream: 'enc' | 'dec';
}

/** A training graph and its dropout mask inputs, in forward order. */
export interface TrainingGraph {
  readonly model: OnnxModel;
  readonly dropout: readonly DropoutSite[];
}

/** A mask input per gated block, multiplied into the block's hidden features. */
export function dropoutInputs(sites: DropoutSite[], stream: 'enc' | 'dec'): DropoutHook {
  return (g: GraphBuilder, h: Feature, block: string) => {
    const input = g.input(`dropout/${block}`, DataType.FLOAT, ['batch', h.channels, 1, 1]);
    sites.push({ input, shape: [h.channels, 1, 1], stream });
    return { ...h, value: g.mul(h.value, input) };
  };
}

/** Element-wise dropout of a transformer residual branch [B, N, d]: a mask input per site. */
export function residualDropoutInputs(sites: DropoutSite[], shape: readonly number[]): (g: GraphBuilder, branch: string, site: string) => string {
  return (g, branch, site) => {
    const input = g.input(`dropout/${site}`, DataType.FLOAT, ['batch', ...shape]);
    sites.push({ input, shape, stream: 'enc' });
    return g.mul(branch, input);
  };
}

/** Dropout masks per site, [B, ...shape], 0 or 1/(1 − rate); separate streams for the VQ-VAE's encoder ('enc') and decoder ('dec'), as models/vqvae.ts; the priors use 'enc' only. */
export function dropoutMasks(sites: readonly DropoutSite[], count: number, rate: number, seed: number): Map<string, Float32Array> {
  const streams = { enc: createRng(seed), dec: createRng(seed + 0x9e3779b9) };
  const masks = new Map<string, Float32Array>();
  for (const site of sites) {
    const rng = createRng(streams[site.stream].seed());
    const size = count * site.shape.reduce((a, b) => a * b, 1);
    masks.set(site.input, Float32Array.from({ length: size }, () => (rng.next() < rate ? 0 : 1 / (1 - rate))));
  }
  return masks;
}

