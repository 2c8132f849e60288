/**
 * Timing of the injection pipeline at full MOOD size (not part of the tests; timings are never asserted).
 *   npx vite-node eval/inject/bench.ts [size=256] [source=data/mricron/ch2bet.nii.gz]
 */
import { readNifti } from '../../src/io/nifti.js';
import { ANOMALY_KINDS } from './anomalies.js';
import { headVariantSource } from './normal-source.js';
import { generateCase } from './toyset.js';
import { makeNormalVariant, prepareSource } from './variants.js';

const size = Number(process.argv[2] ?? 256);
const source = process.argv[3] ?? 'data/mricron/ch2bet.nii.gz';
const ms = (t: number) => `${(performance.now() - t).toFixed(0)} ms`;

let t = performance.now();
const prepared = prepareSource((await readNifti(source)).volume);
console.log(`read + prepare ${source}: ${ms(t)}`);
for (const seed of [1, 2, 3]) {
  t = performance.now();
  makeNormalVariant(prepared, { size, seed });
  console.log(`normal variant ${size}³ (seed ${seed}): ${ms(t)}`);
}
for (const kind of ANOMALY_KINDS) {
  t = performance.now();
  const { record } = generateCase('bench', { kind, slot: 0 }, [headVariantSource(source, prepared)], { size, seed: 1 });
  const extra = kind === 'fpi' ? ' + foreign variant' : '';
  console.log(`abnormal case ${kind} (variant + anomaly${extra}): ${ms(t)}, r = ${record.radius?.toFixed(1)}, ${record.labelVoxels} label voxels`);
}
