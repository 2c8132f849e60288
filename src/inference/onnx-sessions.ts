/**
 * What the ONNX Runtime engines of every model family share: sessions created on first use, running a
 * graph over code maps in batches, and the VQ-VAE encoder and decoder graphs (lsr, lsgs) exported from
 * the loaded weights.
 */
import { packageVersion } from '../io/tensor-bundle.js';
import { vqvaeLatentSize } from '../models/config.js';
import { hostParams } from '../onnx/emit-blocks.js';
import { emitVqvaeDecoder, emitVqvaeEncoder } from '../onnx/emit-vqvae.js';
import { createSession, type OrtModule, type OrtSession } from '../onnx/runtime.js';
import { batches, type VqvaeNetwork } from './vqvae-steps.js';

export interface LazySession {
  (): Promise<OrtSession>;
  release(): Promise<void>;
}

/** A session created on first use (a sample score never needs the decoder). */
export function lazySession(model: Uint8Array, threads: number): LazySession {
  let session: Promise<OrtSession> | null = null;
  const get = (() => (session ??= createSession(model, { threads }))) as LazySession;
  get.release = async () => {
    if (session !== null) await (await session).release();
    session = null;
  };
  return get;
}

/** Parts in order as one array (no copy for a single part). */
export function concatParts(parts: readonly Float32Array[], total: number): Float32Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Float32Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Runs a graph over code maps (inputs `codes` [B, h, w] int32 and `position` [B]) in batches of at
 * most `batch` maps; returns its `output` for every batch, in order.
 */
export async function runCodeMapGraph(
  ort: OrtModule,
  session: LazySession,
  grid: { readonly height: number; readonly width: number },
  codes: Int32Array,
  positions: Float32Array,
  batch: number,
  output: string,
): Promise<Float32Array[]> {
  const run = await session();
  const count = positions.length;
  const cells = grid.height * grid.width;
  if (codes.length !== count * cells) throw new RangeError(`${output}: ${codes.length} codes for ${count} maps of ${grid.height}×${grid.width}`);
  const parts: Float32Array[] = [];
  for (const [a, b] of batches(count, batch)) {
    const feeds = {
      codes: new ort.Tensor('int32', codes.slice(a * cells, b * cells), [b - a, grid.height, grid.width]),
      position: new ort.Tensor('float32', positions.slice(a, b), [b - a]),
    };
    parts.push((await run.run(feeds, [output]))[output]!.data as Float32Array);
  }
  return parts;
}

/** The VQ-VAE encoder and decoder on ONNX Runtime (shared by the lsr and lsgs engines). */
export interface VqvaeOnnxSteps {
  encodeSlices(images: Float32Array, positions: Float32Array): Promise<Int32Array>;
  /** The codes and the encoder outputs before quantisation, z: float32 [count, h, w, codeDim]. */
  encodeSlicesWithLatents(images: Float32Array, positions: Float32Array): Promise<{ codes: Int32Array; z: Float32Array }>;
  decodeCodeMaps(codes: Int32Array, positions: Float32Array): Promise<Float32Array>;
  release(): Promise<void>;
}

export function exportVqvaeOnnx(vqvae: VqvaeNetwork): { encoder: Uint8Array; decoder: Uint8Array } {
  const meta = { producerVersion: packageVersion() };
  const vq = hostParams(vqvae.params);
  return { encoder: emitVqvaeEncoder(vq, vqvae.cfg).encode(meta), decoder: emitVqvaeDecoder(vq, vqvae.cfg).encode(meta) };
}

export function vqvaeOnnxSteps(
  ort: OrtModule,
  vqvae: VqvaeNetwork,
  models: { readonly encoder: Uint8Array; readonly decoder: Uint8Array },
  opts: { readonly threads: number; readonly encodeBatch: number; readonly decodeBatch: number },
): VqvaeOnnxSteps {
  const encoder = lazySession(models.encoder, opts.threads);
  const decoder = lazySession(models.decoder, opts.threads);
  const size = vqvae.cfg.inputSize;
  const channels = vqvae.cfg.inChannels;
  const plane = size * size * channels;
  const latent = vqvaeLatentSize(vqvae.cfg);
  const dim = vqvae.cfg.codeDim;
  const encode = async (images: Float32Array, positions: Float32Array, withLatents: boolean): Promise<{ codes: Int32Array; z?: Float32Array }> => {
    const session = await encoder();
    const count = positions.length;
    if (images.length !== count * plane) throw new RangeError(`encodeSlices: ${images.length} values for ${count} slices of ${size}×${size}`);
    const codes = new Int32Array(count * latent * latent);
    const z = withLatents ? new Float32Array(count * latent * latent * dim) : undefined;
    for (const [a, b] of batches(count, opts.encodeBatch)) {
      const feeds = {
        image: new ort.Tensor('float32', images.slice(a * plane, b * plane), [b - a, size, size, channels]),
        position: new ort.Tensor('float32', positions.slice(a, b), [b - a]),
      };
      const result = await session.run(feeds, withLatents ? ['codes', 'z'] : ['codes']);
      codes.set(result.codes!.data as Int32Array, a * latent * latent);
      if (z) z.set(result.z!.data as Float32Array, a * latent * latent * dim);
    }
    return { codes, z };
  };
  return {
    async encodeSlices(images, positions) {
      return (await encode(images, positions, false)).codes;
    },
    async encodeSlicesWithLatents(images, positions) {
      const { codes, z } = await encode(images, positions, true);
      return { codes, z: z! };
    },
    async decodeCodeMaps(codes, positions) {
      const parts = await runCodeMapGraph(ort, decoder, { height: latent, width: latent }, codes, positions, opts.decodeBatch, 'image');
      return concatParts(parts, positions.length * plane);
    },
    async release() {
      await Promise.all([encoder.release(), decoder.release()]);
    },
  };
}
