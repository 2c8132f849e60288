/**
 * A subset of an `inject` set for choosing settings on half the cases (docs/quality.md: data/dev-brain-sub20
 * = the first 8 normal cases and the first 2 of each kind, manifest order): symbolic links to the cases'
 * images and labels and a filtered manifest that records the rule in `subsetOf`.
 *
 *   node dist/scripts/dev-subset.js --set data/dev-brain --out data/dev-brain-sub20 [--normal 8] [--per-kind 2]
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { option } from './ablate-common.js';

interface ManifestCase {
  readonly name: string;
  readonly kind: string;
}

const set = option('set');
const out = option('out');
const normal = Number(option('normal', '8'));
const perKind = Number(option('per-kind', '2'));
const manifest = JSON.parse(readFileSync(join(set, 'manifest.json'), 'utf8')) as { cases: ManifestCase[] } & Record<string, unknown>;
const taken = new Map<string, number>();
const kept = manifest.cases.filter((c) => {
  const n = taken.get(c.kind) ?? 0;
  if (n >= (c.kind === 'normal' ? normal : perKind)) return false;
  taken.set(c.kind, n + 1);
  return true;
});
for (const folder of ['toy', 'toy_label']) {
  mkdirSync(join(out, folder), { recursive: true });
  for (const c of kept) {
    const target = join(set, folder, c.name);
    const link = join(out, folder, c.name);
    if (existsSync(target) && !existsSync(link)) symlinkSync(relative(join(out, folder), target), link);
  }
}
const rule = `first ${normal} normal cases and first ${perKind} of each kind, manifest order`;
writeFileSync(join(out, 'manifest.json'), JSON.stringify({ ...manifest, cases: kept, subsetOf: { set, rule } }, null, 1));
process.stderr.write(`dev-subset: ${kept.length} cases of ${set} in ${out} (${rule})\n`);
