/**
 * Ablation of the LSR scoring chain on a toy-format set, with the restoration run ONCE per case and
 * every post-processing variant scored from it (weighting rule × smoothing × mask, and the sample
 * aggregates), MOOD-exact metrics in memory (the same code as `moodlsr eval`).
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/ablate-lsr.js --set data/dev-brain --weights weights/brain/lsr \
 *     --held-out data/pop-brain-holdout --lambda-p fg90 --every 8 --out data/ablate/lsr-fg90-e8.json
 *
 * --sample-only: only the sample aggregates of the code NLLs (no restoration, no pixel variants).
 * --lambda-p: a number of nats, `inf` (no resampling: the plain reconstruction), `cal` (the calibration's
 * λp), or `fgQQ` / `allQQ`: the QQ-th percentile of the held-out NLL over foreground codes / all codes.
 * The held-out normal volumes (--held-out) give those quantiles and the per-position mean NLL of the
 * local-max sample aggregate; they are never cases of the set.
 * Pixel maps are scaled with the calibration's pixel scale c for every variant (ranks do not depend on
 * it; float16 resolution around c does). Case seeds are those `predict --seed S` uses.
 */
import { readdir, readFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readNifti, isNiftiFileName } from '../src/io/nifti.js';
import { caseSeed } from '../src/mood/run.js';
import { loadLsrModel } from '../src/methods/lsr/model.js';
import { encodeVolume, encodeVolumeWithDistances, type EncodedVolume } from '../src/score/sample-score.js';
import { decodeDistinct } from '../src/score/decode-distinct.js';
import { latentGeometry } from '../src/methods/lsr/networks.js';
import { restoreCodes } from '../src/score/restoration.js';
import { changedPixels, restorationWeights, weightedResidualMap, type WeightingRule } from '../src/score/residual-weights.js';
import { smoothStack, stackKernel, type VoxelSmoothing } from '../src/score/smoothing.js';
import { scaleIntoUnit } from '../src/score/pixel-score.js';
import { foregroundCodes, interiorCodes, interiorLocalMaxExcess, localMaxExcess, selected, topFractionMean } from '../src/score/sample-aggregates.js';
import { quantileOfSorted } from '../src/score/held-out.js';
import { stackToVolume } from '../src/volume/resample.js';
import { bodyMask, applyMask } from '../src/volume/body-mask.js';
import { RESIDUAL_REFERENCE_MODES, relativeResidual, residualReference } from '../src/score/normal-residual.js';
import { avgPool3d, type Kernel3 } from '../src/volume/pool3d.js';
import { readLsrResidualReference, standardisedResidual } from '../src/methods/lsr/residual-reference.js';
import { readLsrNllReference } from '../src/methods/lsr/nll-reference.js';
import { DEFAULT_RESIDUAL_REFERENCE_FLOOR } from '../src/methods/lsr/scoring.js';
import { ReferenceAccumulator, referenceOnStack, standardisedMap, type ResidualReference } from '../src/score/place-reference.js';
import type { LsrCalibration } from '../src/methods/lsr/model.js';
import { ScoreHistogram } from '../eval/metrics/index.js';
import { rankPreservingSquash } from './ablate-common.js';
import { caseGroupsOf, pixelResult, sampleResult, type CaseResult, type EvalResult } from '../eval/harness/evaluate.js';
import { TOY_DIRS, type ToySetManifest } from '../eval/inject/toyset.js';
import type { LsrEngine } from '../src/methods/lsr/engine-types.js';
import type { Volume } from '../src/volume/volume.js';

function option(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]!;
  if (fallback === undefined) throw new Error(`--${name} is required`);
  return fallback;
}

const SMOOTHINGS: Record<string, VoxelSmoothing> = {
  paper: { min: [3, 3, 17], avg: [7, 7, 17] },
  inplane: { min: [3, 3, 1], avg: [7, 7, 1] },
  'min-inplane': { min: [3, 3, 1], avg: [7, 7, 17] },
};
const RULES: readonly WeightingRule[] = ['softmax', 'mean', 'outside'];
const MASKS = ['none', 'body'] as const;
const TOP_FRACTION = 0.0005;
/** Boxes (code columns × rows × slices) of the local-maximum sample aggregate swept with --sample-only. */
const LOCALMAX_BOXES: Record<string, Kernel3> = { '1x1x1': [1, 1, 1], '3x3x1': [3, 3, 1], '3x3x3': [3, 3, 3], '5x5x3': [5, 5, 3], '5x5x5': [5, 5, 5] };
/** In-plane dilation of the normal residual reference (stack pixels; ±4 covers the population's misregistration). */
const REFERENCE_DILATION: Kernel3 = [9, 9, 1];
/** Floor added to the reference in the `divide` mode (residual units of z-scored intensity). */
const REFERENCE_FLOOR = 0.05;
/** σ floors of the `+z` standardisation (residual units), and its squash scale (DISYRE's). */
const PLACE_FLOORS = [0.02, 0.05, 0.1];
const PLACE_Z_SCALE = 10;
/**
 * `--product-gate`: the product's pixel map (the weights' own residual reference, the default σ floor) times a gate
 * from the code NLL's excess over the weights' NLL reference, g = 1 − exp(−max(0, excess) / T) per code,
 * upsampled to the stack and averaged with the paper's kernel: map × (f + (1 − f) · g).
 */
const GATE_SCALES = [0.5, 1, 2];
const GATE_FLOORS = [0.05, 0.25];

/** The code-level gate per stack pixel (nearest upsampling, then the paper's averaging kernel). */
function codeGateStack(excess: Float32Array, codeSide: number, count: number, size: number, scale: number, every: number): Float32Array {
  const block = size / codeSide;
  const out = new Float32Array(count * size * size);
  for (let s = 0; s < count; s++) {
    for (let y = 0; y < size; y++) {
      const cy = Math.floor(y / block);
      for (let x = 0; x < size; x++) {
        const e = excess[(s * codeSide + cy) * codeSide + Math.floor(x / block)]!;
        out[(s * size + y) * size + x] = e > 0 ? 1 - Math.exp(-e / scale) : 0;
      }
    }
  }
  return avgPool3d(out, [size, size, count], stackKernel(SMOOTHINGS.paper!.avg, every));
}

interface HeldOut {
  readonly quantiles: { fg: Float32Array; all: Float32Array };
  /** Mean NLL per stack position (count × h × w) over the held-out volumes. */
  readonly positionMean: Float32Array;
  /** Standard deviation of the NLL per stack position over the same volumes. */
  readonly positionStd: Float32Array;
  readonly volumes: number;
  /** Quantisation distances: sorted over foreground codes, and the mean per stack position. */
  readonly distances: { fg: Float32Array; positionMean: Float32Array };
}

async function encodeWithNll(engine: LsrEngine, volume: Volume, every: number) {
  const { distances, ...encoded } = await encodeVolumeWithDistances(engine, volume, 'brain', { every });
  const nll = await engine.codeNlls(encoded.codes, encoded.stack.positions);
  const { width: codeSide } = latentGeometry(engine.nets.prior);
  const fg = foregroundCodes(encoded.stack.data, encoded.stack.count, encoded.stack.width, codeSide, 0);
  return { encoded, nll, fg, distances };
}

async function heldOutStatistics(engine: LsrEngine, dir: string, every: number): Promise<HeldOut> {
  const files = (await readdir(dir)).filter(isNiftiFileName).sort();
  const fg: number[] = [];
  const all: number[] = [];
  let sum: Float64Array | undefined;
  let sumSq: Float64Array | undefined;
  let distanceSum: Float64Array | undefined;
  const distanceFg: number[] = [];
  for (const f of files) {
    const { volume } = await readNifti(join(dir, f));
    const r = await encodeWithNll(engine, volume, every);
    sum ??= new Float64Array(r.nll.length);
    sumSq ??= new Float64Array(r.nll.length);
    distanceSum ??= new Float64Array(r.nll.length);
    r.distances.forEach((v, i) => {
      distanceSum![i] += v;
      if (r.fg[i] === 1) distanceFg.push(v);
    });
    r.nll.forEach((v, i) => {
      sum![i] += v;
      sumSq![i] += v * v;
      all.push(v);
      if (r.fg[i] === 1) fg.push(v);
    });
  }
  if (!sum) throw new Error(`no held-out volume in ${dir}`);
  return {
    quantiles: { fg: Float32Array.from(fg).sort(), all: Float32Array.from(all).sort() },
    positionMean: Float32Array.from(sum, (s) => s / files.length),
    positionStd: Float32Array.from(sum, (s, i) => Math.sqrt(Math.max(0, sumSq![i]! / files.length - (s / files.length) ** 2))),
    volumes: files.length,
    distances: { fg: Float32Array.from(distanceFg).sort(), positionMean: Float32Array.from(distanceSum!, (s) => s / files.length) },
  };
}

/**
 * The NLL of each code standardised by the reference normals at the same stack position, or at the
 * in-plane neighbour within ±`search` codes that makes it least unusual (the population's
 * misregistration moves anatomy by up to a code). `floor` (nats) keeps positions whose normals all
 * agree from turning tiny differences into large z.
 */
function positionZ(nll: Float32Array, ref: HeldOut, shape: readonly [number, number, number], floor: number, search: number): Float32Array {
  const [w, h, d] = shape;
  const out = new Float32Array(nll.length);
  for (let z = 0; z < d; z++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const i = (z * h + y) * w + x;
        let best = Infinity;
        for (let dy = -search; dy <= search; dy++)
          for (let dx = -search; dx <= search; dx++) {
            const yy = y + dy;
            const xx = x + dx;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
            const j = (z * h + yy) * w + xx;
            const v = (nll[i]! - ref.positionMean[j]!) / (ref.positionStd[j]! + floor);
            if (v < best) best = v;
          }
        out[i] = best;
      }
  return out;
}

function resolveLambda(spec: string, calibrated: number, held: HeldOut): number {
  if (spec === 'inf') return Infinity;
  if (spec === 'cal') return calibrated;
  const m = /^(fg|all)(\d+(?:\.\d+)?)$/.exec(spec);
  if (m) return quantileOfSorted(m[1] === 'fg' ? held.quantiles.fg : held.quantiles.all, Number(m[2]) / 100);
  const v = Number(spec);
  if (!Number.isFinite(v)) throw new Error(`--lambda-p: not understood: ${spec}`);
  return v;
}

interface ResidualMaps {
  readonly maps: Map<WeightingRule, Float32Array>;
  readonly resampled: number;
  readonly copyPositions: number;
  readonly restoreSeconds: number;
}

/** Restores one encoded volume (or reconstructs it for λp = ∞) and returns the weighted residual stack per rule. */
async function residualMaps(engine: LsrEngine, encoded: EncodedVolume, lambdaP: number, cal: Pick<LsrCalibration, 'copies' | 'k'>, seed: number): Promise<ResidualMaps> {
  const stack = encoded.stack;
  const { width: codeSide, positions: cells } = latentGeometry(engine.nets.prior);
  const size = stack.width;
  const plane = size * size;
  const copies = cal.copies;
  const t0 = performance.now();
  let restored: Int32Array;
  let resampled = 0;
  let copyPositions: number;
  if (Number.isFinite(lambdaP)) {
    const r = await restoreCodes(engine, encoded.codes, stack.positions, { copies, lambdaP, seed, sliceKeys: stack.zs });
    restored = r.codes;
    resampled = r.stats.resampled;
    copyPositions = r.stats.slices * r.stats.copies * r.stats.positions;
  } else {
    restored = new Int32Array(stack.count * copies * cells);
    for (let s = 0; s < stack.count; s++) for (let j = 0; j < copies; j++) restored.set(encoded.codes.subarray(s * cells, (s + 1) * cells), (s * copies + j) * cells);
    copyPositions = stack.count * copies * cells;
  }
  const restoreSeconds = (performance.now() - t0) / 1000;
  const copyPositionsOf = new Float32Array(stack.count * copies);
  for (let s = 0; s < stack.count; s++) copyPositionsOf.fill(stack.positions[s]!, s * copies, (s + 1) * copies);
  const { images } = await decodeDistinct((c, p) => engine.decodeCodeMaps(c, p), restored, copyPositionsOf, cells, plane);
  const maps = new Map<WeightingRule, Float32Array>();
  // Without resampling all copies are the plain reconstruction: every weighting rule gives the same map.
  for (const rule of Number.isFinite(lambdaP) ? RULES : (['mean'] as const)) {
    const as = new Float32Array(stack.count * plane);
    for (let s = 0; s < stack.count; s++) {
      const input = stack.data.subarray(s * plane, (s + 1) * plane);
      const own = images.subarray(s * copies * plane, (s + 1) * copies * plane);
      const changed =
        rule === 'outside'
          ? Array.from({ length: copies }, (_, j) =>
              changedPixels(encoded.codes.subarray(s * cells, (s + 1) * cells), restored.subarray((s * copies + j) * cells, (s * copies + j + 1) * cells), { size, codeSide }),
            )
          : undefined;
      as.set(weightedResidualMap(input, own, restorationWeights(input, own, copies, rule, cal.k, changed)), s * plane);
    }
    maps.set(rule, as);
  }
  return { maps, resampled, copyPositions, restoreSeconds };
}

/** Mean residual stack of the held-out normals per rule, dilated in-plane (see src/score/normal-residual.ts). */
async function normalResidualReferences(engine: LsrEngine, dir: string, every: number, lambdaP: number, cal: Pick<LsrCalibration, 'copies' | 'k'>, runSeed: number): Promise<Map<WeightingRule, Float32Array>> {
  const files = (await readdir(dir)).filter(isNiftiFileName).sort();
  const perRule = new Map<WeightingRule, Float32Array[]>();
  let shape: [number, number, number] | undefined;
  for (const f of files) {
    const { volume } = await readNifti(join(dir, f));
    const encoded = await encodeVolume(engine, volume, 'brain', { every });
    shape = [encoded.stack.width, encoded.stack.height, encoded.stack.count];
    const r = await residualMaps(engine, encoded, lambdaP, cal, caseSeed(runSeed, f));
    for (const [rule, map] of r.maps) (perRule.get(rule) ?? perRule.set(rule, []).get(rule)!).push(map);
    process.stderr.write(`normal reference: ${f}\n`);
  }
  const out = new Map<WeightingRule, Float32Array>();
  for (const [rule, maps] of perRule) out.set(rule, residualReference(maps, shape!, REFERENCE_DILATION));
  return out;
}

/**
 * Per-place reference (src/score/place-reference.ts) of the paper-smoothed residual stack per rule over
 * normal volumes, for the `+z` variant: the map standardised as DISYRE's is.
 */
async function placeResidualReferences(engine: LsrEngine, dir: string, every: number, lambdaP: number, cal: Pick<LsrCalibration, 'copies' | 'k'>, runSeed: number): Promise<Map<WeightingRule, ResidualReference>> {
  const files = (await readdir(dir)).filter(isNiftiFileName).sort();
  const acc = new Map<WeightingRule, ReferenceAccumulator>();
  for (const f of files) {
    const { volume } = await readNifti(join(dir, f));
    const encoded = await encodeVolume(engine, volume, 'brain', { every });
    const stack = encoded.stack;
    const r = await residualMaps(engine, encoded, lambdaP, cal, caseSeed(runSeed, f));
    for (const [rule, map] of r.maps) {
      const smoothed = smoothStack(map, stack.count, stack.height, stack.width, SMOOTHINGS.paper!, every);
      (acc.get(rule) ?? acc.set(rule, new ReferenceAccumulator(stack.height, stack.width)).get(rule)!).add(smoothed, stack);
    }
    process.stderr.write(`place reference: ${f}\n`);
  }
  return new Map([...acc].map(([rule, a]) => [rule, a.result()]));
}

async function main(): Promise<void> {
  const setDir = option('set');
  const weights = option('weights', 'weights/brain/lsr');
  const every = Number(option('every', '8'));
  const lambdaSpec = option('lambda-p', 'cal');
  const outFile = option('out');
  const runSeed = Number(option('seed', '0'));
  const limit = Number(option('limit', '0'));
  const bootstrap = Number(option('bootstrap', '1000'));
  // Only the aggregates of the code NLLs (no restoration, no pixel maps): seconds per case.
  const sampleOnly = process.argv.includes('--sample-only');
  const model = await loadLsrModel(weights, { engine: 'onnx' });
  const { engine, calibration: cal } = model;
  const held = await heldOutStatistics(engine, option('held-out', 'data/pop-brain-holdout'), every);
  const lambdaP = resolveLambda(lambdaSpec, cal.lambdaP, held);
  const lambdaS = { cal: cal.lambdaS, fg95: quantileOfSorted(held.quantiles.fg, 0.95), fg98: quantileOfSorted(held.quantiles.fg, 0.98), fg99: quantileOfSorted(held.quantiles.fg, 0.99) };
  process.stderr.write(`λp = ${lambdaP} (${lambdaSpec}); λs ${JSON.stringify(lambdaS)}\n`);
  // Per-position NLL statistics of a larger set of normals (default: the held-out ones).
  const referenceDir = option('reference-data', '');
  const positionRef = referenceDir ? await heldOutStatistics(engine, referenceDir, every) : held;
  process.stderr.write(`position reference: ${referenceDir || 'held-out'} (${positionRef.volumes} volumes)\n`);
  // --product-gate scores only the product's map with the weights' own references: no other reference is built.
  const productGate = process.argv.includes('--product-gate');
  const normalReference = sampleOnly || productGate || process.argv.includes('--no-reference') ? undefined : await normalResidualReferences(engine, option('held-out', 'data/pop-brain-holdout'), every, lambdaP, cal, runSeed);
  // The residual's per-place reference over other normals (the `+z` variant), when given.
  const placeDir = option('place-reference-data', '');
  const placeReference = sampleOnly || productGate || !placeDir ? undefined : await placeResidualReferences(engine, placeDir, every, lambdaP, cal, runSeed);

  const productRefs = productGate
    ? { residual: readLsrResidualReference(weights)?.reference, nll: readLsrNllReference(weights)?.reference }
    : undefined;
  if (productGate && (productRefs?.residual === undefined || productRefs.nll === undefined)) throw new Error(`--product-gate needs ${weights}/lsr-residual-reference and lsr-nll-reference`);

  const manifest = JSON.parse(await readFile(join(setDir, 'manifest.json'), 'utf8')) as ToySetManifest;
  const groups = caseGroupsOf(manifest);
  let names = (await readdir(join(setDir, TOY_DIRS.image))).filter(isNiftiFileName).sort();
  if (limit > 0) names = names.slice(0, limit);

  const pixelHist = new Map<string, ScoreHistogram[]>();
  const sampleScores = new Map<string, number[]>();
  const addSample = (key: string, v: number): void => void (sampleScores.get(key) ?? sampleScores.set(key, []).get(key)!).push(v);
  const addPixel = (key: string, h: ScoreHistogram): void => void (pixelHist.get(key) ?? pixelHist.set(key, []).get(key)!).push(h);
  const sampleLabels: number[] = [];
  const pixelInfo: { name: string; kind?: string; size?: string; label: number; status: 'ok' }[] = [];
  const seconds = { restore: 0, decode: 0, post: 0 };
  let resampled = 0;
  let copyPositions = 0;

  for (const [n, name] of names.entries()) {
    const { volume } = await readNifti(join(setDir, TOY_DIRS.image, name));
    const { volume: labelVolume } = await readNifti(join(setDir, TOY_DIRS.pixel, name));
    const sampleLabel = Number((await readFile(join(setDir, TOY_DIRS.sample, `${name}.txt`), 'utf8')).trim());
    const labels = labelVolume.data;
    const { encoded, nll, fg, distances } = await encodeWithNll(engine, volume, every);
    const stack = encoded.stack;
    const { width: codeSide, positions: cells } = latentGeometry(engine.nets.prior);
    const size = stack.width;
    const plane = size * size;
    const copies = cal.copies;
    const group = groups.get(name) ?? { kind: 'unknown' };
    sampleLabels.push(sampleLabel);
    let positives = 0;
    for (const l of labels) if (l > 0.5) positives++;
    pixelInfo.push({ name, ...group, label: positives, status: 'ok' });

    // Sample aggregates of the code NLLs.
    const nllShape = [codeSide, codeSide, stack.count] as const;
    let sumCal = 0;
    let sumFg = 0;
    for (let i = 0; i < nll.length; i++) {
      if (nll[i]! > lambdaS.cal) sumCal += nll[i]!;
      if (fg[i] === 1 && nll[i]! > lambdaS.fg98) sumFg += nll[i]!;
    }
    addSample('sum@cal', sumCal);
    addSample('sum-fg@fg98', sumFg);
    addSample('localmax-posmean', localMaxExcess(nll, nllShape, held.positionMean));
    addSample('localmax-fg98', localMaxExcess(nll, nllShape, lambdaS.fg98));
    if (sampleOnly) {
      // Box and reference sweep of the local maximum (cheap: no restoration).
      for (const [boxName, box] of Object.entries(LOCALMAX_BOXES)) {
        for (const [refName, ref] of [['fg95', lambdaS.fg95], ['fg98', lambdaS.fg98], ['fg99', lambdaS.fg99]] as const) {
          addSample(`localmax${boxName}-${refName}`, localMaxExcess(nll, nllShape, ref, box));
        }
      }
    }
    addSample('max-fg-nll', Math.max(...selected(nll, fg)));
    if (sampleOnly) {
      for (const search of [0, 1])
        for (const floor of [0.25, 1]) {
          const z = positionZ(nll, positionRef, nllShape, floor, search);
          for (const [boxName, box] of Object.entries(LOCALMAX_BOXES)) addSample(`posz-s${search}-f${floor}-localmax${boxName}`, localMaxExcess(z, nllShape, 0, box));
          let sumPos = 0;
          for (let i = 0; i < z.length; i++) if (z[i]! > 2) sumPos += z[i]! - 2;
          addSample(`posz-s${search}-f${floor}-sum>2`, sumPos);
        }
      // Clusters of unlikely codes: the largest box share of codes above a held-out foreground quantile.
      const interior = interiorCodes(stack.data, stack.count, stack.width, codeSide, 0);
      for (const q of [0.9, 0.95, 0.98]) {
        const level = quantileOfSorted(held.quantiles.fg, q);
        const above = Float32Array.from(nll, (v) => (v > level ? 1 : 0));
        const aboveInterior = Float32Array.from(nll, (v, i) => (v > level && interior[i] === 1 ? 1 : 0));
        for (const [boxName, box] of Object.entries(LOCALMAX_BOXES)) {
          if (boxName === '1x1x1') continue;
          addSample(`count${boxName}-q${q * 100}`, localMaxExcess(above, nllShape, 0, box));
          addSample(`count${boxName}-q${q * 100}-interior`, localMaxExcess(aboveInterior, nllShape, 0, box));
        }
      }
      // The encoder's quantisation distance instead of (or beside) the prior's NLL.
      for (const q of [0.95, 0.98, 0.99]) {
        const level = quantileOfSorted(held.distances.fg, q);
        const far = Float32Array.from(distances, (v) => (v > level ? 1 : 0));
        for (const [boxName, box] of Object.entries(LOCALMAX_BOXES)) if (boxName !== '1x1x1') addSample(`qdist-count${boxName}-q${q * 100}`, localMaxExcess(far, nllShape, 0, box));
      }
      const distanceExcess = Float32Array.from(distances, (v, i) => v - positionRef.distances.positionMean[i]!);
      for (const [boxName, box] of Object.entries(LOCALMAX_BOXES)) {
        addSample(`qdist-localmax${boxName}`, localMaxExcess(distances, nllShape, 0, box));
        addSample(`qdist-posmean-localmax${boxName}`, localMaxExcess(distanceExcess, nllShape, 0, box));
      }
      let distanceSumCase = 0;
      for (const v of distances) distanceSumCase += v;
      addSample('qdist-sum', distanceSumCase);
      addSample('qdist-max', Math.max(...distances));
      for (const [boxName, box] of Object.entries(LOCALMAX_BOXES)) {
        addSample(`interior-localmax${boxName}-fg98`, interiorLocalMaxExcess(nll, nllShape, lambdaS.fg98, interior, box));
        addSample(`posmean-ref-localmax${boxName}`, localMaxExcess(nll, nllShape, positionRef.positionMean, box));
        addSample(`posmean-ref-interior-localmax${boxName}`, interiorLocalMaxExcess(nll, nllShape, positionRef.positionMean, interior, box));
      }
    }

    if (sampleOnly) {
      process.stderr.write(`${n + 1}/${names.length} ${name} (${group.kind}): sample aggregates only\n`);
      continue;
    }
    // Restoration once, then every post-processing variant.
    const t0 = performance.now();
    const r = await residualMaps(engine, encoded, lambdaP, cal, caseSeed(runSeed, name));
    resampled += r.resampled;
    copyPositions += r.copyPositions;
    const t1 = t0 + r.restoreSeconds * 1000;
    const t2 = performance.now();
    const mask = bodyMask(volume.data, volume.shape);
    if (productRefs !== undefined) {
      const raw = r.maps.get('softmax')!;
      const smoothed = smoothStack(raw, stack.count, size, size, SMOOTHINGS.paper!, every);
      const toVolume = (data: Float32Array) => {
        const v = stackToVolume({ data, count: stack.count, height: size, width: size, zs: stack.zs }, volume.shape);
        applyMask(v, mask);
        return v;
      };
      const band = standardisedResidual(smoothed, stack, productRefs.residual!, cal.pixelScale, DEFAULT_RESIDUAL_REFERENCE_FLOOR);
      addPixel('product', new ScoreHistogram().add(toVolume(band), labels));
      const refMean = referenceOnStack(productRefs.nll!, { count: stack.count, height: codeSide, width: codeSide, positions: stack.positions }).mean;
      const excess = Float32Array.from(nll, (v, i) => v - refMean[i]!);
      for (const scale of GATE_SCALES) {
        const gate = codeGateStack(excess, codeSide, stack.count, size, scale, every);
        addPixel(`gate${scale}`, new ScoreHistogram().add(toVolume(Float32Array.from(gate, (g) => 0.999 * g)), labels));
        for (const floor of GATE_FLOORS) {
          addPixel(`product×gate${scale}f${floor}`, new ScoreHistogram().add(toVolume(Float32Array.from(band, (b, i) => b * (floor + (1 - floor) * gate[i]!))), labels));
        }
      }
      process.stderr.write(`${n + 1}/${names.length} ${name} (${group.kind}): restore ${r.restoreSeconds.toFixed(1)} s (product gate variants)\n`);
      continue;
    }
    for (const [rule, raw] of r.maps) {
      const references: [string, Float32Array][] = [['', raw]];
      const normal = normalReference?.get(rule);
      if (normal) for (const mode of RESIDUAL_REFERENCE_MODES) references.push([`+${mode}`, relativeResidual(raw, normal, mode, REFERENCE_FLOOR)]);
      for (const [suffix, as] of references) {
        for (const [smoothName, smoothing] of Object.entries(SMOOTHINGS)) {
          // With restoration (costly post-processing × 3 rules) only the variants that can still matter:
          // in-plane-only kernels and the unmasked maps were equal to the others at λp = ∞.
          if ((suffix !== '' || Number.isFinite(lambdaP)) && smoothName === 'inplane') continue;
          if (suffix !== '' && smoothName !== 'paper') continue;
          const smoothed = smoothStack(as, stack.count, size, size, smoothing, every);
          if (suffix === '' && smoothName === 'paper' && placeReference?.has(rule)) {
            const at = referenceOnStack(placeReference.get(rule)!, stack);
            for (const floor of PLACE_FLOORS) {
              const z = stackToVolume({ data: standardisedMap(smoothed, at.mean, at.sd, floor, PLACE_Z_SCALE), count: stack.count, height: size, width: size, zs: stack.zs }, volume.shape);
              applyMask(z, mask);
              const key = `${rule}+z${floor}/paper/body`;
              addPixel(key, new ScoreHistogram().add(z, labels));
              addSample(`top${TOP_FRACTION}:${key}`, topFractionMean(z, TOP_FRACTION, mask));
            }
          }
          const map = scaleIntoUnit(stackToVolume({ data: smoothed, count: stack.count, height: size, width: size, zs: stack.zs }, volume.shape), suffix === '+divide' ? 1 : cal.pixelScale);
          for (const m of MASKS) {
            if ((suffix !== '' || Number.isFinite(lambdaP)) && m === 'none') continue;
            if (m === 'body') applyMask(map, mask);
            const key = `${rule}${suffix}/${smoothName}/${m}`;
            addPixel(key, new ScoreHistogram().add(map, labels));
            if (smoothName === 'paper') addSample(`top${TOP_FRACTION}:${key}`, topFractionMean(map, TOP_FRACTION, m === 'body' ? mask : undefined));
          }
        }
      }
    }
    const t3 = performance.now();
    seconds.restore += (t1 - t0) / 1000;
    seconds.decode += (t2 - t1) / 1000;
    seconds.post += (t3 - t2) / 1000;
    process.stderr.write(`${n + 1}/${names.length} ${name} (${group.kind}): restore ${((t1 - t0) / 1000).toFixed(1)} s, decode ${((t2 - t1) / 1000).toFixed(1)} s, post ${((t3 - t2) / 1000).toFixed(1)} s\n`);
  }

  for (const [key, scores] of sampleScores) sampleScores.set(key, scores.map(rankPreservingSquash));
  const perCase = (scores: number[]): CaseResult[] =>
    names.map((name, i) => ({ name: name.replace(/\.nii(\.gz)?$/, ''), ...(groups.get(name) ?? {}), label: sampleLabels[i]!, score: scores[i]!, status: 'ok' as const }));
  const summarise = (r: EvalResult) => ({ ap: r.ap, auroc: r.auroc, best_dice: r.best_dice, ci: r.ci, per_kind: r.per_kind, per_size: r.per_size });
  const o = { bootstrap, seed: 14 };
  const sample: Record<string, unknown> = {};
  for (const [key, scores] of sampleScores) sample[key] = summarise(sampleResult(scores, sampleLabels, perCase(scores), o));
  const pixel: Record<string, unknown> = {};
  for (const [key, hists] of pixelHist) pixel[key] = summarise(pixelResult(hists, pixelInfo, o));
  const result = {
    set: setDir,
    weights,
    every,
    lambdaP: { spec: lambdaSpec, value: lambdaP },
    lambdaS,
    resampledShare: resampled / Math.max(1, copyPositions),
    cases: names.length,
    secondsPerCase: { restore: seconds.restore / names.length, decode: seconds.decode / names.length, post: seconds.post / names.length },
    sample,
    pixel,
  };
  await mkdir(dirname(outFile), { recursive: true });
  await writeFile(outFile, `${JSON.stringify(result, null, 1)}\n`);
  await engine.dispose();
  process.stderr.write(`wrote ${outFile}\n`);
}

main().catch((err) => {
  process.stderr.write(`ablate-lsr: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
