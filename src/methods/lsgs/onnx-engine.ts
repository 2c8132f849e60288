/**
 * The ONNX Runtime engine of LSGS: the VQ-VAE encoder and decoder and the transformer prior (logits
 * and per-code NLL graphs) exported from the loaded weights in memory, one CPU session each, created
 * on first use, intra-op threads on every core.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { atomicWriteFileSync } from '../../io/atomic.js';
import { packageVersion } from '../../models/index.js';
import { hostParams } from '../../onnx/emit-blocks.js';
import { emitTransformer } from './emit-transformer.js';
import { requireOnnxRuntime } from '../../onnx/runtime.js';
import type { LsgsEngine } from './engine-types.js';
import type { LsgsNetworks } from './networks.js';
import { concatParts, exportVqvaeOnnx, lazySession, runCodeMapGraph, vqvaeOnnxSteps } from '../../inference/onnx-sessions.js';

export interface OnnxLsgsEngineOptions {
  readonly threads: number;
  /** Also write the .onnx graphs here (vqvae-encoder, vqvae-decoder, transformer-logits, transformer-nll). */
  readonly saveTo?: string;
  /** Most maps per transformer call (default 32). */
  readonly transformerBatch?: number;
  readonly encodeBatch?: number;
  readonly decodeBatch?: number;
}

/** The serialised ONNX graphs of both LSGS networks. */
export function exportLsgsOnnx(nets: LsgsNetworks): { encoder: Uint8Array; decoder: Uint8Array; transformerLogits: Uint8Array; transformerNll: Uint8Array } {
  const meta = { producerVersion: packageVersion() };
  const host = hostParams(nets.transformer.params);
  return {
    ...exportVqvaeOnnx(nets.vqvae),
    transformerLogits: emitTransformer(host, nets.transformer.cfg, 'logits').encode(meta),
    transformerNll: emitTransformer(host, nets.transformer.cfg, 'nll').encode(meta),
  };
}

export async function onnxLsgsEngine(nets: LsgsNetworks, opts: OnnxLsgsEngineOptions): Promise<LsgsEngine> {
  const ort = await requireOnnxRuntime();
  const models = exportLsgsOnnx(nets);
  if (opts.saveTo !== undefined) {
    mkdirSync(opts.saveTo, { recursive: true });
    atomicWriteFileSync(path.join(opts.saveTo, 'vqvae-encoder.onnx'), models.encoder);
    atomicWriteFileSync(path.join(opts.saveTo, 'vqvae-decoder.onnx'), models.decoder);
    atomicWriteFileSync(path.join(opts.saveTo, 'transformer-logits.onnx'), models.transformerLogits);
    atomicWriteFileSync(path.join(opts.saveTo, 'transformer-nll.onnx'), models.transformerNll);
  }
  const vqvae = vqvaeOnnxSteps(ort, nets.vqvae, models, { threads: opts.threads, encodeBatch: opts.encodeBatch ?? 16, decodeBatch: opts.decodeBatch ?? 16 });
  const sessions = { logits: lazySession(models.transformerLogits, opts.threads), nll: lazySession(models.transformerNll, opts.threads) };
  const cfg = nets.transformer.cfg;
  const cells = cfg.height * cfg.width;
  const defaultBatch = opts.transformerBatch ?? 32;
  return {
    name: 'onnx',
    nets,
    wantsWorkers: false,
    transformer: {
      cfg,
      async logits(codes, positions, batch) {
        const parts = await runCodeMapGraph(ort, sessions.logits, cfg, codes, positions, batch ?? defaultBatch, 'logits');
        return concatParts(parts, positions.length * cells * cfg.codebookSize);
      },
      async nlls(codes, positions) {
        return concatParts(await runCodeMapGraph(ort, sessions.nll, cfg, codes, positions, defaultBatch, 'nll'), positions.length * cells);
      },
    },
    encodeSlices: (images, positions) => vqvae.encodeSlices(images, positions),
    // One batch size for the decoder: ONNX Runtime runs ~16 maps per call best (src/methods/lsr/onnx-engine.ts).
    decodeCodeMaps: (codes, positions) => vqvae.decodeCodeMaps(codes, positions),
    async dispose() {
      await Promise.all([vqvae.release(), sessions.logits.release(), sessions.nll.release()]);
    },
  };
}
