/**
 * One development set from several `inject` sets (e.g. 80 cases from two 40-case sets, for sample
 * AUROC intervals half as wide as one set's): symbolic links to every case's image and labels, renamed
 * with a letter per set (a = the first --set, b = the second, …), and one manifest whose cases keep
 * their kinds and sizes; `mergedFrom` records the sets.
 *
 *   node dist/scripts/merge-sets.js --set data/dev-brain --set data/dev2-brain --out data/dev12-brain
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { option } from './cli-options.js';
import { TOY_DIRS } from '../eval/inject/toyset.js';

interface Manifest {
  readonly cases: { readonly name: string; readonly kind: string }[];
  readonly normal: number;
  readonly seed?: number;
  readonly [key: string]: unknown;
}

const sets: string[] = [];
for (let i = 0; i < process.argv.length; i++) if (process.argv[i] === '--set' && process.argv[i + 1]) sets.push(process.argv[i + 1]!);
const out = option('out');
if (sets.length < 2) throw new Error('merge-sets: give at least two --set folders');
if (sets.length > 26) throw new Error('merge-sets: at most 26 sets (one letter each)');
const manifests = sets.map((set) => {
  const file = join(set, 'manifest.json');
  if (!existsSync(file)) throw new Error(`merge-sets: ${file}: no manifest (not an inject set)`);
  return JSON.parse(readFileSync(file, 'utf8')) as Manifest;
});
const link = (target: string, at: string): void => {
  if (!existsSync(target)) throw new Error(`merge-sets: ${target}: missing (the set is incomplete)`);
  if (!existsSync(at) && !lstatSync(at, { throwIfNoEntry: false })) symlinkSync(relative(join(at, '..'), target), at);
};
for (const dir of [TOY_DIRS.image, TOY_DIRS.pixel, TOY_DIRS.sample]) mkdirSync(join(out, dir), { recursive: true });
const cases = manifests.flatMap((m, s) => {
  const letter = String.fromCharCode(97 + s);
  return m.cases.map((c) => {
    const name = `${letter}${c.name}`;
    link(join(sets[s]!, TOY_DIRS.image, c.name), join(out, TOY_DIRS.image, name));
    link(join(sets[s]!, TOY_DIRS.pixel, c.name), join(out, TOY_DIRS.pixel, name));
    link(join(sets[s]!, TOY_DIRS.sample, `${c.name}.txt`), join(out, TOY_DIRS.sample, `${name}.txt`));
    return { ...c, name };
  });
});
const merged = {
  ...manifests[0],
  cases,
  normal: manifests.reduce((n, m) => n + m.normal, 0),
  mergedFrom: sets.map((set, s) => ({ set, prefix: String.fromCharCode(97 + s), seed: manifests[s]!.seed })),
};
writeFileSync(join(out, 'manifest.json'), `${JSON.stringify(merged, null, 1)}\n`);
process.stderr.write(`merge-sets: ${cases.length} cases from ${sets.join(', ')} in ${out}\n`);
