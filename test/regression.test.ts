/**
 * The regression gate on the shipped weights: a small seeded brain set built from the real Colin27 head,
 * scored by the leaderboard, compared with eval/regression/brain.json. Real CLI, real files, real data.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate, readManifestIfPresent, sizeBucket } from '../eval/harness/evaluate.js';
import { injectRecipeSet, readStored, runGate, storedPath as recipePath } from './helpers/regression-gate.js';
import { runChild, runChildOk } from './helpers/run-node.js';

const root = join(import.meta.dirname, '..');
const cli = join(root, 'dist', 'src', 'cli.js');
const storedPath = recipePath('brain');

describe('regression gate on the shipped brain weights', () => {
  let work: string;
  const stored = readStored('brain');

  beforeAll(async () => {
    if (!existsSync(cli)) throw new Error('dist/src/cli.js is missing: run `npm run build` (npm test does)');
    if (!existsSync(join(root, 'data', 'mricron', 'ch2bet.nii.gz'))) await runChildOk('sh', [join(root, 'scripts', 'fetch-data.sh')]);
    work = mkdtempSync(join(tmpdir(), 'moodlsr-regression-'));
    await injectRecipeSet(stored, join(work, 'set'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  const board = async (baseline: string, out: string) => (await runGate(stored, join(work, 'set'), baseline, out)).run;

  it('reproduces the stored scores (no metric falls)', async () => {
    const run = await board(storedPath, join(work, 'board'));
    expect(run.stderr).toContain('no metric fell');
    expect(run.status).toBe(0);
    const now = JSON.parse(readFileSync(join(work, 'board', 'scores.json'), 'utf8')) as typeof stored;
    for (const [method, tasks] of Object.entries(stored.methods)) {
      for (const [task, metrics] of Object.entries(tasks)) expect(now.methods[method]![task]!.ap).toBeCloseTo(metrics.ap, 12);
    }
  });

  it('reports per anomaly kind and per radius bucket, each group with every normal case', async () => {
    const set = join(work, 'set');
    const manifest = (await readManifestIfPresent(set))!;
    const result = await evaluate({ labels: set, pred: join(work, 'board', 'predictions', 'zscore', 'pixel'), mode: 'pixel', manifest });
    const normals = manifest.cases.filter((c) => c.kind === 'normal').length;
    const buckets = new Map<string, number>();
    for (const c of manifest.cases) if (c.radius !== null) buckets.set(sizeBucket(c.radius, manifest.size), (buckets.get(sizeBucket(c.radius, manifest.size)) ?? 0) + 1);
    expect(Object.keys(result.per_size).sort()).toEqual([...buckets.keys()].sort());
    for (const [bucket, n] of buckets) expect(result.per_size[bucket]!.n).toBe(n + normals);
    expect(Object.keys(result.per_kind).sort()).toEqual(['deform', 'noise', 'uniform']);
    expect(sizeBucket(10, 256)).toBe('small');
    expect(sizeBucket(20, 256)).toBe('medium');
    expect(sizeBucket(30, 256)).toBe('large');
  });

  it('fails, naming the metric, when the stored score is higher than what the weights reach', async () => {
    const raised = structuredClone(stored);
    raised.methods.zscore!.pixel!.ap += 0.01;
    const path = join(work, 'raised.json');
    writeFileSync(path, JSON.stringify(raised));
    // The same gate over the first test's predictions: a --command entry named zscore copies them, so the
    // leaderboard scores and compares without recomputing the maps.
    const predictions = join(work, 'board', 'predictions', 'zscore');
    const recipe = stored.recipe.leaderboard.filter((arg, i, all) => arg !== '--method' && all[i - 1] !== '--method');
    expect(recipe.length).toBe(stored.recipe.leaderboard.length - 2);
    const run = await runChild(
      process.execPath,
      [cli, 'leaderboard', '--set', join(work, 'set'), ...recipe, '--command', `zscore=cp -R '${predictions}'/{task}/. {out}`, '--out', join(work, 'board-raised'), '--baseline', path, '--tolerance', String(stored.recipe.tolerance)],
      { cwd: root },
    );
    expect(run.status).toBe(3);
    expect(run.stderr).toContain('REGRESSION');
    expect(run.stderr).toContain('methods.zscore.pixel.ap');
    expect(run.stderr).not.toContain('methods.zscore.sample.ap');
  });
});

describe('regression gate on the shipped abdominal weights (synthetic phantom, 512³)', () => {
  const stored = readStored('abdom');
  let work: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'moodlsr-regression-abdom-'));
    await injectRecipeSet(stored, join(work, 'set'));
  }, 300_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('reproduces the stored scores (no metric falls)', async () => {
    expect(Object.keys(stored.methods)).toContain('zscore');
    const { run, scores } = await runGate(stored, join(work, 'set'), recipePath('abdom'), join(work, 'board'));
    expect(run.stderr).toContain('no metric fell');
    expect(run.status).toBe(0);
    const now = scores();
    for (const [method, tasks] of Object.entries(stored.methods)) {
      for (const [task, metrics] of Object.entries(tasks)) expect(now.methods[method]![task]!.ap).toBeCloseTo(metrics.ap, 12);
    }
  }, 600_000);
});
