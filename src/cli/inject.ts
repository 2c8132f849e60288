import type { Command } from 'commander';
import { ANOMALY_KINDS, type AnomalyKind } from '../../eval/inject/anomalies.js';
import { buildToySet } from '../../eval/inject/toyset.js';
import { collect, parseInteger, stderrLog } from './common.js';

/** `moodlsr inject`: a MOOD toy-format set of normal variants and sphere anomalies from real volumes. */
export function registerInject(program: Command): void {
  program
    .command('inject')
    .description('build a MOOD toy-format set (toy/, toy_label/pixel/, toy_label/sample/, manifest.json) from real volumes')
    .requiredOption('--src <file>', 'a real head volume (NIfTI); repeat for several sources', collect, [])
    .requiredOption('--out <dir>', 'output folder')
    .option('--normal <n>', 'number of normal cases', parseInteger('--normal', 0), 4)
    .option('--per-kind <k>', 'abnormal cases per anomaly kind', parseInteger('--per-kind', 0), 1)
    .option('--kinds <list>', `comma-separated anomaly kinds (${ANOMALY_KINDS.join(',')})`, ANOMALY_KINDS.join(','))
    .option('--size <n>', 'side of the cubic output volumes (MOOD brain: 256)', parseInteger('--size', 8), 256)
    .requiredOption('--seed <s>', 'seed: the same seed gives the same bytes', parseInteger('--seed'))
    .action(async (opts: { src: string[]; out: string; normal: number; perKind: number; kinds: string; size: number; seed: number }) => {
      const kinds = opts.kinds.split(',').map((k) => k.trim()).filter(Boolean) as AnomalyKind[];
      const unknown = kinds.filter((k) => !ANOMALY_KINDS.includes(k));
      if (unknown.length) throw new Error(`unknown anomaly kind(s): ${unknown.join(', ')} (known: ${ANOMALY_KINDS.join(', ')})`);
      const t0 = performance.now();
      const manifest = await buildToySet({
        sources: opts.src,
        outDir: opts.out,
        normal: opts.normal,
        perKind: opts.perKind,
        kinds,
        size: opts.size,
        seed: opts.seed,
        log: stderrLog('inject: '),
      });
      const s = (performance.now() - t0) / 1000;
      process.stderr.write(`inject: ${manifest.cases.length} cases in ${opts.out} (${s.toFixed(1)} s)\n`);
    });
}
