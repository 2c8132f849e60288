/**
 * The learning curve of a training run as a markdown table, from its training.json (the shared loop's
 * record: one `history` entry per epoch with the train and held-out means, and the epoch's seconds):
 *
 *   node dist/scripts/training-curve.js RUN/training.json [--every N] [--metrics loss,rec,restored]
 *
 * Rows: epoch 1, every N-th epoch, the best held-out epoch and the last; columns: the train and held-out
 * value of each metric and the wall hours summed up to that epoch (over every session of the run).
 */
import { readFileSync } from 'node:fs';

interface EpochEntry {
  readonly epoch: number;
  readonly train: Readonly<Record<string, number>>;
  readonly holdout?: Readonly<Record<string, number>>;
  readonly seconds: number;
}

interface TrainingRecord {
  readonly history: readonly EpochEntry[];
  readonly bestEpoch?: number;
}

export function curveRows(record: TrainingRecord, every: number): EpochEntry[] {
  const last = record.history[record.history.length - 1]?.epoch;
  return record.history.filter((e) => e.epoch === 1 || e.epoch % every === 0 || e.epoch === record.bestEpoch || e.epoch === last);
}

export function curveTable(record: TrainingRecord, every: number, metrics: readonly string[]): string {
  const hoursAt = new Map<number, number>();
  let seconds = 0;
  for (const e of record.history) {
    seconds += e.seconds;
    hoursAt.set(e.epoch, seconds / 3600);
  }
  const fmt = (v: number | undefined): string => (v === undefined ? '' : Math.abs(v) < 0.01 ? v.toExponential(3) : v.toFixed(3));
  const head = ['epoch', ...metrics.flatMap((m) => [`train ${m}`, `held-out ${m}`]), 'hours'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---:').join('|')}|`];
  for (const e of curveRows(record, every)) {
    const best = e.epoch === record.bestEpoch ? ' (best)' : '';
    const cells = metrics.flatMap((m) => [fmt(e.train[m]), fmt(e.holdout?.[m])]);
    lines.push(`| ${e.epoch}${best} | ${cells.join(' | ')} | ${hoursAt.get(e.epoch)!.toFixed(2)} |`);
  }
  return lines.join('\n');
}

function main(argv: readonly string[]): void {
  const file = argv[0];
  if (file === undefined || file.startsWith('--')) throw new Error('usage: training-curve.js RUN/training.json [--every N] [--metrics loss,rec]');
  const flag = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const every = Number(flag('--every') ?? 10);
  if (!(Number.isInteger(every) && every >= 1)) throw new Error(`--every must be a positive integer, got ${flag('--every')}`);
  const metrics = (flag('--metrics') ?? 'loss').split(',').filter(Boolean);
  let record: TrainingRecord;
  try {
    record = JSON.parse(readFileSync(file, 'utf8')) as TrainingRecord;
  } catch (err) {
    throw new Error(`${file}: cannot read the training record (${(err as Error).message})`);
  }
  if (!Array.isArray(record.history) || record.history.length === 0) throw new Error(`${file}: no history (not a training.json of the shared loop?)`);
  process.stdout.write(`${curveTable(record, every, metrics)}\n`);
}

if (process.argv[1]?.endsWith('training-curve.js')) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`training-curve: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
