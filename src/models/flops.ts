/** Forward FLOPs per sample (2 per multiply-add; convolutions and matMuls only). */
import { vqvaeLatentSize, type PixelSnailConfig, type VqvaeConfig } from './config.js';
import { pixelsnailParamSpecs } from '../methods/lsr/pixelsnail.js';
import { sumFlops } from './params.js';
import { vqvaeParamSpecs } from './vqvae.js';

export interface VqvaeFlops {
  encoder: number;
  /** Distances to every code for every latent position. */
  quantize: number;
  decoder: number;
}

export function vqvaeFlops(cfg: VqvaeConfig): VqvaeFlops {
  const specs = vqvaeParamSpecs(cfg);
  const latentPositions = vqvaeLatentSize(cfg) ** 2;
  return {
    encoder: sumFlops(specs, 'enc.'),
    quantize: 2 * latentPositions * cfg.codebookSize * cfg.codeDim,
    decoder: sumFlops(specs, 'dec.'),
  };
}

/** One prior pass over a whole code map (logits for every position). */
export function pixelsnailFlops(cfg: PixelSnailConfig): number {
  const convs = sumFlops(pixelsnailParamSpecs(cfg));
  const a = cfg.attention;
  if (a === null) return convs;
  const queries = cfg.height * cfg.width;
  const keys = queries / (a.downsample * a.downsample);
  return convs + cfg.blocks * 2 * queries * keys * (a.keyChannels + a.valueChannels);
}
