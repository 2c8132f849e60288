/**
 * ONNX graphs of the VAE baseline (src/methods/vae/vae.ts), inference only (no dropout, z = μ):
 * - encoder: image [B, S, S, C], position [B] → mu, logvar [B, L];
 * - decoder: z [B, L], position [B] → image [B, S, S, C];
 * - terms: image, position → xhat [B, S, S, C], kl [B], rec [B] (vae.ts vaeTerms with z = μ: the
 *   forward-only scores in one call).
 * The convolutional trunks are the VQ-VAE's (./emit-vqvae.ts). ONNX Runtime has no autodiff, so the
 * input-gradient maps of src/methods/vae/score.ts stay on TF.js.
 */
import { vaeConvConfig, vaeFlatSize, vaeGridSize, type VaeConfig } from './config.js';
import { DataType } from '../../onnx/onnx-proto.js';
import { GraphBuilder, type Value } from '../../onnx/graph.js';
import { emitPositionColumn, feature, hostParam, type DropoutHook, type HostParams } from '../../onnx/emit-blocks.js';
import { emitVqvaeDecoderTrunk, emitVqvaeEncoderTrunk } from '../../onnx/emit-vqvae.js';

/** vae.ts dense: x·W + b. */
function emitDense(g: GraphBuilder, params: HostParams, prefix: string, x: Value): Value {
  const w = hostParam(params, `${prefix}.w`);
  const b = hostParam(params, `${prefix}.b`);
  return g.add(g.matMul(x, g.initializer(`${prefix}.w`, w.shape, w.values)), g.initializer(`${prefix}.b`, b.shape, b.values));
}

/** vae.ts vaeEncode: the trunk's grid flattened in NHWC order → μ, log σ². */
export function emitPosterior(g: GraphBuilder, params: HostParams, cfg: VaeConfig, image: Value, posColumn: Value, dropout?: DropoutHook): { mu: Value; logvar: Value } {
  const z = emitVqvaeEncoderTrunk(g, params, vaeConvConfig(cfg), image, posColumn, dropout);
  const flat = g.reshape(g.transpose(z.value, [0, 2, 3, 1]), [-1, vaeFlatSize(cfg)]);
  return { mu: emitDense(g, params, 'enc.mu', flat), logvar: emitDense(g, params, 'enc.logvar', flat) };
}

/** vae.ts vaeDecode: z → dense → NHWC grid → the VQ-VAE decoder trunk. */
export function emitVaeDecoderBody(g: GraphBuilder, params: HostParams, cfg: VaeConfig, z: Value, posColumn: Value, dropout?: DropoutHook): Value {
  const side = vaeGridSize(cfg);
  const grid = g.transpose(g.reshape(emitDense(g, params, 'dec.dense', z), [-1, side, side, cfg.denseChannels]), [0, 3, 1, 2]);
  return emitVqvaeDecoderTrunk(g, params, vaeConvConfig(cfg), feature(grid, cfg.denseChannels, side, side), posColumn, dropout);
}

function inputs(g: GraphBuilder, cfg: VaeConfig): { image: Value; posColumn: Value } {
  const s = cfg.inputSize;
  const image = g.input('image', DataType.FLOAT, ['batch', s, s, cfg.inChannels]);
  return { image, posColumn: emitPositionColumn(g, g.input('position', DataType.FLOAT, ['batch'])) };
}

export function emitVaeEncoder(params: HostParams, cfg: VaeConfig): GraphBuilder {
  const g = new GraphBuilder('vae_encoder');
  const { image, posColumn } = inputs(g, cfg);
  const { mu, logvar } = emitPosterior(g, params, cfg, image, posColumn);
  g.output(mu, 'mu', DataType.FLOAT, ['batch', cfg.latentDim]);
  g.output(logvar, 'logvar', DataType.FLOAT, ['batch', cfg.latentDim]);
  return g;
}

export function emitVaeDecoder(params: HostParams, cfg: VaeConfig): GraphBuilder {
  const g = new GraphBuilder('vae_decoder');
  const s = cfg.inputSize;
  const z = g.input('z', DataType.FLOAT, ['batch', cfg.latentDim]);
  const posColumn = emitPositionColumn(g, g.input('position', DataType.FLOAT, ['batch']));
  g.output(emitVaeDecoderBody(g, params, cfg, z, posColumn), 'image', DataType.FLOAT, ['batch', s, s, cfg.inChannels]);
  return g;
}

/** vae.ts vaeTerms with z = μ: reconstruction, KL and the rec term of every slice. */
export function emitVaeTerms(params: HostParams, cfg: VaeConfig): GraphBuilder {
  const g = new GraphBuilder('vae_terms');
  const s = cfg.inputSize;
  const { image, posColumn } = inputs(g, cfg);
  const { mu, logvar } = emitPosterior(g, params, cfg, image, posColumn);
  const xhat = emitVaeDecoderBody(g, params, cfg, mu, posColumn);
  // KL = ½ Σ (μ² + exp(log σ²) − (log σ² + 1)), as klDivergence.
  const kl = g.mul(g.reduceSum(g.sub(g.add(g.mul(mu, mu), g.node('Exp', [logvar])), g.add(logvar, g.scalar(1))), [1], false), g.scalar(0.5));
  // rec = Σ (x − x̂)² / (2σ²).
  const diff = g.sub(image, xhat);
  const rec = g.node('Div', [g.reduceSum(g.mul(diff, diff), [1, 2, 3], false), g.scalar(2 * cfg.recStd ** 2)]);
  g.output(xhat, 'xhat', DataType.FLOAT, ['batch', s, s, cfg.inChannels]);
  g.output(kl, 'kl', DataType.FLOAT, ['batch']);
  g.output(rec, 'rec', DataType.FLOAT, ['batch']);
  return g;
}
