/**
 * Timings of the volume operations on MOOD-sized grids (median of 3 runs each), single thread.
 * `npm run build && node dist/scripts/bench-volume.js [--big]` (--big adds a 512³ resample, ~0.7 GB RAM).
 * Pooling is timed on uniform noise (worst case: comparisons mispredict half the time) and on a smooth
 * map (closer to real anomaly maps).
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

function noise(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.next();
  return data;
}

function smooth([nx, ny, nz]: Shape3): Float32Array {
  const data = new Float32Array(nx * ny * nz);
  let i = 0;
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++) data[i++] = 0.5 + 0.5 * Math.sin(0.1 * x) * Math.cos(0.13 * y) * Math.sin(0.07 * z);
  return data;
}

function scoreStack(nz: number, every: number, size: number): SliceStack {
  const zs = sliceIndices(nz, { every });
  const data = noise(zs.length * size * size, 2);
  return { data, count: zs.length, height: size, width: size, positions: new Float32Array(zs.length), zs };
}

function report(label: string, ms: number): void {
  console.log(`${label.padEnd(52)} ${ms.toFixed(0).padStart(6)} ms`);
}

const brain: Shape3 = [256, 256, 256];
for (const [name, volume] of [['noise', noise(256 ** 3, 1)], ['smooth', smooth(brain)]] as const) {
  report(`minPool3d 3×3×3, 256³ ${name}`, medianMs(() => minPool3d(volume, brain, [3, 3, 3])));
  report(`avgPool3d 7×7×7, 256³ ${name}`, medianMs(() => avgPool3d(volume, brain, [7, 7, 7])));
  report(`min 3×3×3 then avg 7×7×7, 256³ ${name}`, medianMs(() => avgPool3d(minPool3d(volume, brain, [3, 3, 3]), brain, [7, 7, 7])));
  report(`min 3×3×3 then avg 7×7×3, 256³ ${name}`, medianMs(() => avgPool3d(minPool3d(volume, brain, [3, 3, 3]), brain, [7, 7, 3])));
  report(`minPool3d 15×15×15, 256³ ${name}`, medianMs(() => minPool3d(volume, brain, [15, 15, 15])));
}
const stackShapeAtModel: Shape3 = [160, 160, 32];
const modelStack = noise(160 * 160 * 32, 4);
report('min 3×3×3 then avg 7×7×3 on a 32×160×160 stack', medianMs(() => avgPool3d(minPool3d(modelStack, stackShapeAtModel, [3, 3, 3]), stackShapeAtModel, [7, 7, 3])));
const stack = scoreStack(256, 8, 160);
report('stackToVolume 32×160×160 → 256³', medianMs(() => stackToVolume(stack, brain)));
const colin = noise(181 * 217 * 181, 3);
report('resampleData 181×217×181 → 256³', medianMs(() => resampleData(colin, [181, 217, 181], brain)));

if (process.argv.includes('--big')) {
  const big = scoreStack(512, 16, 160);
  report('stackToVolume 32×160×160 → 512³', medianMs(() => stackToVolume(big, [512, 512, 512])));
  console.log(`RSS after 512³: ${(process.memoryUsage().rss / 2 ** 30).toFixed(2)} GiB`);
}
