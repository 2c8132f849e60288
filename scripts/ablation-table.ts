/**
 * Markdown tables of `ablate-lsr` results: one row per variant, pooled AP / AUROC with their 95 %
 * bootstrap intervals, best Dice, and AP per anomaly kind.
 *
 *   node dist/scripts/ablation-table.js data/ablate/lsr-inf-e8.json [more.json …]
 */
import { readFileSync } from 'node:fs';

interface Summary {
  readonly ap: number;
  readonly auroc: number;
  readonly best_dice: number;
  readonly ci?: { readonly ap: [number, number]; readonly auroc: [number, number] };
  readonly per_kind: Record<string, { readonly ap: number; readonly auroc: number }>;
}

interface Ablation {
  readonly every: number;
  readonly lambdaP: { readonly spec: string; readonly value: number };
  readonly resampledShare: number;
  readonly secondsPerCase: { readonly restore: number; readonly decode: number; readonly post: number };
  readonly cases: number;
  readonly sample: Record<string, Summary>;
  readonly pixel: Record<string, Summary>;
}

const f3 = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : String(x));
const withCi = (v: number, ci?: [number, number]): string => (ci ? `${f3(v)} [${f3(ci[0])}, ${f3(ci[1])}]` : f3(v));

function table(title: string, rows: Record<string, Summary>, useAuroc: boolean): string {
  const kinds = [...new Set(Object.values(rows).flatMap((r) => Object.keys(r.per_kind)))].sort();
  const head = `| ${title} | AP [95 % CI] | AUROC [95 % CI] | best Dice | ${kinds.map((k) => `${k} ${useAuroc ? 'AUROC' : 'AP'}`).join(' | ')} |`;
  const rule = `|${' --- |'.repeat(4 + kinds.length)}`;
  const body = Object.entries(rows).map(
    ([name, r]) =>
      `| ${name} | ${withCi(r.ap, r.ci?.ap)} | ${withCi(r.auroc, r.ci?.auroc)} | ${f3(r.best_dice)} | ${kinds.map((k) => f3(useAuroc ? (r.per_kind[k]?.auroc ?? NaN) : (r.per_kind[k]?.ap ?? NaN))).join(' | ')} |`,
  );
  return [head, rule, ...body].join('\n');
}

for (const file of process.argv.slice(2)) {
  const a = JSON.parse(readFileSync(file, 'utf8')) as Ablation;
  const s = a.secondsPerCase;
  process.stdout.write(
    `### ${file}: λp = ${a.lambdaP.spec} (${f3(a.lambdaP.value)} nats), every ${a.every}th slice, ${a.cases} cases\n\n` +
      `Resampled copy-positions: ${(100 * a.resampledShare).toFixed(1)} %; seconds per case: restore ${s.restore.toFixed(1)}, decode ${s.decode.toFixed(1)}, post-processing of all variants ${s.post.toFixed(1)}.\n\n` +
      `${table('pixel variant (weighting/smoothing/mask)', a.pixel, false)}\n\n${table('sample aggregate', a.sample, true)}\n\n`,
  );
}
