/**
 * The forward-only part of the VAE scores on ONNX Runtime: one graph (src/methods/vae/emit-vae.ts
 * emitVaeTerms) gives x̂, KL and rec of every slice with z = μ, i.e. what ./score.ts vaeSliceTerms
 * computes with TF.js. That covers the sample scores (vae-elbo, vae-kl, vae-rec) and the vae-rec
 * pixel map. The gradient maps (elbograd, klgrad, recgrad, combi) need ∂/∂x of the network, and ONNX
 * Runtime has no autodiff: they stay on TF.js (./model.ts picks the runner per request).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { atomicWriteFileSync } from '../../io/atomic.js';
import { packageVersion } from '../../models/index.js';
import { hostParams } from '../../onnx/emit-blocks.js';
import { emitVaeTerms } from './emit-vae.js';
import { requireOnnxRuntime } from '../../onnx/runtime.js';
import { batches } from '../../inference/vqvae-steps.js';
import { lazySession } from '../../inference/onnx-sessions.js';
import type { PieceRequest, SliceTerms, VaeNetwork, VaeStackPieces } from './score.js';

export interface VaeOnnxForward {
  /** x̂, KL, rec (z = μ) of `count` normalised slices (count × S × S). */
  terms(images: Float32Array, positions: Float32Array): Promise<SliceTerms>;
  release(): Promise<void>;
}

/** Whether a request can run on ONNX Runtime (no input gradients). */
export function forwardOnly(request: PieceRequest): boolean {
  return !request.gradKl && !request.gradRec;
}

export async function onnxVaeForward(net: VaeNetwork, opts: { readonly threads: number; readonly batch?: number; readonly saveTo?: string }): Promise<VaeOnnxForward> {
  const ort = await requireOnnxRuntime();
  const model = emitVaeTerms(hostParams(net.params), net.cfg).encode({ producerVersion: packageVersion() });
  if (opts.saveTo !== undefined) {
    mkdirSync(opts.saveTo, { recursive: true });
    atomicWriteFileSync(path.join(opts.saveTo, 'vae-terms.onnx'), model);
  }
  const session = lazySession(model, opts.threads);
  const size = net.cfg.inputSize;
  const plane = size * size * net.cfg.inChannels;
  const batchSize = opts.batch ?? 16;
  return {
    async terms(images, positions) {
      const run = await session();
      const count = positions.length;
      if (images.length !== count * plane) throw new RangeError(`VAE scores: ${images.length} values for ${count} slices of ${size}×${size}`);
      const kl = new Float32Array(count);
      const rec = new Float32Array(count);
      const xhat = new Float32Array(count * plane);
      for (const [a, b] of batches(count, batchSize)) {
        const feeds = {
          image: new ort.Tensor('float32', images.slice(a * plane, b * plane), [b - a, size, size, net.cfg.inChannels]),
          position: new ort.Tensor('float32', positions.slice(a, b), [b - a]),
        };
        const out = await run.run(feeds);
        kl.set(out.kl!.data as Float32Array, a);
        rec.set(out.rec!.data as Float32Array, a);
        xhat.set(out.xhat!.data as Float32Array, a * plane);
      }
      return { kl, rec, xhat };
    },
    release: () => session.release(),
  };
}

/** The pieces of a forward-only request on ONNX Runtime (no gradients), timed as vaeStackPieces. */
export async function onnxVaePieces(forward: VaeOnnxForward, images: Float32Array, positions: Float32Array, request: PieceRequest): Promise<VaeStackPieces> {
  if (!forwardOnly(request)) throw new Error('ONNX Runtime has no input gradients: the VAE gradient maps run on TF.js');
  const t0 = performance.now();
  const terms = await forward.terms(images, positions);
  return { ...terms, forwardSeconds: (performance.now() - t0) / 1000, gradientSeconds: 0 };
}
