import type { Command } from 'commander';
import { buildPopulation } from '../../eval/inject/population.js';
import { collect, parseInteger, stderrLog } from './common.js';

/** `moodlsr population`: normal training volumes from real heads (seeds disjoint from `inject`'s). */
export function registerPopulation(program: Command): void {
  program
    .command('population')
    .description('write random normal variants of real heads (brain, MOOD geometry) for training; seeds never overlap inject’s')
    .requiredOption('--src <file>', 'a real head volume (NIfTI); repeat for several sources', collect, [])
    .requiredOption('--out <dir>', 'output folder (normal_NNNN.nii.gz)')
    .requiredOption('--count <n>', 'number of volumes', parseInteger('--count', 1))
    .option('--size <n>', 'side of the cubic volumes', parseInteger('--size', 8), 256)
    .requiredOption('--seed <s>', 'seed', parseInteger('--seed'))
    .action(async (opts: { src: string[]; out: string; count: number; size: number; seed: number }) => {
      const t0 = performance.now();
      await buildPopulation({ sources: opts.src, outDir: opts.out, count: opts.count, size: opts.size, seed: opts.seed, log: stderrLog('population: ') });
      process.stderr.write(`population: ${opts.count} volumes in ${opts.out} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
    });
}
