/**
 * Sample score of latent space restoration: the NLL of every latent code under the prior (one pass
 * per batch of slices), AS_sample = Σ over codes and slices of NLL where NLL > λs, mapped to [0, 1]
 * by the monotone calibration fitted on held-out normal volumes (src/score/calibration.ts).
 *
 * `encodeVolume` is the first stage of both scores: the volume goes through `preprocessForModel`
 * (the path training uses) at the VQ-VAE's input size, then the encoder gives one code map per slice.
 */
import { preprocessForModel } from '../volume/preprocess.js';
import type { Region } from '../volume/normalise.js';
import type { SliceSelection, SliceStack } from '../volume/slices.js';
import type { Volume } from '../volume/volume.js';
import { applySampleCalibration, type SampleCalibration } from './calibration.js';
import type { LsrEngine } from '../methods/lsr/engine.js';

export interface EncodedVolume {
  /** Normalised slices at the VQ-VAE input size, with their z indices and positions. */
  readonly stack: SliceStack;
  /** One code map per slice, int32 [count, h, w] flattened. */
  readonly codes: Int32Array;
  readonly preprocessSeconds: number;
  readonly encodeSeconds: number;
}

/** What encoding needs of an engine (the lsr and the lsgs engines both are one). */
export interface SliceEncoder {
  readonly nets: { readonly vqvae: { readonly cfg: { readonly inputSize: number } } };
  encodeSlices(images: Float32Array, positions: Float32Array): Promise<Int32Array>;
}

export async function encodeVolume(engine: SliceEncoder, volume: Volume, region: Region, slices?: SliceSelection): Promise<EncodedVolume> {
  const t0 = performance.now();
  const stack = preprocessForModel(volume, { region, slices, size: engine.nets.vqvae.cfg.inputSize });
  const t1 = performance.now();
  const codes = await engine.encodeSlices(stack.data, stack.positions);
  return { stack, codes, preprocessSeconds: (t1 - t0) / 1000, encodeSeconds: (performance.now() - t1) / 1000 };
}

/**
 * `encodeVolume` through an engine that also gives each code's quantisation distance ‖z − e‖², in the
 * same encoder pass (src/score/quantisation-distance.ts).
 */
export async function encodeVolumeWithDistances(engine: LsrEngine, volume: Volume, region: Region, slices?: SliceSelection): Promise<EncodedVolume & { readonly distances: Float32Array }> {
  if (!engine.encodeWithDistances) throw new Error(`the ${engine.name} engine does not expose the encoder output: quantisation distances need the onnx engine`);
  const t0 = performance.now();
  const stack = preprocessForModel(volume, { region, slices, size: engine.nets.vqvae.cfg.inputSize });
  const t1 = performance.now();
  const { codes, distances } = await engine.encodeWithDistances(stack.data, stack.positions);
  return { stack, codes, distances, preprocessSeconds: (t1 - t0) / 1000, encodeSeconds: (performance.now() - t1) / 1000 };
}

/** Σ of the NLL values above λs (strictly), in float64. */
export function rawSampleScore(nll: Float32Array, lambdaS: number): number {
  let sum = 0;
  for (let i = 0; i < nll.length; i++) if (nll[i] > lambdaS) sum += nll[i];
  return sum;
}

export interface SampleScore {
  /** In [0, 1], from the calibration. */
  readonly score: number;
  readonly raw: number;
  /** Per-code NLL, [count, h, w] flattened. */
  readonly nll: Float32Array;
  readonly priorSeconds: number;
}

/** NLL of the encoded codes, raw score, calibrated score. */
export async function sampleScoreOfCodes(
  engine: LsrEngine,
  encoded: Pick<EncodedVolume, 'codes' | 'stack'>,
  lambdaS: number,
  calibration: SampleCalibration,
): Promise<SampleScore> {
  const t0 = performance.now();
  const nll = await engine.codeNlls(encoded.codes, encoded.stack.positions);
  const priorSeconds = (performance.now() - t0) / 1000;
  const raw = rawSampleScore(nll, lambdaS);
  return { score: applySampleCalibration(calibration, raw), raw, nll, priorSeconds };
}
