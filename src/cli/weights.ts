import { InvalidArgumentError, type Command } from 'commander';
import { ZSCORE_KIND } from '../methods/zscore/model.js';
import { BUNDLE_DTYPES, type BundleDtype } from '../io/tensor-bundle.js';
import { packWeightsFolder, type PackReport } from '../io/weights-pack.js';

function parseDtype(value: string): BundleDtype {
  if (!(BUNDLE_DTYPES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`--dtype must be ${BUNDLE_DTYPES.join(' or ')}, got "${value}"`);
  }
  return value as BundleDtype;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(3)} MB`;
}

/** One line per bundle, the copied and skipped files, the totals and what must be redone. */
export function formatPackReport(report: PackReport, to: string): string {
  const lines: string[] = [];
  const width = Math.max(...report.bundles.map((b) => b.file.length));
  for (const b of report.bundles) {
    const tiny = report.dtype === 'float16' && b.tinyValues > 0 ? `, ${b.tinyValues} values below 2^-14 (abs. err ≤ 2^-25)` : '';
    lines.push(
      `${b.file.padEnd(width)}  ${b.kind.padEnd(15)}  ${megabytes(b.bytesBefore)} → ${megabytes(b.bytesAfter)}  ` +
        `max |err| ${b.maxAbsError.toExponential(2)}  max rel. err ${b.maxRelError.toExponential(2)}${tiny}`,
    );
  }
  for (const file of report.copied) lines.push(`copied ${file}`);
  for (const entry of report.skipped) lines.push(`skipped ${entry}${entry.endsWith('/') ? ' (sub-folder; --recursive packs it)' : ' (not a regular file)'}`);
  const before = report.bundles.reduce((s, b) => s + b.bytesBefore, 0);
  const after = report.bundles.reduce((s, b) => s + b.bytesAfter, 0);
  lines.push(`${report.bundles.length} bundle${report.bundles.length === 1 ? '' : 's'} ${megabytes(before)} → ${megabytes(after)} (${report.dtype}) in ${to}`);
  if (report.dtype === 'float16') {
    lines.push(
      'outputs change slightly with float16 weights: recompute the calibrations on the packed folder ' +
        '(moodlsr calibrate lsr|lsgs|vae --weights <packed dir> ...); the copied calibration files were fitted on the float32 weights',
    );
    if (report.bundles.some((b) => b.kind === ZSCORE_KIND)) {
      lines.push('a z-score bundle keeps the calibration fitted on its float32 statistics (moodlsr train zscore refits both)');
    }
  }
  return `${lines.join('\n')}\n`;
}

/** `moodlsr weights pack`: re-encodes weights bundles as float16 (or float32) for shipping. */
export function registerWeights(program: Command): void {
  const weights = program.command('weights').description('operations on weights folders');
  weights
    .command('pack')
    .description('re-encode every moodlsr-weights bundle of a folder with another storage dtype; other files are copied unchanged')
    .requiredOption('--from <dir>', 'weights folder to read')
    .requiredOption('--to <dir>', 'folder to write (created; must differ from --from)')
    .option('--dtype <dtype>', 'storage dtype of the tensors: float16 or float32', parseDtype, 'float16' as BundleDtype)
    .option('--recursive', 'pack sub-folders too (default: top level only)')
    .action(async (opts: { from: string; to: string; dtype: BundleDtype; recursive?: boolean }) => {
      const report = await packWeightsFolder({ from: opts.from, to: opts.to, dtype: opts.dtype, recursive: opts.recursive === true });
      process.stdout.write(formatPackReport(report, opts.to));
    });
}
