/**
 * The regression gate on the shipped network weights (lsr, lsgs, vae; brain and abdomen): a small seeded set
 * per region scored by the leaderboard on ONNX Runtime, compared with eval/regression/REGION-networks.json.
 * A file of its own so that vitest runs it beside the zscore gate (test/regression.test.ts).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, injectRecipeSet, readStored, runGate, storedPath } from './helpers/regression-gate.js';
import { runChildOk } from './helpers/run-node.js';

for (const name of ['brain-networks', 'abdom-networks']) {
  describe(`regression gate on the shipped network weights (${name})`, () => {
    const stored = readStored(name);
    let work: string;

    beforeAll(async () => {
      if (!existsSync(CLI)) throw new Error('dist/src/cli.js is missing: run `npm run build` (npm test does)');
      if (stored.recipe.inject.includes('data/mricron/ch2bet.nii.gz') && !existsSync(join(ROOT, 'data', 'mricron', 'ch2bet.nii.gz'))) {
        await runChildOk('sh', [join(ROOT, 'scripts', 'fetch-data.sh')]);
      }
      work = mkdtempSync(join(tmpdir(), `moodlsr-regression-${name}-`));
      await injectRecipeSet(stored, join(work, 'set'));
    }, 300_000);
    afterAll(() => rmSync(work, { recursive: true, force: true }));

    it('reproduces the stored scores of every network method within the tolerance', async () => {
      const methods = Object.keys(stored.methods);
      expect(methods.length).toBeGreaterThanOrEqual(3);
      const { run, scores } = await runGate(stored, join(work, 'set'), storedPath(name), join(work, 'board'));
      expect(run.stderr).toContain('no metric fell');
      expect(run.status).toBe(0);
      const now = scores();
      for (const [method, tasks] of Object.entries(stored.methods)) {
        expect(Object.keys(tasks).sort()).toEqual(['pixel', 'sample']);
        for (const [task, metrics] of Object.entries(tasks)) {
          expect(Math.abs(now.methods[method]![task]!.ap - metrics.ap)).toBeLessThanOrEqual(stored.recipe.tolerance);
          expect(Math.abs(now.methods[method]![task]!.auroc - metrics.auroc)).toBeLessThanOrEqual(stored.recipe.tolerance);
        }
      }
    }, 600_000);
  });
}
