/**
 * Diagnostic: does LSGS's transformer score anomalies better when it cannot see the code it scores, or the
 * anomaly's other codes? The product's NLL is −log p(sᵢ | the whole map, sᵢ included). Here every code is
 * also scored hidden (SCHEMES: one code of each 4×4 tile at a time, or a whole 4×4 or 8×8 block at a time):
 * the hidden positions are replaced by random codes (the tampering the transformer was trained to repair)
 * and the original code's NLL is read there. Every NLL map gets the same sample aggregates (sum above λs, local maximum of NLL − λs, with λs the
 * 98th percentile over the held-out normals' foreground codes of that scoring), and the AUROC of each over the
 * set's cases, overall and per kind.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/diag-lsgs-hidden.js --set data/dev12-brain --weights weights/brain/lsgs \
 *     --held-out data/pop-brain-holdout --out data/ablate/lsgs-hidden-dev12.json
 */
import { join } from 'node:path';
import { readNifti } from '../src/io/nifti.js';
import { createRng } from '../src/engine/random.js';
import { encodeForLsgs, loadLsgsModel } from '../src/methods/lsgs/model.js';
import type { LsgsEngine } from '../src/methods/lsgs/engine-types.js';
import { foregroundCodes, localMaxExcess } from '../src/score/sample-aggregates.js';
import { quantileOfSorted } from '../src/score/held-out.js';
import type { Volume } from '../src/volume/volume.js';
import { niftiFiles, option, rankPreservingSquash, setCases, writeJson } from './ablate-common.js';
import { sampleAuroc } from '../eval/metrics/samples.js';

/**
 * How codes are hidden: `interleaved` hides one of 16 interleaved groups ((y mod 4, x mod 4)) per pass, so a
 * hidden code still sees its neighbours; `blockB` hides one B×B block of the grid per pass (every block of
 * the slice stack at once), so a code inside a contiguous anomaly no longer sees the anomaly's other codes.
 */
const SCHEMES = ['interleaved', 'block4', 'block8'] as const;
type Scheme = (typeof SCHEMES)[number];
const WHICH = ['visible', ...SCHEMES] as const;
type Which = (typeof WHICH)[number];

/** The passes of a scheme: each pass lists the in-plane positions it hides. */
function passesOf(scheme: Scheme, side: number): number[][] {
  const passes: number[][] = [];
  const add = (key: (y: number, x: number) => number, count: number): void => {
    for (let g = 0; g < count; g++) passes.push([]);
    for (let p = 0; p < side * side; p++) passes[key(Math.floor(p / side), p % side)]!.push(p);
  };
  if (scheme === 'interleaved') add((y, x) => (y % 4) * 4 + (x % 4), 16);
  else {
    const b = scheme === 'block4' ? 4 : 8;
    const per = Math.ceil(side / b);
    add((y, x) => Math.floor(y / b) * per + Math.floor(x / b), per * per);
  }
  return passes;
}

interface Scored {
  readonly nll: Record<Which, Float32Array>;
  readonly fg: Uint8Array;
  readonly grid: [number, number, number];
}

async function scoreAll(engine: LsgsEngine, volume: Volume, every: number, seed: string): Promise<Scored> {
  const encoded = await encodeForLsgs(engine, volume, 'brain', { every });
  const { codes, stack } = encoded;
  const cfg = engine.nets.transformer.cfg;
  const side = cfg.width;
  const plane = cfg.height * cfg.width;
  const k = cfg.codebookSize;
  const nll = { visible: await engine.transformer.nlls(codes, stack.positions) } as Record<Which, Float32Array>;
  for (const scheme of SCHEMES) {
    const hidden = new Float32Array(codes.length);
    const rng = createRng(`${seed}:${scheme}`);
    for (const members of passesOf(scheme, side)) {
      // hidden = replaced by random codes, the tampering the transformer was trained to repair
      const tampered = Int32Array.from(codes);
      for (let s = 0; s < stack.count; s++) for (const p of members) tampered[s * plane + p] = Math.floor(rng.next() * k);
      const logits = await engine.transformer.logits(tampered, stack.positions);
      for (let s = 0; s < stack.count; s++) {
        for (const p of members) {
          const i = s * plane + p;
          const row = logits.subarray(i * k, (i + 1) * k);
          let max = -Infinity;
          for (const v of row) max = Math.max(max, v);
          let sum = 0;
          for (const v of row) sum += Math.exp(v - max);
          hidden[i] = max + Math.log(sum) - row[codes[i]!]!;
        }
      }
    }
    nll[scheme] = hidden;
  }
  const fg = foregroundCodes(stack.data, stack.count, stack.width, side, 0);
  return { nll, fg, grid: [side, cfg.height, stack.count] };
}

/** AUROC of raw (unbounded) aggregates with the evaluation's own metric. */
function auroc(scores: readonly number[], labels: readonly number[]): number {
  return sampleAuroc(scores.map(rankPreservingSquash), labels);
}

async function main(): Promise<void> {
  const setDir = option('set');
  const weights = option('weights', 'weights/brain/lsgs');
  const heldDir = option('held-out', 'data/pop-brain-holdout');
  const outFile = option('out');
  const model = await loadLsgsModel(weights, { engine: 'onnx' });
  const { engine, calibration: cal } = model;
  const every = typeof cal.slices === 'object' && 'every' in cal.slices ? cal.slices.every : 8;
  const held = Object.fromEntries(WHICH.map((w) => [w, [] as number[]])) as Record<Which, number[]>;
  for (const f of await niftiFiles(heldDir)) {
    const r = await scoreAll(engine, (await readNifti(join(heldDir, f))).volume, every, `held:${f}`);
    r.fg.forEach((on, i) => {
      if (on !== 1) return;
      for (const w of WHICH) held[w].push(r.nll[w][i]!);
    });
  }
  const lambdaS = Object.fromEntries(WHICH.map((w) => [w, quantileOfSorted(Float32Array.from(held[w]).sort(), 0.98)])) as Record<Which, number>;
  process.stderr.write(`λs (98th percentile of held-out foreground codes): ${WHICH.map((w) => `${w} ${lambdaS[w].toFixed(3)}`).join(', ')}\n`);
  const rows: { name: string; kind: string; label: number; scores: Record<string, number> }[] = [];
  for await (const c of setCases(setDir)) {
    const r = await scoreAll(engine, c.volume, every, `case:${c.name}`);
    const scores: Record<string, number> = {};
    for (const which of WHICH) {
      const nll = r.nll[which];
      let sum = 0;
      for (const v of nll) if (v > lambdaS[which]) sum += v;
      scores[`${which}/sum`] = sum;
      scores[`${which}/localmax`] = localMaxExcess(nll, r.grid, lambdaS[which]);
    }
    rows.push({ name: c.name, kind: c.kind, label: c.sampleLabel, scores });
    process.stderr.write(`${c.index + 1}/${c.total} ${c.name} (${c.kind}): ${Object.entries(scores).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}\n`);
  }
  const kinds = [...new Set(rows.filter((r) => r.label === 1).map((r) => r.kind))].sort();
  const table: Record<string, Record<string, number>> = {};
  for (const key of Object.keys(rows[0]!.scores)) {
    table[key] = { all: auroc(rows.map((r) => r.scores[key]!), rows.map((r) => r.label)) };
    for (const kind of kinds) {
      const sub = rows.filter((r) => r.label === 0 || r.kind === kind);
      table[key]![kind] = auroc(sub.map((r) => r.scores[key]!), sub.map((r) => r.label));
    }
  }
  for (const [key, v] of Object.entries(table)) process.stdout.write(`${key}: ${Object.entries(v).map(([k, a]) => `${k} ${a.toFixed(3)}`).join(', ')}\n`);
  await writeJson(outFile, { weights, lambdaS, auroc: table, rows });
  await model.engine.dispose();
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
