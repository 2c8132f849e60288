import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { makeAbdomenPhantom } from '../../eval/phantom/abdomen.js';
import { abdomenTrainSeed, buildAbdomenPopulation } from '../../eval/phantom/population.js';
import { renderPhantomPreview } from '../../eval/phantom/preview.js';
import { atomicWriteFile } from '../io/atomic.js';
import { parseInteger, stderrLog } from './common.js';

/** `moodlsr phantom`: a population of SYNTHETIC CT-like abdominal phantoms (no real abdominal CT is reachable here). */
export function registerPhantom(program: Command): void {
  program
    .command('phantom')
    .description('write SYNTHETIC CT-like abdominal phantoms (normal_NNNN.nii.gz, float32, values in [0, 1]); not real CT')
    .requiredOption('--out <dir>', 'output folder (normal_NNNN.nii.gz)')
    .requiredOption('--count <n>', 'number of volumes', parseInteger('--count', 0))
    .option('--size <n>', 'side of the cubic volumes (MOOD abdomen: 512)', parseInteger('--size', 8), 512)
    .requiredOption('--seed <s>', 'seed (training seeds: deriveSeed("train", seed, "abdomen", i))', parseInteger('--seed'))
    .option('--preview <png>', 'also write a PNG of the mid axial and coronal slices of the first volume')
    .action(async (opts: { out: string; count: number; size: number; seed: number; preview?: string }) => {
      const t0 = performance.now();
      await buildAbdomenPopulation({ outDir: opts.out, count: opts.count, size: opts.size, seed: opts.seed, log: stderrLog('phantom: ') });
      process.stderr.write(`phantom: ${opts.count} synthetic volumes in ${opts.out} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
      if (opts.preview) {
        const { volume } = makeAbdomenPhantom({ size: opts.size, seed: abdomenTrainSeed(opts.seed, 0) });
        await mkdir(dirname(opts.preview), { recursive: true });
        await atomicWriteFile(opts.preview, renderPhantomPreview(volume));
        process.stderr.write(`phantom: preview ${opts.preview}\n`);
      }
    });
}
