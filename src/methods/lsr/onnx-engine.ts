/**
 * The ONNX Runtime engine: the VQ-VAE encoder, decoder and the PixelSNAIL prior exported to ONNX
 * from the loaded weights (in memory, src/onnx/emit-*.ts), one CPU session each (created on first
 * use), intra-op threads on every core. Batch sizes were measured (CPU time per map, compact brain
 * weights): the prior runs best at 8–64 maps per call and the decoder at ~16 (bigger batches fall
 * out of cache and get slower per map), so the defaults are 64 prior maps and 16 images per call.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { atomicWriteFileSync } from '../../io/atomic.js';
import { packageVersion, vqvaeLatentSize } from '../../models/index.js';
import { hostParams } from '../../onnx/emit-blocks.js';
import { emitPixelSnail } from './emit-pixelsnail.js';
import { emitVqvaeDecoder, emitVqvaeEncoder } from '../../onnx/emit-vqvae.js';
import type { GraphBuilder } from '../../onnx/graph.js';
import { createSession, requireOnnxRuntime, type OrtModule, type OrtSession } from '../../onnx/runtime.js';
import type { LsrEngine } from './engine.js';
import { batches, latentGeometry, type LsrNetworks, type VqvaeNetwork } from './networks.js';

export interface OnnxEngineOptions {
  readonly threads: number;
  /** Also write the .onnx graphs here (vqvae-encoder, vqvae-decoder, pixelsnail-logits, pixelsnail-nll). */
  readonly saveTo?: string;
  readonly priorBatch?: number;
  readonly encodeBatch?: number;
  readonly decodeBatch?: number;
}

/** The serialised ONNX graphs of both networks. */
export function exportLsrOnnx(nets: LsrNetworks): { encoder: Uint8Array; decoder: Uint8Array; priorLogits: Uint8Array; priorNll: Uint8Array } {
  const meta = { producerVersion: packageVersion() };
  const prior = hostParams(nets.prior.params);
  const encode = (g: GraphBuilder) => g.encode(meta);
  return {
    ...exportVqvaeOnnx(nets.vqvae),
    priorLogits: encode(emitPixelSnail(prior, nets.prior.cfg, 'logits')),
    priorNll: encode(emitPixelSnail(prior, nets.prior.cfg, 'nll')),
  };
}

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
  return {
    async encodeSlices(images, positions) {
      const session = await encoder();
      const count = positions.length;
      if (images.length !== count * plane) throw new RangeError(`encodeSlices: ${images.length} values for ${count} slices of ${size}×${size}`);
      const out = new Int32Array(count * latent * latent);
      for (const [a, b] of batches(count, opts.encodeBatch)) {
        const feeds = {
          image: new ort.Tensor('float32', images.slice(a * plane, b * plane), [b - a, size, size, channels]),
          position: new ort.Tensor('float32', positions.slice(a, b), [b - a]),
        };
        const result = await session.run(feeds, ['codes']);
        out.set(result.codes!.data as Int32Array, a * latent * latent);
      }
      return out;
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

export async function onnxEngine(nets: LsrNetworks, opts: OnnxEngineOptions): Promise<LsrEngine> {
  const ort: OrtModule = await requireOnnxRuntime();
  const models = exportLsrOnnx(nets);
  if (opts.saveTo !== undefined) {
    mkdirSync(opts.saveTo, { recursive: true });
    atomicWriteFileSync(path.join(opts.saveTo, 'vqvae-encoder.onnx'), models.encoder);
    atomicWriteFileSync(path.join(opts.saveTo, 'vqvae-decoder.onnx'), models.decoder);
    atomicWriteFileSync(path.join(opts.saveTo, 'pixelsnail-logits.onnx'), models.priorLogits);
    atomicWriteFileSync(path.join(opts.saveTo, 'pixelsnail-nll.onnx'), models.priorNll);
  }
  const encodeBatch = opts.encodeBatch ?? 16;
  const decodeBatch = opts.decodeBatch ?? 16;
  const priorBatch = opts.priorBatch ?? 64;
  const vqvae = vqvaeOnnxSteps(ort, nets.vqvae, models, { threads: opts.threads, encodeBatch, decodeBatch });
  const priorSessions = { logits: lazySession(models.priorLogits, opts.threads), nll: lazySession(models.priorNll, opts.threads) };
  const { height, width, positions: cells, codes: k } = latentGeometry(nets.prior);
  const runPrior = (codes: Int32Array, positions: Float32Array, output: 'logits' | 'nll') => runCodeMapGraph(ort, priorSessions[output], { height, width }, codes, positions, priorBatch, output);

  return {
    name: 'onnx',
    nets,
    priorBatch,
    decodeBatch,
    wantsWorkers: false,
    encodeSlices: (images, positions) => vqvae.encodeSlices(images, positions),
    decodeCodeMaps: (codes, positions) => vqvae.decodeCodeMaps(codes, positions),
    async codeNlls(codes, positions) {
      return concatParts(await runPrior(codes, positions, 'nll'), positions.length * cells);
    },
    async priorLogitsFrom(codes, positions, from) {
      const count = positions.length;
      const all = concatParts(await runPrior(codes, positions, 'logits'), count * cells * k);
      if (from === 0) return all;
      const kept = (cells - from) * k;
      const out = new Float32Array(count * kept);
      for (let i = 0; i < count; i++) out.set(all.subarray((i * cells + from) * k, (i + 1) * cells * k), i * kept);
      return out;
    },
    async dispose() {
      await Promise.all([vqvae.release(), priorSessions.logits.release(), priorSessions.nll.release()]);
    },
  };
}
