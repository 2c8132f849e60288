/**
 * NIfTI read/write timings for a 256³ volume (the MOOD brain size), median of N runs.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/bench-nifti.js [runs=3] [folder=os.tmpdir()]
 *
 * The volume is real: the Colin27 head (data/mricron/ch2.nii.gz, `sh scripts/fetch-data.sh`)
 * scaled to [0, 1] and centred in a 256³ grid, like a MOOD brain case; "noise" is uniform [0, 1)
 * noise on the same grid, the worst case for gzip.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_GZIP_LEVEL, readNifti, writeNifti, type NiftiDtype } from '../src/io/nifti.js';
import { createRng } from '../src/engine/random.js';
import { makeVolume, type Volume } from '../src/volume/volume.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function timed(action: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await action();
  return (performance.now() - start) / 1000;
}

async function brainLikeVolume(): Promise<Volume> {
  const head = (await readNifti(join(ROOT, 'data', 'mricron', 'ch2.nii.gz'))).volume;
  const n = 256;
  const [hx, hy, hz] = head.shape;
  const [ox, oy, oz] = [(n - hx) >> 1, (n - hy) >> 1, (n - hz) >> 1];
  const data = new Float32Array(n * n * n);
  for (let z = 0; z < hz; z++) {
    for (let y = 0; y < hy; y++) {
      for (let x = 0; x < hx; x++) {
        data[ox + x + n * (oy + y + n * (oz + z))] = head.data[x + hx * (y + hy * z)] / 255;
      }
    }
  }
  return makeVolume([n, n, n], data);
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 3);
  const dir = await mkdtemp(join(process.argv[3] ?? tmpdir(), 'bench-nifti-'));
  try {
    const brain = await brainLikeVolume();
    const rng = createRng(1);
    const noise = makeVolume(brain.shape, Float32Array.from({ length: brain.data.length }, () => rng.next()));
    const cases: { name: string; file: string; dtype: NiftiDtype; gzipLevel?: number; volume?: Volume }[] = [
      { name: 'float32 .nii', file: 'v.nii', dtype: 'float32' },
      { name: 'float32 .nii.gz level 1', file: 'v1.nii.gz', dtype: 'float32', gzipLevel: 1 },
      { name: 'float32 .nii.gz level 3', file: 'v3.nii.gz', dtype: 'float32', gzipLevel: 3 },
      { name: 'float32 .nii.gz level 6', file: 'v6.nii.gz', dtype: 'float32', gzipLevel: 6 },
      { name: 'uint16 .nii.gz level 1', file: 'u1.nii.gz', dtype: 'uint16', gzipLevel: 1 },
      { name: 'uint16 .nii.gz level 6', file: 'u6.nii.gz', dtype: 'uint16', gzipLevel: 6 },
      { name: 'noise float32 .nii.gz lvl 1', file: 'n1.nii.gz', dtype: 'float32', gzipLevel: 1, volume: noise },
      { name: 'noise float32 .nii.gz lvl 6', file: 'n6.nii.gz', dtype: 'float32', gzipLevel: 6, volume: noise },
    ];
    console.log(`256³ brain-like volume, median of ${runs}; default gzip level ${DEFAULT_GZIP_LEVEL}`);
    console.log('case                          write s   read s   size MB');
    for (const c of cases) {
      const path = join(dir, c.file);
      const writes: number[] = [];
      const reads: number[] = [];
      for (let r = 0; r < runs; r++) {
        writes.push(await timed(() => writeNifti(path, c.volume ?? brain, { dtype: c.dtype, gzipLevel: c.gzipLevel })));
        reads.push(await timed(() => readNifti(path)));
      }
      const size = (await stat(path)).size / 1e6;
      console.log(
        `${c.name.padEnd(28)} ${median(writes).toFixed(2).padStart(8)} ${median(reads).toFixed(2).padStart(8)} ${size.toFixed(1).padStart(9)}`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
