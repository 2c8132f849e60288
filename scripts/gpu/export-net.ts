/**
 * Exports the training graph of one of the other trained networks (VQ-VAE, PixelSNAIL, transformer,
 * VAE) with its weights for the graph interpreter (./net-io.ts, ./onnx_torch.py), so that a GPU machine
 * can prove the interpretation of each before a trainer for it is written:
 *
 *   node dist/scripts/gpu/export-net.js --kind vqvae|pixelsnail|transformer|vae --weights DIR --out DIR
 *   python3 scripts/gpu/onnx_torch.py DIR        # forward outputs and the flat gradient against ONNX Runtime
 */
import { exportTrainedNet, TRAINED_NET_KINDS, type TrainedNetKind } from './net-io.js';
import { option } from '../cli-options.js';

async function main(): Promise<void> {
  const kind = option('kind') as TrainedNetKind;
  if (!TRAINED_NET_KINDS.includes(kind)) throw new Error(`export-net: --kind must be one of ${TRAINED_NET_KINDS.join(', ')}`);
  const out = option('out');
  const { inputs, total, start } = await exportTrainedNet(kind, option('weights'), out);
  process.stderr.write(`export-net: ${out}: ${kind}, ${inputs} parameter inputs, ${total} parameters, start ${start}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`export-net: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
