/**
 * DISYRE scoring sweep over cached restorations (the choices of docs/quality.md, "DISYRE: levels,
 * smoothing and the reference, re-chosen").
 *
 *   node dist/scripts/disyre-sweep.js cache --weights W --in DIR --out CACHE [--levels 0.1,0.25,…] [--every 3] [--region abdomen]
 *     every NIfTI of DIR (a folder of volumes, or a toy set's image folder): the network's slice stack
 *     and the signed residual x − x̂_t at each level, written once (CACHE/<name>.json/.bin);
 *   node dist/scripts/disyre-sweep.js score --set DEV --dev-cache C --ref-cache R --split SUB --out JSON [--proxy] [--segmentation | --grid [--sources residual] [--mins '1,1,1;3,3,1']]
 *     every variant below: the normal residual reference rebuilt from R's cached normals with the
 *     variant's own map, then the dev set's maps scored MOOD-exactly on the volume grid (the code of
 *     `moodlsr eval`) on the cases of SUB (the choosing half), on the rest, and on all.
 *
 * The maps are made by the predictor's own functions (smoothStack, referenceOnStack, standardisedMap,
 * the stack body mask, disyreVolumePixels); the sample score is disyreRawSampleScore (the calibration
 * is monotone, so AP and AUROC do not need it).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNifti, isNiftiFileName } from '../src/io/nifti.js';
import { loadDisyreModel } from '../src/methods/disyre/model.js';
import { disyreRawSampleScore, disyreVolumePixels, type DisyreVolumeMap } from '../src/methods/disyre/score.js';
import { ReferenceAccumulator, referenceOnStack, standardisedMap, type ResidualReference } from '../src/score/place-reference.js';
import { smoothStack, stackStride, type VoxelKernel } from '../src/score/smoothing.js';
import { applyMask, bodyMask } from '../src/volume/body-mask.js';
import { preprocessForModel } from '../src/volume/preprocess.js';
import type { Region } from '../src/volume/normalise.js';
import { extractAxialSlices, stackShape } from '../src/volume/slices.js';
import { resizeBilinear } from '../src/volume/resize.js';
import { AblationCollector, option, setCases, writeJson } from './ablate-common.js';

interface CachedStack {
  readonly name: string;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  readonly zs: number[];
  readonly positions: Float32Array;
  readonly levels: number[];
  readonly data: Float32Array;
  /** Signed x − x̂_t per level, in `levels` order. */
  readonly residuals: Float32Array[];
  /** The segmentation head's probabilities per level (empty without the head). */
  readonly segmentations: Float32Array[];
}

function readCached(dir: string, name: string): CachedStack {
  const meta = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as { count: number; height: number; width: number; zs: number[]; positions: number[]; levels: number[]; segmentation?: boolean };
  const buf = readFileSync(join(dir, `${name}.bin`));
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const n = meta.count * meta.height * meta.width;
  const part = (i: number): Float32Array => Float32Array.from(all.subarray(i * n, (i + 1) * n));
  const L = meta.levels.length;
  return { name, ...meta, positions: Float32Array.from(meta.positions), data: part(0), residuals: meta.levels.map((_, i) => part(i + 1)), segmentations: meta.segmentation ? meta.levels.map((_, i) => part(L + i + 1)) : [] };
}

async function cache(): Promise<void> {
  const weights = option('weights');
  const input = option('in');
  const out = option('out');
  const levels = option('levels', '0.1,0.25,0.5,0.75,1').split(',').map(Number);
  const every = Number(option('every', '3'));
  mkdirSync(out, { recursive: true });
  const region = option('region', 'brain') as Region;
  const model = await loadDisyreModel(weights, region, { engine: 'onnx' });
  try {
    for (const file of readdirSync(input).filter(isNiftiFileName).sort()) {
      const name = file.replace(/\.nii(\.gz)?$/, '');
      if (existsSync(join(out, `${name}.json`))) continue;
      const t0 = performance.now();
      const { volume } = await readNifti(join(input, file));
      const stack = preprocessForModel(volume, { region, slices: { every }, size: model.net.cfg.inputSize, normalisation: model.net.cfg.normalisation });
      const parts: Float32Array[] = [stack.data];
      const segs: Float32Array[] = [];
      for (const t of levels) {
        const { xhat, segmentation } = await model.restore(stack.data, stack.positions, t);
        const r = new Float32Array(xhat.length);
        for (let i = 0; i < r.length; i++) r[i] = stack.data[i]! - xhat[i]!;
        parts.push(r);
        if (segmentation !== null) segs.push(segmentation);
      }
      parts.push(...segs);
      const bin = new Float32Array(parts.length * stack.data.length);
      parts.forEach((p, i) => bin.set(p, i * stack.data.length));
      writeFileSync(join(out, `${name}.bin`), Buffer.from(bin.buffer));
      writeFileSync(join(out, `${name}.json`), JSON.stringify({ count: stack.count, height: stack.height, width: stack.width, zs: stack.zs, positions: [...stack.positions], levels, segmentation: segs.length > 0, shape: volume.shape }));
      console.log(`${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    await model.release();
  }
}

/** One scoring variant: which levels, how the per-level residuals are combined, smoothing, reference. */
interface Variant {
  readonly key: string;
  readonly levels: readonly number[];
  /** 'meanAbs': mean_t |r_t| then one map (shipped); 'absMean': |mean_t r_t|; 'zMean' / 'zMax': one standardised map per level, then their mean / max. */
  readonly combine: 'meanAbs' | 'absMean' | 'zMean' | 'zMax';
  readonly min: VoxelKernel;
  readonly avg: VoxelKernel;
  readonly floor: number;
  readonly reference: boolean;
  /** Which map scores (the predictor's `map` setting): the residual's, the segmentation head's, their mean or maximum. */
  readonly source?: 'residual' | 'segmentation' | 'mean' | 'max';
  /** Smoothing of the segmentation part (default: the variant's min/avg). */
  readonly segMin?: VoxelKernel;
  readonly segAvg?: VoxelKernel;
}

const SHIPPED: Omit<Variant, 'key'> = { levels: [0.25, 0.5, 0.75, 1], combine: 'meanAbs', min: [3, 3, 1], avg: [5, 5, 7], floor: 0.002, reference: true };

function variants(): Variant[] {
  const v: Variant[] = [];
  const add = (key: string, over: Partial<Omit<Variant, 'key'>>): void => void v.push({ key, ...SHIPPED, ...over });
  if (process.argv.includes('--grid')) {
    // The pooling re-chosen around session 10's choice (map=mean, no min-pool, 9×9×13) for each map source.
    // --sources residual (a network without the head) and --mins '1,1,1;3,3,1' replace the defaults.
    const avgs: VoxelKernel[] = [[5, 5, 7], [7, 7, 11], [9, 9, 13], [11, 11, 17], [13, 13, 21]];
    const sources = option('sources', 'mean,residual,segmentation,max').split(',') as NonNullable<Variant['source']>[];
    const mins = option('mins', '1,1,1').split(';').map((m) => m.split(',').map(Number) as unknown as VoxelKernel);
    for (const source of sources) {
      for (const min of mins) for (const avg of avgs) add(`map=${source}, min ${min.join(',')} avg ${avg.join(',')}`, { source, min, avg });
    }
    if (!process.argv.includes('--sources') && !process.argv.includes('--mins')) {
      for (const avg of [[7, 7, 11], [9, 9, 13]] as VoxelKernel[]) add(`map=mean, min 3,3,1 avg ${avg.join(',')}`, { source: 'mean', min: [3, 3, 1], avg });
    }
    return v;
  }
  add('shipped', {});
  add('shipped, reference off', { reference: false });
  for (const levels of [[0.1], [0.25], [0.5], [0.75], [1], [0.1, 0.25], [0.5, 0.75, 1], [0.75, 1], [0.1, 0.25, 0.5, 0.75, 1], [0.1, 0.25, 0.5]]) add(`levels ${levels.join(';')}`, { levels });
  add('absMean', { combine: 'absMean' });
  add('absMean, 5 levels', { combine: 'absMean', levels: [0.1, 0.25, 0.5, 0.75, 1] });
  add('zMean', { combine: 'zMean' });
  add('zMax', { combine: 'zMax' });
  add('zMean, 5 levels', { combine: 'zMean', levels: [0.1, 0.25, 0.5, 0.75, 1] });
  const smoothings: [VoxelKernel, VoxelKernel][] = [
    [[1, 1, 1], [5, 5, 7]],
    [[3, 3, 1], [3, 3, 5]],
    [[3, 3, 1], [7, 7, 11]],
    [[3, 3, 1], [9, 9, 13]],
    [[3, 3, 1], [11, 11, 17]],
    [[5, 5, 1], [7, 7, 11]],
    [[3, 3, 3], [7, 7, 11]],
    [[1, 1, 1], [9, 9, 13]],
    [[1, 1, 1], [11, 11, 17]],
  ];
  for (const [min, avg] of smoothings) add(`min ${min.join(',')} avg ${avg.join(',')}`, { min, avg });
  if (process.argv.includes('--segmentation')) {
    for (const source of ['segmentation', 'mean', 'max'] as const) add(`map=${source}`, { source });
    add('map=segmentation, levels 1', { source: 'segmentation', levels: [1] });
    add('map=segmentation, levels 0.5', { source: 'segmentation', levels: [0.5] });
    add('map=segmentation, avg only 5,5,7', { source: 'segmentation', segMin: [1, 1, 1], segAvg: [5, 5, 7] });
    add('map=segmentation, unsmoothed', { source: 'segmentation', segMin: [1, 1, 1], segAvg: [1, 1, 1] });
    add('map=segmentation, avg 9,9,13', { source: 'segmentation', segMin: [1, 1, 1], segAvg: [9, 9, 13] });
    add('map=mean, seg avg only', { source: 'mean', segMin: [1, 1, 1], segAvg: [5, 5, 7] });
    add('map=mean, min 1,1,1 avg 9,9,13', { source: 'mean', min: [1, 1, 1], avg: [9, 9, 13] });
    add('map=max, min 1,1,1 avg 9,9,13', { source: 'max', min: [1, 1, 1], avg: [9, 9, 13] });
    add('map=segmentation, levels 0.25', { source: 'segmentation', levels: [0.25] });
  }
  return v;
}

/** The variant's stack map before the reference (pre-clip smoothing as the predictor does), one per reference channel. */
function channelMaps(s: CachedStack, v: Variant): Float32Array[] {
  const idx = v.levels.map((t) => {
    const i = s.levels.indexOf(t);
    if (i < 0) throw new Error(`${s.name}: level ${t} not cached`);
    return i;
  });
  const n = s.data.length;
  const smooth = (r: Float32Array): Float32Array => {
    const m = smoothStack(r, s.count, s.height, s.width, { min: v.min, avg: v.avg }, stackStride(s.zs));
    for (let i = 0; i < m.length; i++) m[i] = Math.min(1, Math.max(0, m[i]!));
    return m;
  };
  if (v.combine === 'zMean' || v.combine === 'zMax') {
    return idx.map((i) => {
      const r = new Float32Array(n);
      const src = s.residuals[i]!;
      for (let p = 0; p < n; p++) r[p] = Math.abs(src[p]!);
      return smooth(r);
    });
  }
  const r = new Float32Array(n);
  for (const i of idx) {
    const src = s.residuals[i]!;
    if (v.combine === 'meanAbs') for (let p = 0; p < n; p++) r[p] += Math.abs(src[p]!);
    else for (let p = 0; p < n; p++) r[p] += src[p]!;
  }
  const k = 1 / idx.length;
  for (let p = 0; p < n; p++) r[p] = v.combine === 'meanAbs' ? r[p]! * k : Math.abs(r[p]! * k);
  return [smooth(r)];
}

function segmentationMap(s: CachedStack, v: Variant): Float32Array {
  if (s.segmentations.length === 0) throw new Error(`${s.name}: no segmentation cached`);
  const n = s.data.length;
  const mean = new Float32Array(n);
  for (const t of v.levels) {
    const seg = s.segmentations[s.levels.indexOf(t)]!;
    for (let p = 0; p < n; p++) mean[p] += seg[p]! / v.levels.length;
  }
  const m = smoothStack(mean, s.count, s.height, s.width, { min: v.segMin ?? v.min, avg: v.segAvg ?? v.avg }, stackStride(s.zs));
  for (let i = 0; i < m.length; i++) m[i] = Math.min(1, Math.max(0, m[i]!));
  return m;
}

function finalMap(s: CachedStack, v: Variant, refs: ResidualReference[] | null): DisyreVolumeMap {
  const source = v.source ?? 'residual';
  if (source === 'segmentation') {
    const map = segmentationMap(s, v);
    const stackMask = bodyMask(s.data, stackShape(s), { threshold: 0, margin: 1 });
    applyMask(map, stackMask);
    return { stackMap: map, stackMask };
  }
  const residualMap = residualFinalMap(s, v, refs);
  if (source === 'residual') return residualMap;
  const seg = segmentationMap(s, v);
  const map = residualMap.stackMap;
  for (let p = 0; p < map.length; p++) map[p] = source === 'max' ? Math.max(map[p]!, seg[p]!) : 0.5 * (map[p]! + seg[p]!);
  applyMask(map, residualMap.stackMask);
  return residualMap;
}

function residualFinalMap(s: CachedStack, v: Variant, refs: ResidualReference[] | null): DisyreVolumeMap {
  const maps = channelMaps(s, v);
  let map: Float32Array;
  if (refs === null) {
    map = maps[0]!;
  } else {
    const z = maps.map((m, c) => {
      const at = referenceOnStack(refs[c]!, s);
      return standardisedMap(m, at.mean, at.sd, v.floor, 10);
    });
    map = z[0]!;
    if (z.length > 1) {
      map = new Float32Array(map.length);
      for (const zc of z) for (let p = 0; p < map.length; p++) map[p] = v.combine === 'zMax' ? Math.max(map[p]!, zc[p]!) : map[p]! + zc[p]! / z.length;
    }
  }
  const stackMask = bodyMask(s.data, stackShape(s), { threshold: 0, margin: 1 });
  applyMask(map, stackMask);
  return { stackMap: map, stackMask };
}

function labelsOnStack(labels: Float32Array, shape: readonly [number, number, number], s: CachedStack): Float32Array {
  const slices = extractAxialSlices({ data: labels, shape }, s.zs);
  const resized = resizeBilinear(slices.data, slices.count, slices.height, slices.width, s.height, s.width);
  return resized.map((v) => (v >= 0.5 ? 1 : 0));
}

async function score(): Promise<void> {
  const proxy = process.argv.includes('--proxy');
  const setDir = option('set');
  const devCache = option('dev-cache');
  const refCache = option('ref-cache');
  const split = new Set(readdirSync(join(option('split'), 'toy')).filter(isNiftiFileName));
  const out = option('out');
  const only = option('only', '');
  const list = variants().filter((v) => only === '' || only.split('|').includes(v.key));
  const refNames = readdirSync(refCache).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, '')).sort();
  const refStacks = refNames.map((n) => readCached(refCache, n));
  console.log(`${refStacks.length} reference normals, ${list.length} variants`);
  const refsOf = new Map<string, ResidualReference[] | null>();
  for (const v of list) {
    if (!v.reference || v.source === 'segmentation') {
      refsOf.set(v.key, null);
      continue;
    }
    const t0 = performance.now();
    let accs: ReferenceAccumulator[] | null = null;
    for (const s of refStacks) {
      const maps = channelMaps(s, v);
      accs ??= maps.map(() => new ReferenceAccumulator(s.height, s.width));
      maps.forEach((m, c) => accs![c]!.add(m, s));
    }
    refsOf.set(v.key, accs!.map((a) => a.result()));
    console.log(`reference of "${v.key}": ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const collectors = { choose: new AblationCollector(setDir), check: new AblationCollector(setDir), all: new AblationCollector(setDir) };
  for (const c of Object.values(collectors)) await c.init();
  for await (const c of setCases(setDir)) {
    const t0 = performance.now();
    const s = readCached(devCache, c.name.replace(/\.nii(\.gz)?$/, ''));
    const targets = [collectors.all, split.has(c.name) ? collectors.choose : collectors.check];
    for (const t of targets) t.addCase(c);
    // --proxy: pixel metrics on the network's slice stack (labels bilinearly resized to it, ≥ ½), 12× fewer voxels than the volume.
    const stackLabels = proxy ? labelsOnStack(c.labels, c.volume.shape, s) : null;
    for (const v of list) {
      const map = finalMap(s, v, refsOf.get(v.key)!);
      const pixels = stackLabels !== null ? map.stackMap : disyreVolumePixels(map, s, c.volume.shape);
      const sample = disyreRawSampleScore(map, 0.001);
      for (const t of targets) {
        t.sample(v.key, sample);
        t.pixel(v.key, pixels, stackLabels ?? c.labels);
      }
    }
    console.log(`${c.index + 1}/${c.total} ${c.name} (${c.kind}): ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const result: Record<string, unknown> = { variants: list };
  for (const [k, col] of Object.entries(collectors)) result[k] = col.summaries(Number(option('bootstrap', '200')));
  await writeJson(out, result);
  const table = (k: keyof typeof collectors): void => {
    const r = result[k] as { sample: Record<string, { ap: number; auroc: number }>; pixel: Record<string, { ap: number; best_dice: number }> };
    console.log(`\n${k}: variant | pixel AP | best Dice | sample AP | sample AUROC`);
    for (const v of list) console.log(`${v.key} | ${r.pixel[v.key]!.ap.toFixed(3)} | ${r.pixel[v.key]!.best_dice.toFixed(3)} | ${r.sample[v.key]!.ap.toFixed(3)} | ${r.sample[v.key]!.auroc.toFixed(3)}`);
  };
  table('choose');
  table('check');
  table('all');
}

const mode = process.argv[2];
if (mode === 'cache') await cache();
else if (mode === 'score') await score();
else throw new Error('usage: disyre-sweep.js cache|score …');
