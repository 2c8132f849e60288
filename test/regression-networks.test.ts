/**
 * The regression gate on the shipped network weights (LSR, LSGS, VAE; brain and abdomen): a small seeded
 * set per region, scored by the leaderboard through ONNX Runtime, compared with eval/regression/REGION-networks.json.
 * A separate file from the zscore gate so that vitest runs the two on different cores.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChild, runChildOk } from './helpers/run-node.js';

const root = join(import.meta.dirname, '..');
const cli = join(root, 'dist', 'src', 'cli.js');

interface Stored {
  recipe: { inject: string[]; leaderboard: string[]; tolerance: number };
  methods: Record<string, Record<string, { ap: number; auroc: number }>>;
}

for (const name of ['brain-networks', 'abdom-networks']) {
  describe(`regression gate on the shipped network weights (${name})`, () => {
    const path = join(root, 'eval', 'regression', `${name}.json`);
    const stored = JSON.parse(readFileSync(path, 'utf8')) as Stored;
    let work: string;

    beforeAll(async () => {
      if (!existsSync(cli)) throw new Error('dist/src/cli.js is missing: run `npm run build` (npm test does)');
      if (stored.recipe.inject.includes('data/mricron/ch2bet.nii.gz') && !existsSync(join(root, 'data', 'mricron', 'ch2bet.nii.gz'))) {
        await runChildOk('sh', [join(root, 'scripts', 'fetch-data.sh')]);
      }
      work = mkdtempSync(join(tmpdir(), `moodlsr-regression-${name}-`));
      await runChildOk(process.execPath, [cli, 'inject', ...stored.recipe.inject, '--out', join(work, 'set')], { cwd: root });
    }, 300_000);
    afterAll(() => rmSync(work, { recursive: true, force: true }));

    it('reproduces the stored scores of every network method (no metric falls)', async () => {
      const methods = Object.keys(stored.methods);
      expect(methods.length).toBeGreaterThan(0);
      for (const method of methods) expect(stored.methods[method]).toHaveProperty('sample');
      const run = await runChild(
        process.execPath,
        [cli, 'leaderboard', '--set', join(work, 'set'), ...stored.recipe.leaderboard, '--out', join(work, 'board'), '--baseline', path, '--tolerance', String(stored.recipe.tolerance)],
        { cwd: root },
      );
      expect(run.stderr).toContain('no metric fell');
      expect(run.status).toBe(0);
      const now = JSON.parse(readFileSync(join(work, 'board', 'scores.json'), 'utf8')) as Stored;
      for (const [method, tasks] of Object.entries(stored.methods)) {
        for (const [task, metrics] of Object.entries(tasks)) {
          expect(Math.abs(now.methods[method]![task]!.ap - metrics.ap)).toBeLessThanOrEqual(stored.recipe.tolerance);
          expect(Math.abs(now.methods[method]![task]!.auroc - metrics.auroc)).toBeLessThanOrEqual(stored.recipe.tolerance);
        }
      }
    }, 600_000);
  });
}
