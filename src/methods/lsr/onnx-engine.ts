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
import { packageVersion } from '../../models/index.js';
import { hostParam, hostParams } from '../../onnx/emit-blocks.js';
import { CODEBOOK } from '../../models/vqvae.js';
import { quantisationDistances } from '../../score/quantisation-distance.js';
import { emitPixelSnail } from './emit-pixelsnail.js';
import type { GraphBuilder } from '../../onnx/graph.js';
import { requireOnnxRuntime, type OrtModule } from '../../onnx/runtime.js';
import { concatParts, exportVqvaeOnnx, lazySession, runCodeMapGraph, vqvaeOnnxSteps } from '../../inference/onnx-sessions.js';
import type { LsrEngine } from './engine-types.js';
import { latentGeometry, type LsrNetworks } from './networks.js';

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
  const codebook = hostParam(hostParams(nets.vqvae.params), CODEBOOK).values;
  const runPrior = (codes: Int32Array, positions: Float32Array, output: 'logits' | 'nll') => runCodeMapGraph(ort, priorSessions[output], { height, width }, codes, positions, priorBatch, output);

  return {
    name: 'onnx',
    nets,
    priorBatch,
    decodeBatch,
    wantsWorkers: false,
    encodeSlices: (images, positions) => vqvae.encodeSlices(images, positions),
    async encodeWithDistances(images, positions) {
      const { codes, z } = await vqvae.encodeSlicesWithLatents(images, positions);
      return { codes, distances: quantisationDistances(z, codes, codebook, nets.vqvae.cfg.codeDim) };
    },
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
