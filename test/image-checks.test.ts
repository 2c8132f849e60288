/**
 * The organisers' docker-test checks and the host/image comparison (eval/harness/image-checks.ts) on host outputs:
 * a tiny toy-format set scored by the z-score baseline fitted here, then broken one way at a time. The image itself
 * runs in scripts/test-image.sh (minutes, podman), outside `npm test`.
 */
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkOrganiserOutputs, compareOutputs } from '../eval/harness/image-checks.js';
import { fitZScore, zscorePredictor } from '../src/methods/zscore/model.js';
import { createRng } from '../src/engine/random.js';
import { readNifti, writeNifti } from '../src/io/nifti.js';
import type { MoodTask } from '../src/mood/predictor.js';
import { runPrediction } from '../src/mood/run.js';
import { makeVolume, withData, type Shape3, type Volume } from '../src/volume/volume.js';

const SHAPE: Shape3 = [14, 12, 10];
const CASES = ['toy_0.nii.gz', 'toy_1.nii.gz', 'toy_2.nii.gz'];

let root: string;
let set: string;
const pred: Record<MoodTask, string> = { sample: '', pixel: '' };

/** A noisy ellipsoid in [0, 1]; `blob` adds a bright sphere (the anomaly) and returns its mask too. */
function head(seed: string, blob = false): { volume: Volume; mask: Volume } {
  const rng = createRng(seed);
  const [nx, ny, nz] = SHAPE;
  const data = new Float32Array(nx * ny * nz);
  const mask = new Float32Array(nx * ny * nz);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const i = x + nx * (y + ny * z);
        const r = ((x - nx / 2) / (0.42 * nx)) ** 2 + ((y - ny / 2) / (0.42 * ny)) ** 2 + ((z - nz / 2) / (0.42 * nz)) ** 2;
        if (r <= 1) data[i] = Math.min(1, Math.max(0, 0.5 + 0.2 * (1 - r) + 0.03 * rng.normal()));
        if (blob && (x - 5) ** 2 + (y - 6) ** 2 + (z - 5) ** 2 <= 4) {
          data[i] = 1;
          mask[i] = 1;
        }
      }
    }
  }
  return { volume: makeVolume(SHAPE, data), mask: makeVolume(SHAPE, mask) };
}

async function copyOf(dir: string, name: string): Promise<string> {
  const copy = join(root, name);
  await rm(copy, { recursive: true, force: true });
  await cp(dir, copy, { recursive: true });
  return copy;
}

async function problemsOf(task: MoodTask, dir: string, timing: { seconds?: number; maxSecondsPerCase?: number } = {}): Promise<string[]> {
  const report = await checkOrganiserOutputs({ set, pred: dir, task, ...timing });
  return report.problems.map((p) => `${p.file.slice(dir.length + 1)}: ${p.reason}`);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'moodlsr-image-checks-'));
  const normals: string[] = [];
  for (let i = 0; i < 4; i++) {
    normals.push(join(root, `normal_${i}.nii.gz`));
    await writeNifti(normals[i]!, head(`normal-${i}`).volume);
  }
  const model = await fitZScore({ files: normals, holdout: 1, seed: 0, config: { grid: 8 }, log: () => undefined });
  set = join(root, 'set');
  for (const dir of ['toy', 'toy_label/pixel', 'toy_label/sample']) await mkdir(join(set, dir), { recursive: true });
  for (const [i, name] of CASES.entries()) {
    const { volume, mask } = head(`case-${i}`, i === 1);
    await writeNifti(join(set, 'toy', name), volume);
    await writeNifti(join(set, 'toy_label', 'pixel', name), mask, { dtype: 'uint8' });
    await writeFile(join(set, 'toy_label', 'sample', `${name}.txt`), i === 1 ? '1' : '0');
  }
  for (const task of ['sample', 'pixel'] as const) {
    pred[task] = join(root, `pred-${task}`);
    await runPrediction({ task, inDir: join(set, 'toy'), outDir: pred[task], predictor: zscorePredictor(model), seed: 0, log: () => undefined });
  }
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe("the organisers' checks", () => {
  it('pass on the outputs of predict, with the AP of the evaluation and the time per case', async () => {
    for (const task of ['sample', 'pixel'] as const) {
      const report = await checkOrganiserOutputs({ set, pred: pred[task], task, seconds: 6, maxSecondsPerCase: 60 });
      expect(report.problems, task).toEqual([]);
      expect(report.cases).toBe(3);
      expect(report.secondsPerCase).toBe(2);
      expect(report.ap).toBeGreaterThan(0);
      expect(report.ap).toBeLessThanOrEqual(1);
    }
  });

  it('name a missing output, a file left behind and a run over the time budget', async () => {
    const dir = await copyOf(pred.pixel, 'broken-names');
    await rm(join(dir, 'toy_2.nii.gz'));
    await mkdir(join(dir, '.tmp-host-1-0'));
    await writeFile(join(dir, 'toy_0.nii.gz.tmp'), '');
    const problems = await problemsOf('pixel', dir, { seconds: 300, maxSecondsPerCase: 60 });
    expect(problems).toEqual([
      expect.stringMatching(/^toy_2\.nii\.gz: missing/),
      expect.stringMatching(/^\.tmp-host-1-0: not an output/),
      expect.stringMatching(/^toy_0\.nii\.gz\.tmp: not an output/),
      expect.stringMatching(/100\.0 s per case, over the budget of 60 s/),
    ]);
  });

  it('name a pixel map of the wrong shape, one with NaN, one outside [0, 1] and one 4-D', async () => {
    const dir = await copyOf(pred.pixel, 'broken-maps');
    const { volume } = await readNifti(join(dir, 'toy_0.nii.gz'));
    await writeNifti(join(dir, 'toy_0.nii.gz'), makeVolume([14, 12, 9], new Float32Array(14 * 12 * 9)));
    const nan = volume.data.slice();
    nan[7] = NaN;
    await writeNifti(join(dir, 'toy_1.nii.gz'), withData(volume, nan));
    const high = volume.data.slice();
    high[9] = 1.5;
    await writeNifti(join(dir, 'toy_2.nii.gz'), withData(volume, high));
    const problems = await checkOrganiserOutputs({ set, pred: dir, task: 'pixel' });
    const reasons = problems.problems.map((p) => p.reason);
    expect(reasons[0]).toMatch(/shape 14×12×9, the input is 14×12×10/);
    expect(reasons[1]).toMatch(/NaN/);
    expect(reasons[2]).toMatch(/values in \[[\d.e-]+, 1\.5\], not within \[0, 1\]/);
    expect(reasons.some((r) => /evaluation failed/.test(r))).toBe(true);

    const plain = join(root, 'plain.nii');
    await writeNifti(plain, volume);
    const bytes = await readFile(plain);
    expect(bytes.readInt16LE(40)).toBe(3);
    bytes.writeInt16LE(4, 40); // dim[0] = 4, dim[4] = 1: what nibabel reads as shape (14, 12, 10, 1)
    bytes.writeInt16LE(1, 48);
    const fourD = await copyOf(pred.pixel, 'four-d');
    await writeFile(join(fourD, 'toy_0.nii.gz'), gzipSync(bytes));
    const fourDProblems = await problemsOf('pixel', fourD);
    expect(fourDProblems.join('\n')).toMatch(/^toy_0\.nii\.gz: (4-D, not 3-D|unreadable)/);
  });

  it('name a sample score that is not a number, NaN, or outside [0, 1]', async () => {
    const dir = await copyOf(pred.sample, 'broken-scores');
    await writeFile(join(dir, 'toy_0.nii.gz.txt'), 'high\n');
    await writeFile(join(dir, 'toy_1.nii.gz.txt'), 'nan\n');
    await writeFile(join(dir, 'toy_2.nii.gz.txt'), '1.25\n');
    const problems = await problemsOf('sample', dir);
    expect(problems[0]).toMatch(/^toy_0\.nii\.gz\.txt: the first line is not a number/);
    expect(problems[1]).toMatch(/^toy_1\.nii\.gz\.txt: the score is NaN/);
    expect(problems[2]).toMatch(/^toy_2\.nii\.gz\.txt: the score 1\.25 is outside \[0, 1\]/);
  });
});

describe('host and image outputs compared', () => {
  it('byte-identical folders', async () => {
    const copy = await copyOf(pred.pixel, 'same');
    const report = await compareOutputs(pred.pixel, copy, 'pixel', 1e-4);
    expect(report).toEqual({ files: 3, identical: 3, withinTolerance: 0, maxDifference: 0, problems: [] });
  });

  it('a pixel map off by less than the tolerance passes as within it; more fails, naming the difference', async () => {
    const dir = await copyOf(pred.pixel, 'nearly');
    const { volume, header } = await readNifti(join(dir, 'toy_1.nii.gz'));
    const nudged = volume.data.slice();
    nudged[100] = nudged[100]! + 3e-5;
    await writeNifti(join(dir, 'toy_1.nii.gz'), withData(volume, nudged), { reference: header });
    const near = await compareOutputs(pred.pixel, dir, 'pixel', 1e-4);
    expect(near.identical).toBe(2);
    expect(near.withinTolerance).toBe(1);
    expect(near.maxDifference).toBeGreaterThan(2e-5);
    expect(near.problems).toEqual([]);
    const strict = await compareOutputs(pred.pixel, dir, 'pixel', 1e-5);
    expect(strict.problems.map((p) => p.reason)).toEqual([expect.stringMatching(/differs from .* by up to 0\.0000299\d* \(tolerance 0\.00001\)/)]);
  });

  it('a different sample score, a missing file and a NaN on one side fail', async () => {
    const dir = await copyOf(pred.sample, 'different');
    await writeFile(join(dir, 'toy_0.nii.gz.txt'), '0.9\n');
    await writeFile(join(dir, 'toy_1.nii.gz.txt'), 'nan\n');
    await rm(join(dir, 'toy_2.nii.gz.txt'));
    const report = await compareOutputs(pred.sample, dir, 'sample', 1e-4);
    expect(report.identical).toBe(0);
    expect(report.problems.map((p) => p.reason)).toEqual([
      expect.stringMatching(/^files \[toy_0\.nii\.gz\.txt, toy_1\.nii\.gz\.txt\], expected \[.*toy_2\.nii\.gz\.txt\]/),
      expect.stringMatching(/differs from .* by up to/),
      expect.stringMatching(/by up to Infinity/),
    ]);
  });
});
