/**
 * Ablation of the scoring chain of the `vae-*` methods on a toy-format set: per case the network runs
 * ONCE (forward pass on ONNX Runtime for the sample terms and the rec map, as `predict` with the
 * default engine; input gradients on TF.js workers for the gradient maps, as `predict`), then every
 * post-processing variant (smoothing × mask) of every map and every sample aggregate is scored in
 * memory with the metric code of `moodlsr eval`.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/ablate-vae.js --set data/dev-brain --weights weights/brain/vae \
 *     --held-out data/pop-brain-holdout --out data/ablate/vae.json
 *   node dist/scripts/ablation-table.js data/ablate/vae.json
 *
 * --maps rec,recgrad,…: the pixel maps (default all five; the gradient maps cost the most).
 * --smoothings JSON --masks none,body: a kernel grid of your own for every map (see below).
 * Pixel maps use the calibration's scale c per map (ranks do not depend on it). The held-out normals
 * give the per-position reference of the `localmax-posmean` aggregates; they are never cases of the set.
 */
import { join } from 'node:path';
import { readNifti } from '../src/io/nifti.js';
import { createVaePool, loadVaeModel, onnxVaeRunner, stackPieces, type VaePieceRunner } from '../src/methods/vae/model.js';
import { composeVaeMaps, piecesFor, rawVaeSampleScores, squaredErrorMap, VAE_PIXEL_MAPS, type SliceTerms, type VaePixelMap } from '../src/methods/vae/score.js';
import { localMaxVaeSampleScores, VAE_LOCAL_BOX, VAE_SLICE_BOX } from '../src/methods/vae/sample-aggregates.js';
import { smoothStack, type VoxelSmoothing } from '../src/score/smoothing.js';
import { scaleIntoUnit } from '../src/score/pixel-score.js';
import { localMaxExcess, topFractionMean } from '../src/score/sample-aggregates.js';
import { preprocessForModel } from '../src/volume/preprocess.js';
import { stackToVolume } from '../src/volume/resample.js';
import { bodyMask, applyMask } from '../src/volume/body-mask.js';
import type { SliceStack } from '../src/volume/slices.js';
import { AblationCollector, niftiFiles, option, setCases, writeJson } from './ablate-common.js';

const DEFAULT_SMOOTHINGS: Record<string, VoxelSmoothing> = {
  paper: { min: [3, 3, 17], avg: [7, 7, 17] },
  inplane: { min: [3, 3, 1], avg: [7, 7, 1] },
  'min-inplane': { min: [3, 3, 1], avg: [7, 7, 17] },
};
/** Pixel variants per map (smoothing/mask); the maps of the shipped pixel methods get the full grid. */
const FULL = ['paper/none', 'paper/body', 'inplane/none', 'inplane/body', 'min-inplane/none', 'min-inplane/body'];
const DEFAULT_VARIANTS: Record<VaePixelMap, readonly string[]> = {
  rec: FULL,
  recgrad: ['paper/none', 'paper/body', 'inplane/none', 'min-inplane/body'],
  combi: ['paper/none', 'paper/body', 'inplane/none', 'min-inplane/body'],
  klgrad: ['paper/none', 'paper/body'],
  elbograd: ['paper/none', 'paper/body'],
};
/** Pixel variants whose map also gives the top-fraction sample aggregate. */
const DEFAULT_TOP_OF = new Set(['rec/paper/none', 'rec/paper/body', 'rec/min-inplane/body', 'elbograd/paper/body', 'klgrad/paper/body']);
const TOP_FRACTION = 0.0005;

async function main(): Promise<void> {
  const setDir = option('set');
  const weights = option('weights', 'weights/brain/vae');
  const outFile = option('out');
  const limit = Number(option('limit', '0'));
  const bootstrap = Number(option('bootstrap', '1000'));
  const maps = option('maps', VAE_PIXEL_MAPS.join(',')).split(',') as VaePixelMap[];
  // --smoothings '{"name": {"min": [x, y, zVoxels], "avg": [...]}, …}' --masks body: that grid for every map
  // (top-fraction sample aggregate of every rec variant) instead of the default variants.
  const custom = process.argv.includes('--smoothings') ? (JSON.parse(option('smoothings')) as Record<string, VoxelSmoothing>) : undefined;
  const masks = option('masks', 'none,body').split(',');
  const SMOOTHINGS = custom ?? DEFAULT_SMOOTHINGS;
  const grid = custom ? Object.keys(custom).flatMap((n) => masks.map((m) => `${n}/${m}`)) : undefined;
  const VARIANTS = (m: VaePixelMap): readonly string[] => grid ?? DEFAULT_VARIANTS[m];
  const TOP_OF = grid ? new Set(grid.map((v) => `rec/${v}`)) : DEFAULT_TOP_OF;
  for (const m of maps) if (!(VAE_PIXEL_MAPS as readonly string[]).includes(m)) throw new Error(`--maps: unknown map ${m}`);
  const gradientMaps = maps.filter((m) => m !== 'rec');
  const model = await loadVaeModel(weights, { engine: 'onnx' });
  const { net, calibration: cal } = model;
  const every = typeof cal.slices === 'object' && 'every' in cal.slices ? cal.slices.every : 8;
  const forward: VaePieceRunner = onnxVaeRunner(model.onnx!);
  const workers = Number(option('workers', '2'));
  const pool = gradientMaps.length > 0 ? await createVaePool(weights, workers) : null;
  const gradients: VaePieceRunner | null = pool ? { run: (t) => pool.runAll(t), chunks: workers } : null;
  const recStd = net.cfg.recStd;
  const size = net.cfg.inputSize;
  const stackOf = (volume: Parameters<typeof preprocessForModel>[0]): SliceStack => preprocessForModel(volume, { region: cal.region, slices: cal.slices, size });

  // Held-out normals: per-position mean of the rec map (stack) and of the per-slice KL and ELBO.
  const heldDir = option('held-out', 'data/pop-brain-holdout');
  const heldFiles = await niftiFiles(heldDir);
  let recSum: Float64Array | undefined;
  let klSum: Float64Array | undefined;
  let elboSum: Float64Array | undefined;
  for (const f of heldFiles) {
    const { volume } = await readNifti(join(heldDir, f));
    const stack = stackOf(volume);
    const p = await stackPieces(forward, stack, piecesFor([]));
    const rec = squaredErrorMap(stack.data, p.xhat, recStd);
    recSum ??= new Float64Array(rec.length);
    klSum ??= new Float64Array(p.kl.length);
    elboSum ??= new Float64Array(p.kl.length);
    rec.forEach((v, i) => (recSum![i] += v));
    p.kl.forEach((v, i) => ((klSum![i] += v), (elboSum![i] += v + p.rec[i]!)));
  }
  const mean = (sum: Float64Array) => Float32Array.from(sum, (s) => s / heldFiles.length);
  const reference = { rec: mean(recSum!), kl: mean(klSum!), elbo: mean(elboSum!) };

  const out = new AblationCollector(setDir);
  await out.init();
  const seconds = { forward: 0, gradients: 0, post: 0 };
  for await (const c of setCases(setDir, limit)) {
    out.addCase(c);
    const t0 = performance.now();
    const stack = stackOf(c.volume);
    const p = await stackPieces(forward, stack, piecesFor([]));
    const terms: SliceTerms = { kl: p.kl, rec: p.rec, xhat: p.xhat };
    const count = stack.count;
    for (const [name, v] of Object.entries(rawVaeSampleScores(terms))) out.sample(`mean:${name}`, v);
    for (const [name, v] of Object.entries(localMaxVaeSampleScores(terms, stack.data, size, recStd))) out.sample(`localmax:${name}`, v);
    out.sample('localmax-posmean:rec', localMaxExcess(squaredErrorMap(stack.data, p.xhat, recStd), [size, size, count], reference.rec, VAE_LOCAL_BOX));
    out.sample('localmax-posmean:kl', localMaxExcess(p.kl, [1, 1, count], reference.kl, VAE_SLICE_BOX));
    out.sample('localmax-posmean:elbo', localMaxExcess(Float32Array.from(p.kl, (k, i) => k + p.rec[i]!), [1, 1, count], reference.elbo, VAE_SLICE_BOX));
    const raw: Partial<Record<VaePixelMap, Float32Array>> = maps.includes('rec') ? composeVaeMaps(stack.data, p, count, size, recStd, ['rec']) : {};
    const t1 = performance.now();
    if (gradients) {
      const g = await stackPieces(gradients, stack, piecesFor(gradientMaps));
      Object.assign(raw, composeVaeMaps(stack.data, g, count, size, recStd, gradientMaps));
    }
    const t2 = performance.now();
    const mask = bodyMask(c.volume.data, c.volume.shape);
    for (const m of maps) {
      for (const [smoothName, smoothing] of Object.entries(SMOOTHINGS)) {
        const wanted = VARIANTS(m).filter((v) => v.startsWith(`${smoothName}/`));
        if (wanted.length === 0) continue;
        const smoothed = smoothStack(raw[m]!, count, size, size, smoothing, every);
        const map = scaleIntoUnit(stackToVolume({ data: smoothed, count, height: size, width: size, zs: stack.zs }, c.volume.shape), cal.pixelScale[m]);
        for (const maskName of ['none', 'body'] as const) {
          const key = `${smoothName}/${maskName}`;
          if (maskName === 'body') applyMask(map, mask);
          if (!wanted.includes(key)) continue;
          out.pixel(`${m}/${key}`, map, c.labels);
          if (TOP_OF.has(`${m}/${key}`)) out.sample(`top${TOP_FRACTION}:${m}/${key}`, topFractionMean(map, TOP_FRACTION, maskName === 'body' ? mask : undefined));
        }
      }
    }
    const t3 = performance.now();
    seconds.forward += (t1 - t0) / 1000;
    seconds.gradients += (t2 - t1) / 1000;
    seconds.post += (t3 - t2) / 1000;
    process.stderr.write(
      `${c.index + 1}/${c.total} ${c.name} (${c.kind}): forward ${((t1 - t0) / 1000).toFixed(1)} s, gradients ${((t2 - t1) / 1000).toFixed(1)} s, post ${((t3 - t2) / 1000).toFixed(1)} s\n`,
    );
  }
  const n = out.names.length;
  await writeJson(outFile, {
    set: setDir,
    weights,
    every,
    lambdaP: { spec: 'none', value: NaN },
    resampledShare: 0,
    cases: n,
    maps,
    secondsPerCase: { forward: seconds.forward / n, gradients: seconds.gradients / n, post: seconds.post / n },
    ...out.summaries(bootstrap),
  });
  await pool?.close();
  await model.onnx?.release();
  process.stderr.write(`wrote ${outFile}\n`);
}

main().catch((err) => {
  process.stderr.write(`ablate-vae: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
