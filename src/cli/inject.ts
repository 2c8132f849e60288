import type { Command } from 'commander';
import { ANOMALY_KINDS, type AnomalyKind } from '../../eval/inject/anomalies.js';
import { buildToySet } from '../../eval/inject/toyset.js';
import { abdomenNormalSource } from '../../eval/phantom/population.js';
import { collect, parseInteger, stderrLog } from './common.js';

/** `moodlsr inject`: a MOOD toy-format set of normal variants and sphere anomalies from real volumes. */
export function registerInject(program: Command): void {
  program
    .command('inject')
    .description('build a MOOD toy-format set (toy/, toy_label/pixel/, toy_label/sample/, manifest.json) from real heads or the abdominal phantom')
    .option('--region <region>', 'brain (variants of --src heads) or abdom (the SYNTHETIC abdominal CT phantom)', 'brain')
    .option('--src <file>', 'brain: a real head volume (NIfTI); repeat for several sources', collect, [])
    .requiredOption('--out <dir>', 'output folder')
    .option('--normal <n>', 'number of normal cases', parseInteger('--normal', 0), 4)
    .option('--per-kind <k>', 'abnormal cases per anomaly kind', parseInteger('--per-kind', 0), 1)
    .option('--kinds <list>', `comma-separated anomaly kinds (${ANOMALY_KINDS.join(',')})`, ANOMALY_KINDS.join(','))
    .option('--size <n>', 'side of the cubic output volumes (default: 256 brain, 512 abdom, as in MOOD)', parseInteger('--size', 8))
    .requiredOption('--seed <s>', 'seed: the same seed gives the same bytes', parseInteger('--seed'))
    .action(async (opts: { region: string; src: string[]; out: string; normal: number; perKind: number; kinds: string; size?: number; seed: number }) => {
      if (opts.region !== 'brain' && opts.region !== 'abdom') throw new Error(`--region must be brain or abdom, got "${opts.region}"`);
      if (opts.region === 'brain' && opts.src.length === 0) throw new Error('--region brain needs at least one --src head volume');
      if (opts.region === 'abdom' && opts.src.length > 0) throw new Error('--region abdom uses the synthetic phantom; --src is for brain heads');
      const kinds = opts.kinds.split(',').map((k) => k.trim()).filter(Boolean) as AnomalyKind[];
      const unknown = kinds.filter((k) => !ANOMALY_KINDS.includes(k));
      if (unknown.length) throw new Error(`unknown anomaly kind(s): ${unknown.join(', ')} (known: ${ANOMALY_KINDS.join(', ')})`);
      if (kinds.length === 0 && opts.perKind > 0) throw new Error(`--kinds "${opts.kinds}" names no anomaly kind (known: ${ANOMALY_KINDS.join(', ')})`);
      const anomalous = opts.perKind * kinds.length;
      if (opts.normal + anomalous === 0) throw new Error('--normal 0 and no anomalous cases: the set would be empty');
      if (anomalous === 0) {
        process.stderr.write('inject: warning: the set holds only normal cases (--per-kind 0): fine as held-out normals, but eval and leaderboard need anomalous cases for any metric\n');
      }
      const t0 = performance.now();
      const manifest = await buildToySet({
        ...(opts.region === 'abdom' ? { normalSources: [abdomenNormalSource()] } : { sources: opts.src }),
        outDir: opts.out,
        normal: opts.normal,
        perKind: opts.perKind,
        kinds,
        size: opts.size ?? (opts.region === 'abdom' ? 512 : 256),
        seed: opts.seed,
        log: stderrLog('inject: '),
      });
      const s = (performance.now() - t0) / 1000;
      process.stderr.write(`inject: ${manifest.cases.length} cases in ${opts.out} (${s.toFixed(1)} s)\n`);
    });
}
