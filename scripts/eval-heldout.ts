/**
 * Held-out brain-only metrics of a VQ-VAE (and optionally its PixelSNAIL prior) on the volumes a
 * training run held out, on ONNX Runtime — the numbers the trainers log every epoch, for any
 * weights folder (e.g. the shipped ones, as the baseline of a new run):
 *
 *   node dist/scripts/eval-heldout.js --data data/pop-brain80 --seed 15 --vqvae DIR [--prior DIR] [--holdout K] [--slices foreground|even]
 *
 * The split is the trainers' (`splitVolumes` over the sorted file list, same seed and --holdout), so
 * only the held-out volumes are read. VQ-VAE: L1 over all pixels (`rec`) and over foreground pixels
 * (`recFg`) of HOLDOUT_SLICES_PER_VOLUME evenly spread slices per volume, unaugmented. Prior: NLL in
 * nats per code over every slice of the held-out volumes (`loss`), and over the codes whose patch
 * holds foreground (`nllFg`). Prints one JSON line.
 */
import os from 'node:os';
import { initEngine } from '../src/engine/backend.js';
import { loadModel } from '../src/models/weights.js';
import { disposeParams } from '../src/models/params.js';
import type { PixelSnailConfig, VqvaeConfig } from '../src/models/config.js';
import { foregroundCodes } from '../src/score/sample-aggregates.js';
import { defaultHoldout } from '../src/train/common.js';
import { listNiftiFiles, openVolumeFolder, splitVolumes, type TrainingSliceRule } from '../src/train/dataset.js';
import { createOnnxTrainingEngine } from '../src/train/onnx-engine.js';
import { deriveMetrics } from '../src/train/loop.js';
import { flattenParams, paramLayout, type CodeBatch } from '../src/train/loop-worker.js';
import { codeBatch } from '../src/train/prior-trainer.js';
import { HOLDOUT_SLICES_PER_VOLUME, holdoutImageBatches } from '../src/train/vqvae-trainer.js';
import { normalisedBackground } from '../src/volume/preprocess.js';
import { normalisationFor } from '../src/volume/normalise.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const data = arg('--data');
  const vqDir = arg('--vqvae');
  if (data === undefined || vqDir === undefined) throw new Error('usage: eval-heldout --data DIR --seed S --vqvae DIR [--prior DIR] [--holdout K] [--slices foreground|even]');
  const seed = Number(arg('--seed') ?? '0');
  const rule = (arg('--slices') ?? 'foreground') as TrainingSliceRule;
  const t0 = performance.now();
  await initEngine({ prefer: 'wasm', log: () => undefined });
  const files = await listNiftiFiles([data]);
  const k = arg('--holdout') !== undefined ? Number(arg('--holdout')) : defaultHoldout(files.length);
  const { holdout } = splitVolumes(files.map((file) => ({ file })), { holdoutCount: k, seed });
  const vq = loadModel<VqvaeConfig>(vqDir, 'vqvae', 'vqvae');
  const vqModel = { kind: 'vqvae' as const, config: vq.config };
  const vqWeights = flattenParams(vq.params, paramLayout(vqModel));
  disposeParams(vq.params);
  const folder = await openVolumeFolder(holdout.map((h) => h.file), { region: 'brain', size: vq.config.inputSize, sliceRule: rule });
  const stacks = folder.files.map((f) => f.stack);
  const background = normalisedBackground(normalisationFor('brain'));
  const engine = await createOnnxTrainingEngine(vqModel);
  const out: Record<string, unknown> = { data, seed, holdout: holdout.map((h) => h.file), slices: rule, vqvae: vqDir };
  try {
    const batches = holdoutImageBatches(stacks, HOLDOUT_SLICES_PER_VOLUME, 8, background);
    out.vqvaeHoldout = deriveMetrics((await engine.evaluate(vqWeights, 1, batches)).means, batches);
    const priorDir = arg('--prior');
    if (priorDir !== undefined) {
      const prior = loadModel<PixelSnailConfig>(priorDir, 'pixelsnail', 'pixelsnail');
      const priorModel = { kind: 'pixelsnail' as const, config: prior.config };
      const priorWeights = flattenParams(prior.params, paramLayout(priorModel));
      disposeParams(prior.params);
      const side = prior.config.height;
      const cells = side * prior.config.width;
      const codeBatches: CodeBatch[] = [];
      for (const stack of stacks) {
        const plane = stack.height * stack.width;
        const imageBatches = Array.from({ length: Math.ceil(stack.count / 8) }, (_, i) => {
          const first = i * 8;
          const count = Math.min(8, stack.count - first);
          return { kind: 'images' as const, images: stack.data.slice(first * plane, (first + count) * plane), positions: stack.positions.slice(first, first + count), count, size: stack.height };
        });
        const codes = await engine.encode(vqWeights, 1, imageBatches);
        const fg = foregroundCodes(stack.data, stack.count, stack.width, side, background);
        codes.forEach((c, i) => {
          const b = imageBatches[i]!;
          const volume = { file: '', count: b.count, codes: c, positions: b.positions };
          const batch = codeBatch(Array.from({ length: b.count }, (_, s) => ({ v: volume, s })), side, prior.config.width);
          batch.foreground = fg.slice(i * 8 * cells, (i * 8 + b.count) * cells);
          codeBatches.push(batch);
        });
      }
      const priorEngine = await createOnnxTrainingEngine(priorModel);
      try {
        out.prior = priorDir;
        out.priorHoldout = deriveMetrics((await priorEngine.evaluate(priorWeights, 1, codeBatches)).means, codeBatches);
      } finally {
        await priorEngine.close();
      }
    }
  } finally {
    await engine.close();
  }
  out.seconds = Math.round((performance.now() - t0) / 100) / 10;
  out.load = os.loadavg()[0];
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`eval-heldout: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
