/**
 * ONNX graphs of the VQ-VAE (src/models/vqvae.ts), inference only (no dropout):
 * - encoder: image [B, S, S, C], position [B] → z [B, h, w, D] and nearest-code indices [B, h, w] int32;
 * - decoder: code indices [B, h, w] int32, position [B] → image [B, S, S, C].
 */
import { vqvaeLatentSize, vqvaeLevels, type VqvaeConfig } from '../models/config.js';
import { CODEBOOK } from '../models/vqvae.js';
import { DataType } from './onnx-proto.js';
import { GraphBuilder, type Value } from './graph.js';
import {
  emitAdd,
  emitConcat,
  emitConditionBias,
  emitConv,
  emitConvStride2AsSpaceToDepth,
  emitConvTranspose,
  emitElu,
  emitGlu,
  emitGroupNorm,
  emitPositionColumn,
  emitPositionPlane,
  emitUpsampleConvPhases,
  emitUpsampleNearest2x,
  feature,
  hostParam,
  type DropoutHook,
  type Feature,
  type HostParams,
} from './emit-blocks.js';

/** vqvae.ts gatedBlock. */
function emitGatedBlock(g: GraphBuilder, params: HostParams, prefix: string, x: Feature, posColumn: Value, cfg: VqvaeConfig, dropout?: DropoutHook): Feature {
  let h = emitGroupNorm(g, params, `${prefix}.norm1`, x, cfg.normGroups);
  if (cfg.condChannels === 1) h = emitAdd(g, h, emitConditionBias(g, params, `${prefix}.cond`, posColumn));
  h = emitElu(g, emitConv(g, params, `${prefix}.conv1`, emitElu(g, h)));
  if (dropout !== undefined) h = dropout(g, h, prefix);
  h = emitGroupNorm(g, params, `${prefix}.norm2`, emitConv(g, params, `${prefix}.conv2`, h), cfg.normGroups);
  return emitAdd(g, emitGlu(g, h), x);
}

function withPositionPlane(g: GraphBuilder, x: Feature, posColumn: Value, cfg: VqvaeConfig): Feature {
  if (cfg.condChannels === 0) return x;
  return emitConcat(g, [x, feature(emitPositionPlane(g, posColumn, x.height, x.width), 1, x.height, x.width)]);
}

/** NHWC graph input → NCHW feature (a reshape when there is one channel). */
function imageInput(g: GraphBuilder, value: Value, size: number, channels: number): Feature {
  const nchw = channels === 1 ? g.reshape(value, [-1, 1, size, size]) : g.transpose(value, [0, 3, 1, 2]);
  return feature(nchw, channels, size, size);
}

/**
 * vqvae.ts encoder up to the pre-quantisation conv: image [B, S, S, C] (NHWC graph value) → z, NCHW.
 * `downsample: 'space-to-depth'` emits the stride-2 convolutions as emitConvStride2AsSpaceToDepth (the
 * training graphs), 'strided' as strided Convs (the inference graphs, as calibrated).
 */
export function emitVqvaeEncoderTrunk(g: GraphBuilder, params: HostParams, cfg: VqvaeConfig, image: Value, posColumn: Value, dropout?: DropoutHook, downsample: 'strided' | 'space-to-depth' = 'strided'): Feature {
  const x = imageInput(g, image, cfg.inputSize, cfg.inChannels);
  let h = emitGroupNorm(g, params, 'enc.stem.norm', emitConv(g, params, 'enc.stem', withPositionPlane(g, x, posColumn, cfg)), cfg.normGroups);
  for (let l = 0; l < vqvaeLevels(cfg); l++) {
    for (let k = 0; k < cfg.blocksPerLevel; k++) h = emitGatedBlock(g, params, `enc.level${l}.block${k}`, h, posColumn, cfg, dropout);
    const down = `enc.level${l}.down`;
    const reduced = downsample === 'space-to-depth' ? emitConvStride2AsSpaceToDepth(g, params, down, h) : emitConv(g, params, down, h, { stride: 2 });
    h = emitGroupNorm(g, params, `${down}.norm`, reduced, cfg.normGroups);
  }
  h = emitGatedBlock(g, params, 'enc.out.block', h, posColumn, cfg, dropout);
  return emitConv(g, params, 'enc.preq', h);
}

export function emitVqvaeEncoder(params: HostParams, cfg: VqvaeConfig): GraphBuilder {
  const g = new GraphBuilder('vqvae_encoder');
  const s = cfg.inputSize;
  const latent = vqvaeLatentSize(cfg);
  const image = g.input('image', DataType.FLOAT, ['batch', s, s, cfg.inChannels]);
  const pos = g.input('position', DataType.FLOAT, ['batch']);
  const z = emitVqvaeEncoderTrunk(g, params, cfg, image, emitPositionColumn(g, pos));
  const zNhwc = g.transpose(z.value, [0, 2, 3, 1]);
  g.output(zNhwc, 'z', DataType.FLOAT, ['batch', latent, latent, cfg.codeDim]);

  // engine/vq.ts nearestCodes: argmin of ‖z‖² − 2 z·e + ‖e‖², the same expression as the tfjs path.
  const codebook = hostParam(params, CODEBOOK);
  const [k, d] = codebook.shape;
  const flat = g.reshape(zNhwc, [-1, d]);
  const vectorNorms = g.reduceSum(g.mul(flat, flat), [1], true);
  const codeNorms = new Float32Array(k);
  for (let i = 0; i < k; i++) {
    let sum = 0;
    for (let j = 0; j < d; j++) sum += codebook.values[i * d + j] ** 2;
    codeNorms[i] = sum;
  }
  const transposed = new Float32Array(k * d);
  for (let i = 0; i < k; i++) for (let j = 0; j < d; j++) transposed[j * k + i] = codebook.values[i * d + j];
  const dots = g.matMul(flat, g.initializer('codebook_t', [d, k], transposed));
  const distances = g.add(g.sub(vectorNorms, g.mul(dots, g.scalar(2))), g.initializer('code_norms', [1, k], codeNorms));
  const indices = g.reshape(g.cast(g.argMin(distances, 1), DataType.INT32), [-1, latent, latent]);
  g.output(indices, 'codes', DataType.INT32, ['batch', latent, latent]);
  return g;
}

export function emitVqvaeDecoder(params: HostParams, cfg: VqvaeConfig): GraphBuilder {
  const g = new GraphBuilder('vqvae_decoder');
  const s = cfg.inputSize;
  const latent = vqvaeLatentSize(cfg);
  const codes = g.input('codes', DataType.INT32, ['batch', latent, latent]);
  const pos = g.input('position', DataType.FLOAT, ['batch']);
  const posColumn = emitPositionColumn(g, pos);
  const codebook = hostParam(params, CODEBOOK);
  // Gather selects exactly the rows oneHot·E selects.
  const zq = g.transpose(g.gather(g.initializer(CODEBOOK, codebook.shape, codebook.values), codes), [0, 3, 1, 2]);
  const image = emitVqvaeDecoderTrunk(g, params, cfg, feature(zq, cfg.codeDim, latent, latent), posColumn);
  g.output(image, 'image', DataType.FLOAT, ['batch', s, s, cfg.inChannels]);
  return g;
}

/**
 * vqvae.ts decoder: latent grid (NCHW feature) → image [B, S, S, C] (NHWC value). `upsample: 'phases'`
 * emits the nearest-conv upsampling as emitUpsampleConvPhases (the training graphs: fewer pixels to
 * differentiate), 'resize' as Resize + Conv (the inference graphs, as calibrated).
 */
export function emitVqvaeDecoderTrunk(g: GraphBuilder, params: HostParams, cfg: VqvaeConfig, grid: Feature, posColumn: Value, dropout?: DropoutHook, upsample: 'resize' | 'phases' = 'resize'): Value {
  const s = cfg.inputSize;
  let h = grid;
  h = emitGroupNorm(g, params, 'dec.stem.norm', emitConv(g, params, 'dec.stem', withPositionPlane(g, h, posColumn, cfg)), cfg.normGroups);
  for (let l = vqvaeLevels(cfg); l >= 1; l--) {
    for (let k = 0; k < cfg.blocksPerLevel; k++) h = emitGatedBlock(g, params, `dec.level${l}.block${k}`, h, posColumn, cfg, dropout);
    const up = `dec.level${l}.up`;
    if (cfg.upsample !== 'nearest-conv') h = emitConvTranspose(g, params, `${up}.w`, h, 2);
    else h = upsample === 'phases' ? emitUpsampleConvPhases(g, params, up, h) : emitConv(g, params, up, emitUpsampleNearest2x(g, h));
    h = emitGroupNorm(g, params, `dec.level${l}.up.norm`, h, cfg.normGroups);
  }
  h = emitGatedBlock(g, params, 'dec.out.block', h, posColumn, cfg, dropout);
  const out = emitConv(g, params, 'dec.out', emitElu(g, h));
  return cfg.inChannels === 1 ? g.reshape(out.value, [-1, s, s, 1]) : g.transpose(out.value, [0, 2, 3, 1]);
}
