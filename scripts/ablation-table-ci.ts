/**
 * Markdown tables of `ablate-lsgs` / `ablate-vae` (or `ablate-lsr`) results with every pooled metric's
 * 95 % bootstrap interval (AP, AUROC, best Dice) and one column per anomaly kind (pixel: AP, sample:
 * AUROC of that kind's cases against all normals). `--only-sample` / `--only-pixel` print one table;
 * `--per-size`: the metric per sphere size bucket instead.
 *
 *   node dist/scripts/ablation-table-ci.js data/ablate/lsgs-cal.json [more.json …]
 */
import { readFileSync } from 'node:fs';

interface Summary {
  readonly ap: number;
  readonly auroc: number;
  readonly best_dice: number;
  readonly ci?: { readonly ap: [number, number]; readonly auroc: [number, number]; readonly best_dice?: [number, number] };
  readonly per_kind: Record<string, { readonly ap: number; readonly auroc: number }>;
  readonly per_size?: Record<string, { readonly ap: number; readonly auroc: number }>;
}

interface Ablation {
  readonly secondsPerCase: Record<string, number>;
  readonly cases: number;
  readonly sample: Record<string, Summary>;
  readonly pixel: Record<string, Summary>;
}

const f3 = (x: number | null | undefined): string => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(3) : '–');
const withCi = (v: number, ci?: [number, number]): string => (ci ? `${f3(v)} [${f3(ci[0])}, ${f3(ci[1])}]` : f3(v));

/** AP (pixel) or AUROC (sample) per sphere size bucket (small / medium / large radius). */
function sizeTable(title: string, rows: Record<string, Summary>, useAuroc: boolean): string {
  const sizes = ['small', 'medium', 'large'].filter((k) => Object.values(rows).some((r) => r.per_size?.[k] !== undefined));
  const head = `| ${title} | ${sizes.map((k) => `${k} ${useAuroc ? 'AUROC' : 'AP'}`).join(' | ')} |`;
  const rule = `|${' --- |'.repeat(1 + sizes.length)}`;
  const body = Object.entries(rows).map(([name, r]) => `| ${name} | ${sizes.map((k) => f3(useAuroc ? r.per_size?.[k]?.auroc : r.per_size?.[k]?.ap)).join(' | ')} |`);
  return [head, rule, ...body].join('\n');
}

function table(title: string, rows: Record<string, Summary>, useAuroc: boolean): string {
  const kinds = [...new Set(Object.values(rows).flatMap((r) => Object.keys(r.per_kind)))].sort();
  const head = `| ${title} | AP [95 % CI] | AUROC [95 % CI] | best Dice [95 % CI] | ${kinds.map((k) => `${k} ${useAuroc ? 'AUROC' : 'AP'}`).join(' | ')} |`;
  const rule = `|${' --- |'.repeat(4 + kinds.length)}`;
  const body = Object.entries(rows).map(
    ([name, r]) =>
      `| ${name} | ${withCi(r.ap, r.ci?.ap)} | ${withCi(r.auroc, r.ci?.auroc)} | ${withCi(r.best_dice, r.ci?.best_dice)} | ${kinds
        .map((k) => f3(useAuroc ? r.per_kind[k]?.auroc : r.per_kind[k]?.ap))
        .join(' | ')} |`,
  );
  return [head, rule, ...body].join('\n');
}

const files = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const onlySample = process.argv.includes('--only-sample');
const onlyPixel = process.argv.includes('--only-pixel');
const perSize = process.argv.includes('--per-size');
for (const file of files) {
  const a = JSON.parse(readFileSync(file, 'utf8')) as Ablation;
  const seconds = Object.entries(a.secondsPerCase)
    .map(([k, v]) => `${k} ${v.toFixed(1)}`)
    .join(', ');
  process.stdout.write(`#### ${file}: ${a.cases} cases; seconds per case: ${seconds}\n\n`);
  if (!onlySample && Object.keys(a.pixel).length > 0) process.stdout.write(`${(perSize ? sizeTable : table)('pixel variant', a.pixel, false)}\n\n`);
  if (!onlyPixel) process.stdout.write(`${(perSize ? sizeTable : table)('sample aggregate', a.sample, true)}\n\n`);
}
