/**
 * Ablation of the LSGS scoring chain on a toy-format set: per case the code NLLs and the parallel
 * restoration run ONCE (with the same function and case seed `predict --seed S` uses), then every
 * post-processing variant (smoothing × mask) and every sample aggregate is scored in memory with the
 * metric code of `moodlsr eval`.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/ablate-lsgs.js --set data/dev-brain --weights weights/brain/lsgs \
 *     --held-out data/pop-brain-holdout --lambda-p cal --out data/ablate/lsgs-cal.json
 *   node dist/scripts/ablation-table.js data/ablate/lsgs-cal.json
 *
 * --lambda-p: nats, `cal` (the calibration's λ), or `fgQQ` / `allQQ` (QQ-th percentile of the held-out
 * NLL over the codes whose patch holds foreground / over all codes). --sample-only: no restoration.
 * --pixel-variants paper/none,min-inplane/body: only these smoothing/mask variants (default: all 6).
 * Pixel maps use the calibration's scale c (ranks do not depend on it). The held-out normals give the
 * quantiles and the per-position mean NLL; they are never cases of the set.
 */
import { join } from 'node:path';
import { readNifti } from '../src/io/nifti.js';
import { caseSeed } from '../src/mood/run.js';
import { encodeForLsgs, loadLsgsModel } from '../src/methods/lsgs/model.js';
import { lsgsScores } from '../src/methods/lsgs/restoration.js';
import type { LsgsEngine } from '../src/methods/lsgs/engine-types.js';
import { smoothStack, type VoxelSmoothing } from '../src/score/smoothing.js';
import { scaleIntoUnit } from '../src/score/pixel-score.js';
import { rawSampleScore } from '../src/score/sample-score.js';
import type { Kernel3 } from '../src/volume/pool3d.js';
import { foregroundCodes, interiorCodes, interiorLocalMaxExcess, localMaxExcess, selected, topFractionMean } from '../src/score/sample-aggregates.js';
import { quantileOfSorted } from '../src/score/held-out.js';
import { stackToVolume } from '../src/volume/resample.js';
import { bodyMask, applyMask } from '../src/volume/body-mask.js';
import type { Volume } from '../src/volume/volume.js';
import { AblationCollector, flag, niftiFiles, option, setCases, writeJson } from './ablate-common.js';

export const SMOOTHINGS: Record<string, VoxelSmoothing> = {
  paper: { min: [3, 3, 17], avg: [7, 7, 17] },
  inplane: { min: [3, 3, 1], avg: [7, 7, 1] },
  'min-inplane': { min: [3, 3, 1], avg: [7, 7, 17] },
};
const MASKS = ['none', 'body'] as const;
const TOP_FRACTION = 0.0005;
/** The pixel variants whose map also gives the top-fraction sample aggregate (each costs seconds per case). */
const TOP_OF = new Set(['paper/none', 'paper/body', 'min-inplane/body']);
/** --pixel-variants a,b: only these smoothing/mask pixel variants (default: all). */
const onlyVariants = (): Set<string> | undefined => {
  const i = process.argv.indexOf('--pixel-variants');
  return i >= 0 ? new Set(process.argv[i + 1]!.split(',')) : undefined;
};

const INTERIOR_BOXES: Record<string, Kernel3> = { '3x3x3': [3, 3, 3], '5x5x3': [5, 5, 3], '5x5x5': [5, 5, 5] };

async function encodeWithNll(engine: LsgsEngine, volume: Volume, every: number) {
  const encoded = await encodeForLsgs(engine, volume, 'brain', { every });
  const nll = await engine.transformer.nlls(encoded.codes, encoded.stack.positions);
  const codeSide = engine.nets.transformer.cfg.width;
  const fg = foregroundCodes(encoded.stack.data, encoded.stack.count, encoded.stack.width, codeSide, 0);
  return { encoded, nll, fg };
}

async function main(): Promise<void> {
  const setDir = option('set');
  const weights = option('weights', 'weights/brain/lsgs');
  const lambdaSpec = option('lambda-p', 'cal');
  const outFile = option('out');
  const runSeed = Number(option('seed', '0'));
  const limit = Number(option('limit', '0'));
  const bootstrap = Number(option('bootstrap', '1000'));
  const sampleOnly = flag('sample-only');
  const only = onlyVariants();
  const model = await loadLsgsModel(weights, { engine: 'onnx' });
  const { engine, calibration: cal } = model;
  const every = typeof cal.slices === 'object' && 'every' in cal.slices ? cal.slices.every : 8;
  const heldDir = option('held-out', 'data/pop-brain-holdout');

  // Held-out normals: NLL quantiles (foreground codes / all codes) and the per-position mean NLL.
  const fgValues: number[] = [];
  const allValues: number[] = [];
  let sum: Float64Array | undefined;
  const heldFiles = await niftiFiles(heldDir);
  for (const f of heldFiles) {
    const { volume } = await readNifti(join(heldDir, f));
    const r = await encodeWithNll(engine, volume, every);
    sum ??= new Float64Array(r.nll.length);
    r.nll.forEach((v, i) => {
      sum![i] += v;
      allValues.push(v);
      if (r.fg[i] === 1) fgValues.push(v);
    });
  }
  const fgSorted = Float32Array.from(fgValues).sort();
  const allSorted = Float32Array.from(allValues).sort();
  const positionMean = Float32Array.from(sum!, (s) => s / heldFiles.length);
  // The per-position reference of the interior aggregates: a larger set of normals when given.
  const referenceDir = option('reference-data', '');
  let referenceMean = positionMean;
  if (referenceDir) {
    const refFiles = await niftiFiles(referenceDir);
    const refSum = new Float64Array(positionMean.length);
    for (const f of refFiles) (await encodeWithNll(engine, (await readNifti(join(referenceDir, f))).volume, every)).nll.forEach((v, i) => (refSum[i] += v));
    referenceMean = Float32Array.from(refSum, (s) => s / refFiles.length);
    process.stderr.write(`position reference: ${referenceDir} (${refFiles.length} volumes)\n`);
  }
  const resolve = (spec: string): number => {
    if (spec === 'cal') return cal.lambdaP;
    const m = /^(fg|all)(\d+(?:\.\d+)?)$/.exec(spec);
    if (m) return quantileOfSorted(m[1] === 'fg' ? fgSorted : allSorted, Number(m[2]) / 100);
    const v = Number(spec);
    if (!Number.isFinite(v)) throw new Error(`--lambda-p: not understood: ${spec}`);
    return v;
  };
  const lambdaP = resolve(lambdaSpec);
  const lambdaS = { cal: cal.lambdaS, fg98: quantileOfSorted(fgSorted, 0.98), fg90: quantileOfSorted(fgSorted, 0.9) };
  process.stderr.write(`λ = ${lambdaP} (${lambdaSpec}); λs ${JSON.stringify(lambdaS)}\n`);

  const out = new AblationCollector(setDir);
  await out.init();
  const seconds = { encode: 0, restore: 0, post: 0 };
  let resampled = 0;
  let copyPositions = 0;
  for await (const c of setCases(setDir, limit)) {
    out.addCase(c);
    const t0 = performance.now();
    const { encoded, nll, fg } = await encodeWithNll(engine, c.volume, every);
    const stack = encoded.stack;
    const codeSide = engine.nets.transformer.cfg.width;
    const nllShape = [codeSide, codeSide, stack.count] as const;
    out.sample('sum@cal', rawSampleScore(nll, cal.lambdaS));
    let sumFg = 0;
    for (let i = 0; i < nll.length; i++) if (fg[i] === 1 && nll[i]! > lambdaS.fg98) sumFg += nll[i]!;
    out.sample('sum-fg@fg98', sumFg);
    // A constant reference shifts every box mean equally: localmax@cal and localmax@fg98 rank alike.
    out.sample('localmax@cal', localMaxExcess(nll, nllShape, cal.lambdaS));
    out.sample('localmax-posmean', localMaxExcess(nll, nllShape, positionMean));
    out.sample('max-fg-nll', Math.max(...selected(nll, fg)));
    // Interior codes only (the boundary holds the normals' largest NLLs), boxes of the LSR sweep.
    const interior = interiorCodes(stack.data, stack.count, stack.width, codeSide, 0);
    const q95 = quantileOfSorted(fgSorted, 0.95);
    const above = Float32Array.from(nll, (v, i) => (v > q95 && interior[i] === 1 ? 1 : 0));
    for (const [boxName, box] of Object.entries(INTERIOR_BOXES)) {
      out.sample(`interior-localmax${boxName}-fg98`, interiorLocalMaxExcess(nll, nllShape, lambdaS.fg98, interior, box));
      out.sample(`posmean-ref-interior-localmax${boxName}`, interiorLocalMaxExcess(nll, nllShape, referenceMean, interior, box));
      out.sample(`count${boxName}-q95-interior`, localMaxExcess(above, nllShape, 0, box));
    }
    const t1 = performance.now();
    seconds.encode += (t1 - t0) / 1000;
    if (sampleOnly) {
      process.stderr.write(`${c.index + 1}/${c.total} ${c.name} (${c.kind}): sample only, ${((t1 - t0) / 1000).toFixed(1)} s\n`);
      continue;
    }
    const r = await lsgsScores(engine, {
      images: stack.data,
      codes: encoded.codes,
      slicePositions: stack.positions,
      restoration: { copies: cal.copies, lambda: lambdaP, rounds: cal.rounds, seed: caseSeed(runSeed, c.name), sliceKeys: stack.zs },
      k: cal.k,
      foregroundMask: cal.foregroundMask,
      background: 0,
    });
    resampled += r.stats.resampled;
    copyPositions += r.stats.slices * r.stats.copies * r.stats.positions; // resampled counts every round
    const t2 = performance.now();
    const mask = bodyMask(c.volume.data, c.volume.shape);
    const size = stack.width;
    for (const [smoothName, smoothing] of Object.entries(SMOOTHINGS)) {
      if (only && ![...only].some((k) => k.startsWith(`${smoothName}/`))) continue;
      const smoothed = smoothStack(r.scores, stack.count, size, size, smoothing, every);
      const map = scaleIntoUnit(stackToVolume({ data: smoothed, count: stack.count, height: size, width: size, zs: stack.zs }, c.volume.shape), cal.pixelScale);
      for (const m of MASKS) {
        if (m === 'body') applyMask(map, mask);
        const key = `${smoothName}/${m}`;
        if (only && !only.has(key)) continue;
        out.pixel(key, map, c.labels);
        if (TOP_OF.has(key)) out.sample(`top${TOP_FRACTION}:${key}`, topFractionMean(map, TOP_FRACTION, m === 'body' ? mask : undefined));
      }
    }
    const t3 = performance.now();
    seconds.restore += (t2 - t1) / 1000;
    seconds.post += (t3 - t2) / 1000;
    process.stderr.write(
      `${c.index + 1}/${c.total} ${c.name} (${c.kind}): encode+nll ${((t1 - t0) / 1000).toFixed(1)} s, restore+decode ${((t2 - t1) / 1000).toFixed(1)} s, post ${((t3 - t2) / 1000).toFixed(1)} s; ${r.stats.resampled} resampled\n`,
    );
  }
  const n = out.names.length;
  await writeJson(outFile, {
    set: setDir,
    weights,
    every,
    lambdaP: { spec: lambdaSpec, value: lambdaP },
    lambdaS,
    resampledShare: resampled / Math.max(1, copyPositions),
    cases: n,
    secondsPerCase: { restore: seconds.restore / n, decode: 0, post: seconds.post / n, encode: seconds.encode / n },
    ...out.summaries(bootstrap),
  });
  await engine.dispose();
  process.stderr.write(`wrote ${outFile}\n`);
}

main().catch((err) => {
  process.stderr.write(`ablate-lsgs: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
