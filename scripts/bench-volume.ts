/**
 * Timings of the volume operations on MOOD-sized grids (median of 3 runs each).
 * Build with `npm run build`, then `node dist/scripts/bench-volume.js [--big]` (--big adds 512³, ~1.5 GB RAM).
 */
import { performance } from 'node:perf_hooks';
import { createRng } from '../src/engine/random.js';
import { avgPool3d, minPool3d } from '../src/volume/pool3d.js';
import { stackToVolume } from '../src/volume/resample.js';
import { sliceIndices, type SliceStack } from '../src/volume/slices.js';
import { resampleData } from '../src/volume/trilinear.js';
import type { Shape3 } from '../src/volume/volume.js';

function medianMs(run: () => unknown, repeats = 3): number {
  const times: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const start = performance.now();
    run();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(repeats / 2)];
}

function randomData(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.next();
  return data;
}

function scoreStack(nz: number, every: number, size: number): SliceStack {
  const zs = sliceIndices(nz, { every });
  return {
    data: randomData(zs.length * size * size, 2),
    count: zs.length,
    height: size,
    width: size,
    positions: new Float32Array(zs.length),
    zs,
  };
}

function report(label: string, ms: number): void {
  console.log(`${label.padEnd(58)} ${ms.toFixed(0).padStart(6)} ms`);
}

const brain: Shape3 = [256, 256, 256];
const volume = randomData(256 ** 3, 1);
report('minPool3d 256³ kernel 3×3×3', medianMs(() => minPool3d(volume, brain, [3, 3, 3])));
report('avgPool3d 256³ kernel 7×7×7', medianMs(() => avgPool3d(volume, brain, [7, 7, 7])));
report('min 3×3×3 then avg 7×7×7, 256³', medianMs(() => avgPool3d(minPool3d(volume, brain, [3, 3, 3]), brain, [7, 7, 7])));
report('min 3×3×3 then avg 7×7×3, 256³', medianMs(() => avgPool3d(minPool3d(volume, brain, [3, 3, 3]), brain, [7, 7, 3])));
report('minPool3d 256³ kernel 15×15×15', medianMs(() => minPool3d(volume, brain, [15, 15, 15])));
const stack = scoreStack(256, 8, 160);
report('stackToVolume 32×160×160 → 256³', medianMs(() => stackToVolume(stack, brain)));
const colin = randomData(181 * 217 * 181, 3);
report('resampleData 181×217×181 → 256³', medianMs(() => resampleData(colin, [181, 217, 181], brain)));

if (process.argv.includes('--big')) {
  const abdomen: Shape3 = [512, 512, 512];
  const big = scoreStack(512, 16, 160);
  report('stackToVolume 32×160×160 → 512³', medianMs(() => stackToVolume(big, abdomen)));
  console.log(`heap+external after 512³: ${(process.memoryUsage().rss / 2 ** 30).toFixed(2)} GiB RSS`);
}
