import type { Command } from 'commander';
import { readNifti, countNonFinite } from '../io/nifti.js';
import { describeDatatypeCode } from '../io/nifti-dtypes.js';
import { describeError } from '../errors.js';

/** `moodlsr info FILE...`: what a NIfTI file holds, one block per file; bad files say why. */
export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('print the shape, datatype, spacing, affine and value range of NIfTI files')
    .argument('<files...>', '.nii or .nii.gz files')
    .option('--json', 'one JSON object per line instead of text')
    .action(async (files: string[], opts: { json?: boolean }) => {
      let failed = 0;
      for (const file of files) {
        try {
          const { volume, header } = await readNifti(file);
          let min = Infinity;
          let max = -Infinity;
          for (const v of volume.data) {
            if (v < min) min = v;
            if (v > max) max = v;
          }
          const summary = {
            file,
            shape: volume.shape,
            datatype: describeDatatypeCode(header.datatypeCode),
            byteOrder: header.littleEndian ? 'little-endian' : 'big-endian',
            spacing: volume.spacing,
            scaling: { slope: header.sclSlope, inter: header.sclInter },
            qformCode: header.qformCode,
            sformCode: header.sformCode,
            affine: volume.affine,
            range: [min, max],
            nonFinite: countNonFinite(volume.data),
          };
          if (opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
          else {
            process.stdout.write(
              `${file}\n  shape ${summary.shape.join('×')}  ${summary.datatype}  ${summary.byteOrder}\n` +
                `  spacing ${summary.spacing.map((s) => s.toFixed(4)).join(' × ')} mm  ` +
                `scl ${header.sclSlope}/${header.sclInter}  qform ${header.qformCode} sform ${header.sformCode}\n` +
                `  range [${min}, ${max}]  non-finite ${summary.nonFinite}\n` +
                summary.affine.map((r) => `  [${r.map((x) => x.toFixed(4).padStart(10)).join(' ')}]`).join('\n') +
                '\n',
            );
          }
        } catch (err) {
          failed++;
          process.stderr.write(`moodlsr info: ${describeError(err)}\n`);
        }
      }
      if (failed) process.exitCode = 2;
    });
}
