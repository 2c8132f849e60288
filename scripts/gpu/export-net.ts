/**
 * The training graph of one of the other trained networks (VQ-VAE, PixelSNAIL, transformer, VAE) with
 * its weights, for the graph interpreter (./net-io.ts, ./onnx_torch.py), and the way back:
 *
 *   node dist/scripts/gpu/export-net.js [export] --kind vqvae|pixelsnail|transformer|vae --weights DIR --out DIR \
 *       [--fresh SEED] [--region brain|abdomen]
 *     → train.onnx, bindings.*, start.f32 (DIR's weights, or a fresh network of DIR's config with --fresh),
 *       meta.json (with --region: the region's normalised background value), check.*
 *   python3 scripts/gpu/onnx_torch.py DIR        # forward outputs and the flat gradient against ONNX Runtime
 *   node dist/scripts/gpu/export-net.js import --export DIR --flat best.f32 --record record.json --out WEIGHTS
 *     → WEIGHTS/<kind>.json/.bin, the format the CPU trainer saves
 */
import { exportTrainedNet, importTrainedNet, TRAINED_NET_KINDS, type TrainedNetKind } from './net-io.js';
import { option } from '../cli-options.js';
import { normalisedBackground } from '../../src/volume/preprocess.js';
import { normalisationFor, type Region } from '../../src/volume/normalise.js';

async function exportNet(): Promise<void> {
  const kind = option('kind') as TrainedNetKind;
  if (!TRAINED_NET_KINDS.includes(kind)) throw new Error(`--kind must be one of ${TRAINED_NET_KINDS.join(', ')}`);
  const out = option('out');
  const region = option('region', '');
  if (region !== '' && region !== 'brain' && region !== 'abdomen') throw new Error(`--region ${region} is not brain or abdomen`);
  const fresh = option('fresh', '');
  const { inputs, total, start } = await exportTrainedNet(kind, option('weights'), out, {
    ...(fresh !== '' ? { freshSeed: fresh } : {}),
    ...(region !== '' ? { meta: { region, background: normalisedBackground(normalisationFor(region as Region)) } } : {}),
  });
  process.stderr.write(`export-net: ${out}: ${kind}, ${inputs} parameter inputs, ${total} parameters, start ${start}\n`);
}

async function importNet(): Promise<void> {
  const written = await importTrainedNet(option('flat'), option('export'), option('record'), option('out'));
  process.stderr.write(`export-net: wrote ${written}\n`);
}

(process.argv[2] === 'import' ? importNet() : exportNet()).catch((err: unknown) => {
  process.stderr.write(`export-net: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
