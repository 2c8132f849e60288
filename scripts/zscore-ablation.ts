/**
 * Ablation of the z-score baseline on a toy-format set, in memory: every variant scores every case from
 * one read of the case, with the same code as `predict --method zscore` (pooledZMap, pixelScoreFromZ,
 * rawSampleScoreOf) and the same metrics as `eval` (sampleResult, pixelResult).
 *
 *   node dist/scripts/zscore-ablation.js --set data/dev-brain --fit data/pop-brain \
 *     --calibration data/pop-brain-holdout --variants variants.json --out result.json [--bootstrap 1000 --seed 14]
 *
 * variants.json: [{ "name": "...", "train": { key: value, ... }, "set": { key: value, ... } }, ...]
 * `train` is what `train zscore --set` (plus grid, quantiles) would store, `set` the predict-time overrides.
 * Variants with the same `train` share one fit. Sample scores are the raw aggregates mapped by
 * r / (1 + r): strictly increasing like the calibration, so AP and AUROC are those of the calibrated ones.
 * --limit N scores only the first N cases (a smoke test).
 * --stride S: pixel metrics over the voxels whose three indices are multiples of S (a 1/S³ lattice; the
 *   map is computed in full, only the histogram is thinned; S = 1, the default, is the exact metric).
 * --shard K/N: score cases K, K + N, … only and write OUT.shard-K.json (raw sample scores and sparse
 *   histograms); --merge N then reads the N shard files and writes OUT and its Markdown table.
 * Seconds per case: the scoring (z-map, sample aggregate, pixel map) of one variant, without reading;
 * variants of one fit share a case's standardised intensities, grid copy and masks (a memo; --memo off
 * times each variant on its own), so their seconds are not comparable unless --memo off.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fitZScore, loadZScore, saveZScore, withZScoreSettings, type ZScoreModel } from '../src/methods/zscore/model.js';
import { existsSync } from 'node:fs';
import { LEGACY_ZSCORE_CONFIG, pixelScoreFromZ, rawSampleScoreOf, zscoreMaps, zscoreSettings } from '../src/methods/zscore/zscore.js';
import { readNifti, isNiftiFileName } from '../src/io/nifti.js';
import { listNiftiFiles } from '../src/train/dataset.js';
import { caseGroupsOf, pixelResult, readManifestIfPresent, sampleResult, type CaseResult, type EvalResult } from '../eval/harness/evaluate.js';
import { ScoreHistogram } from '../eval/metrics/index.js';
import { readdir } from 'node:fs/promises';

interface Variant {
  readonly name: string;
  readonly train?: Record<string, string | number>;
  readonly set?: Record<string, string | number>;
  /** Further sample aggregates scored on this variant's z-map (sample task only), name → overrides. */
  readonly aggregates?: Record<string, Record<string, string | number>>;
}

function args(): Record<string, string> {
  const out: Record<string, string> = {};
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i += 2) out[a[i]!.replace(/^--/, '')] = a[i + 1]!;
  return out;
}

const strings = (r: Record<string, string | number> = {}): Record<string, string> =>
  Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)]));

interface ShardCase {
  name: string;
  kind?: string;
  size?: string;
  label: number;
  status: CaseResult['status'];
  sampleLabel: number;
  raw: number;
  hist: [number[], number[], number[]];
}
interface ShardVariant {
  cases: ShardCase[];
  aggregates: Record<string, number[]>;
  seconds: number;
}

/** Flat indices of the voxels whose x, y and z are multiples of `stride`. */
function lattice(shape: readonly [number, number, number], stride: number): Int32Array {
  const [nx, ny, nz] = shape;
  const out: number[] = [];
  for (let z = 0; z < nz; z += stride) for (let y = 0; y < ny; y += stride) for (let x = 0; x < nx; x += stride) out.push(x + nx * (y + ny * z));
  return Int32Array.from(out);
}

function sparse(h: ScoreHistogram): [number[], number[], number[]] {
  const bins: number[] = [];
  const pos: number[] = [];
  const neg: number[] = [];
  for (let b = 0; b < h.positives.length; b++) {
    if (h.positives[b]! + h.negatives[b]! === 0) continue;
    bins.push(b);
    pos.push(h.positives[b]!);
    neg.push(h.negatives[b]!);
  }
  return [bins, pos, neg];
}

function dense([bins, pos, neg]: [number[], number[], number[]]): ScoreHistogram {
  const h = new ScoreHistogram();
  bins.forEach((b, i) => {
    h.positives[b] = pos[i]!;
    h.negatives[b] = neg[i]!;
  });
  return h;
}

/** Reads OUT.shard-0 … OUT.shard-(N−1) and writes the tables as an unsharded run would. */
async function merge(o: Record<string, string>): Promise<void> {
  const n = Number(o.merge);
  const variants = JSON.parse(await readFile(o.variants!, 'utf8')) as Variant[];
  const bootstrap = Number(o.bootstrap ?? 1000);
  const seed = Number(o.seed ?? 14);
  const shards: Record<string, ShardVariant>[] = [];
  for (let k = 0; k < n; k++) shards.push(JSON.parse(await readFile(o.out!.replace(/\.json$/, `.shard-${k}.json`), 'utf8')));
  const results: Record<string, { sample: EvalResult; pixel: EvalResult; secondsPerCase: number; config: unknown }> = {};
  const sampleAggregates: Record<string, EvalResult> = {};
  for (const v of variants) {
    const cases = shards.flatMap((s) => s[v.name]!.cases).sort((a, b) => (a.name < b.name ? -1 : 1));
    const labels = cases.map((c) => c.sampleLabel);
    const toScore = (r: number): number => r / (1 + r);
    const perCase = (scores: number[]): CaseResult[] =>
      cases.map((c, j) => ({ name: c.name, kind: c.kind, size: c.size, label: c.sampleLabel, score: scores[j]!, status: 'ok' as const }));
    const scores = cases.map((c) => toScore(c.raw));
    const info = cases.map((c) => ({ name: c.name, kind: c.kind, size: c.size, label: c.label, status: c.status }));
    results[v.name] = {
      sample: sampleResult(scores, labels, perCase(scores), { bootstrap, seed }),
      pixel: pixelResult(cases.map((c) => dense(c.hist)), info, { bootstrap, seed }),
      secondsPerCase: shards.reduce((t, s) => t + s[v.name]!.seconds, 0) / cases.length,
      config: v,
    };
    console.error(`${v.name}: ${summary(results[v.name]!)}`);
    for (const a of Object.keys(v.aggregates ?? {})) {
      // Shard order, then re-sorted by case name like `cases`.
      const byName = new Map<string, number>();
      for (const s of shards) s[v.name]!.cases.forEach((c, j) => byName.set(c.name, s[v.name]!.aggregates[a]![j]!));
      const sc = cases.map((c) => toScore(byName.get(c.name)!));
      sampleAggregates[`${v.name} · ${a}`] = sampleResult(sc, labels, perCase(sc), { bootstrap, seed });
    }
  }
  const drop = (k: string, val: unknown): unknown => (k === 'curves' || k === 'per_case' ? undefined : val);
  await writeFile(o.out!, JSON.stringify({ variants: results, sampleAggregates }, drop, 1));
  await writeFile(o.out!.replace(/\.json$/, '.md'), table(variants, results) + '\n' + aggregateTable(sampleAggregates));
}

async function main(): Promise<void> {
  const o = args();
  if (o.merge) return merge(o);
  const variants = JSON.parse(await readFile(o.variants!, 'utf8')) as Variant[];
  const bootstrap = Number(o.bootstrap ?? 1000);
  const seed = Number(o.seed ?? 14);
  const manifest = await readManifestIfPresent(o.set!);
  const groups = caseGroupsOf(manifest);
  const caseNames = (await readdir(join(o.set!, 'toy'))).filter(isNiftiFileName).sort().slice(0, Number(o.limit ?? Infinity));
  const fitFiles = await listNiftiFiles([o.fit!]);
  const calibrationFiles = await listNiftiFiles([o.calibration!]);
  const byTrain = new Map<string, Variant[]>();
  for (const v of variants) {
    const key = JSON.stringify(v.train ?? {});
    byTrain.set(key, [...(byTrain.get(key) ?? []), v]);
  }
  const results: Record<string, { sample: EvalResult; pixel: EvalResult; secondsPerCase: number; config: unknown }> = {};
  const shardOut: Record<string, ShardVariant> = {};
  const sampleAggregates: Record<string, EvalResult> = {};
  for (const [key, members] of byTrain) {
    const train = strings(JSON.parse(key) as Record<string, string | number>);
    const { grid, quantiles, ...scoring } = train;
    let config = zscoreSettings({ ...LEGACY_ZSCORE_CONFIG, grid: grid ? Number(grid) : LEGACY_ZSCORE_CONFIG.grid, intensity: 'none', resolution: 'case', mask: false }, scoring);
    if (quantiles) config = { ...config, quantiles: Number(quantiles) };
    const t0 = performance.now();
    const cacheDir = o.cache ? join(o.cache, key.replace(/[^A-Za-z0-9.]+/g, '_') || 'default') : undefined;
    let base: ZScoreModel;
    if (cacheDir && existsSync(join(cacheDir, 'zscore.json'))) base = await loadZScore(cacheDir);
    else {
      base = await fitZScore({ files: fitFiles, holdout: 0, calibrationFiles, seed: 1, config, log: (l) => console.error(`fit ${key}: ${l}`) });
      if (cacheDir) await saveZScore(cacheDir, base);
    }
    console.error(`fit ${key}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const models: ZScoreModel[] = members.map((v) => withZScoreSettings(base, strings(v.set)));
    const hist: ScoreHistogram[][] = members.map(() => []);
    const raw: number[][] = members.map(() => []);
    const aggRaw: Record<string, number[]>[] = members.map((v) => Object.fromEntries(Object.keys(v.aggregates ?? {}).map((a) => [a, []])));
    const seconds = members.map(() => 0);
    const labels: number[] = [];
    const info: { name: string; kind?: string; size?: string; label: number; status: CaseResult['status'] }[] = [];
    const stride = Number(o.stride ?? 1);
    const [shardK, shardN] = (o.shard ?? '0/1').split('/').map(Number) as [number, number];
    for (const [ci, name] of caseNames.entries()) {
      if (ci % shardN !== shardK) continue;
      const { volume } = await readNifti(join(o.set!, 'toy', name));
      const { volume: label } = await readNifti(join(o.set!, 'toy_label', 'pixel', name));
      const keep = lattice(volume.shape, stride);
      const labelBytes = Uint8Array.from(keep, (i) => (Math.round(label.data[i]!) === 1 ? 1 : 0));
      let positives = 0;
      for (const v of labelBytes) positives += v;
      labels.push(Number((await readFile(join(o.set!, 'toy_label', 'sample', `${name}.txt`), 'utf8')).trim()));
      info.push({ name, ...groups.get(name), label: positives, status: 'ok' });
      const memo = o.memo === 'off' ? undefined : new Map<string, unknown>();
      models.forEach((m, i) => {
        const t = performance.now();
        const maps = zscoreMaps(volume, m.stats, m.config, { pixel: true }, memo);
        raw[i]!.push(rawSampleScoreOf(maps.sample, maps.sampleShape, m.config));
        for (const [a, agg] of Object.entries(members[i]!.aggregates ?? {})) {
          aggRaw[i]![a]!.push(rawSampleScoreOf(maps.sample, maps.sampleShape, zscoreSettings(m.config, strings(agg))));
        }
        const full = maps.pixel!;
        const thinned = stride === 1 ? full : Float32Array.from(keep, (j) => full[j]!);
        const pixel = pixelScoreFromZ(thinned, m.config.zScale);
        seconds[i]! += (performance.now() - t) / 1000;
        hist[i]!.push(new ScoreHistogram().add(pixel, labelBytes));
      });
      console.error(`${key} ${name} done`);
    }
    if (o.shard) {
      members.forEach((v, i) => {
        shardOut[v.name] = {
          cases: info.map((c, j) => ({ ...c, sampleLabel: labels[j]!, raw: raw[i]![j]!, hist: sparse(hist[i]![j]!) })),
          aggregates: aggRaw[i]!,
          seconds: seconds[i]!,
        };
      });
      continue;
    }
    members.forEach((v, i) => {
      const scores = raw[i]!.map((r) => r / (1 + r));
      const perCase: CaseResult[] = info.map((c, j) => ({ name: c.name, kind: c.kind, size: c.size, label: labels[j]!, score: scores[j]!, status: 'ok' }));
      results[v.name] = {
        sample: sampleResult(scores, labels, perCase, { bootstrap, seed }),
        pixel: pixelResult(hist[i]!, info, { bootstrap, seed }),
        secondsPerCase: seconds[i]! / caseNames.length,
        config: models[i]!.config,
      };
      console.error(`${v.name}: ${summary(results[v.name]!)}`);
      for (const [a, r] of Object.entries(aggRaw[i]!)) {
        const sc = r.map((x) => x / (1 + x));
        const pc: CaseResult[] = info.map((c, j) => ({ name: c.name, kind: c.kind, size: c.size, label: labels[j]!, score: sc[j]!, status: 'ok' }));
        sampleAggregates[`${v.name} · ${a}`] = sampleResult(sc, labels, pc, { bootstrap, seed });
      }
    });
  }
  if (o.shard) {
    await writeFile(o.out!.replace(/\.json$/, `.shard-${o.shard.split('/')[0]}.json`), JSON.stringify(shardOut));
    return;
  }
  const drop = (k: string, v: unknown): unknown => (k === 'curves' || k === 'per_case' ? undefined : v);
  await writeFile(o.out!, JSON.stringify({ variants: results, sampleAggregates }, drop, 1));
  await writeFile(o.out!.replace(/\.json$/, '.md'), table(variants, results) + '\n' + aggregateTable(sampleAggregates));
}

function summary(r: { sample: EvalResult; pixel: EvalResult; secondsPerCase: number }): string {
  return `sample AP ${r.sample.ap.toFixed(3)} AUROC ${r.sample.auroc.toFixed(3)}; pixel AP ${r.pixel.ap.toFixed(4)} AUROC ${r.pixel.auroc.toFixed(3)} Dice ${r.pixel.best_dice.toFixed(3)}; ${r.secondsPerCase.toFixed(2)} s/case`;
}

const f = (x: number, d = 3): string => x.toFixed(d);
const ci = (c: [number, number] | undefined, d = 3): string => (c ? ` (${f(c[0], d)}–${f(c[1], d)})` : '');

function table(variants: Variant[], results: Record<string, { sample: EvalResult; pixel: EvalResult; secondsPerCase: number }>): string {
  const kinds = Object.keys(Object.values(results)[0]!.pixel.per_kind).sort();
  const lines = [
    `| variant | sample AP | sample AUROC | pixel AP | pixel AUROC | pixel best Dice | s/case | ${kinds.map((k) => `${k} px AP / smp AUROC`).join(' | ')} |`,
    `|---|---|---|---|---|---|---|${kinds.map(() => '---').join('|')}|`,
  ];
  for (const v of variants) {
    const r = results[v.name]!;
    const s = r.sample;
    const p = r.pixel;
    lines.push(
      `| ${v.name} | ${f(s.ap)}${ci(s.ci?.ap)} | ${f(s.auroc)}${ci(s.ci?.auroc)} | ${f(p.ap, 4)}${ci(p.ci?.ap, 4)} | ${f(p.auroc)}${ci(p.ci?.auroc)} | ${f(p.best_dice)}${ci(p.ci?.best_dice)} | ${f(r.secondsPerCase, 2)} | ${kinds
        .map((k) => `${f(p.per_kind[k]!.ap, 4)} / ${f(s.per_kind[k]!.auroc, 2)}`)
        .join(' | ')} |`,
    );
  }
  return lines.join('\n') + '\n';
}

function aggregateTable(results: Record<string, EvalResult>): string {
  const names = Object.keys(results);
  if (names.length === 0) return '';
  const kinds = Object.keys(results[names[0]!]!.per_kind).sort();
  const lines = [
    `| variant · sample aggregate | sample AP | sample AUROC | ${kinds.map((k) => `${k} AUROC`).join(' | ')} |`,
    `|---|---|---|${kinds.map(() => '---').join('|')}|`,
  ];
  for (const n of names) {
    const s = results[n]!;
    lines.push(`| ${n} | ${f(s.ap)}${ci(s.ci?.ap)} | ${f(s.auroc)}${ci(s.ci?.auroc)} | ${kinds.map((k) => f(s.per_kind[k]!.auroc, 2)).join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
