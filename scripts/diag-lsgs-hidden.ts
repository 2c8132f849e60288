/**
 * Diagnostic: does LSGS's transformer score anomalies better when it cannot see the code it scores?
 * The product's NLL is −log p(sᵢ | the whole map, sᵢ included). Here every code is also scored with itself
 * hidden: the positions of one of 16 interleaved groups ((y mod 4, x mod 4)) are replaced by random codes
 * (the tampering the transformer was trained to repair) and the original code's NLL is read there; 16 passes
 * per map. Both NLL maps get the same sample aggregates (sum above λs, local maximum of NLL − λs, with λs the
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
import { niftiFiles, option, setCases, writeJson } from './ablate-common.js';

const GROUP_SIDE = 4;

interface Scored {
  readonly visible: Float32Array;
  readonly hidden: Float32Array;
  readonly fg: Uint8Array;
  readonly grid: [number, number, number];
}

async function scoreBoth(engine: LsgsEngine, volume: Volume, every: number, seed: string): Promise<Scored> {
  const encoded = await encodeForLsgs(engine, volume, 'brain', { every });
  const { codes, stack } = encoded;
  const cfg = engine.nets.transformer.cfg;
  const side = cfg.width;
  const plane = cfg.height * cfg.width;
  const visible = await engine.transformer.nlls(codes, stack.positions);
  const hidden = new Float32Array(codes.length);
  const rng = createRng(seed);
  for (let g = 0; g < GROUP_SIDE * GROUP_SIDE; g++) {
    const tampered = Int32Array.from(codes);
    const members: number[] = [];
    for (let p = 0; p < plane; p++) {
      const y = Math.floor(p / side);
      const x = p % side;
      if ((y % GROUP_SIDE) * GROUP_SIDE + (x % GROUP_SIDE) === g) members.push(p);
    }
    for (let s = 0; s < stack.count; s++) for (const p of members) tampered[s * plane + p] = Math.floor(rng.next() * cfg.codebookSize);
    const logits = await engine.transformer.logits(tampered, stack.positions);
    const k = cfg.codebookSize;
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
  const fg = foregroundCodes(stack.data, stack.count, stack.width, side, 0);
  return { visible, hidden, fg, grid: [side, cfg.height, stack.count] };
}

function auroc(scores: readonly number[], labels: readonly number[]): number {
  let pairs = 0;
  let wins = 0;
  for (let i = 0; i < scores.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < scores.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      wins += scores[i]! > scores[j]! ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  return wins / pairs;
}

async function main(): Promise<void> {
  const setDir = option('set');
  const weights = option('weights', 'weights/brain/lsgs');
  const heldDir = option('held-out', 'data/pop-brain-holdout');
  const outFile = option('out');
  const model = await loadLsgsModel(weights, { engine: 'onnx' });
  const { engine, calibration: cal } = model;
  const every = typeof cal.slices === 'object' && 'every' in cal.slices ? cal.slices.every : 8;
  const held = { visible: [] as number[], hidden: [] as number[] };
  for (const f of await niftiFiles(heldDir)) {
    const r = await scoreBoth(engine, (await readNifti(join(heldDir, f))).volume, every, `held:${f}`);
    r.fg.forEach((on, i) => {
      if (on !== 1) return;
      held.visible.push(r.visible[i]!);
      held.hidden.push(r.hidden[i]!);
    });
  }
  const lambdaS = {
    visible: quantileOfSorted(Float32Array.from(held.visible).sort(), 0.98),
    hidden: quantileOfSorted(Float32Array.from(held.hidden).sort(), 0.98),
  };
  process.stderr.write(`λs (98th percentile of held-out foreground codes): visible ${lambdaS.visible.toFixed(3)}, hidden ${lambdaS.hidden.toFixed(3)}\n`);
  const rows: { name: string; kind: string; label: number; scores: Record<string, number> }[] = [];
  for await (const c of setCases(setDir)) {
    const r = await scoreBoth(engine, c.volume, every, `case:${c.name}`);
    const scores: Record<string, number> = {};
    for (const which of ['visible', 'hidden'] as const) {
      const nll = r[which];
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
