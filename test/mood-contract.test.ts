/**
 * The MOOD submission contract (src/mood): naming, shapes, ranges and headers of the outputs, determinism,
 * sharding, bad inputs and scratch files. Tiny volumes and the z-score baseline fitted here, so it runs in seconds.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fitZScore, loadZScore, saveZScore, zscorePredictor } from '../src/methods/zscore/model.js';
import { createRng } from '../src/engine/random.js';
import { readNifti, writeNifti, type NiftiImage } from '../src/io/nifti.js';
import { listCases, outputPathFor, parseShard, selectShard } from '../src/mood/cases.js';
import type { CaseContext, MoodTask, Predictor } from '../src/mood/predictor.js';
import { caseSeed, PredictionSetupError, runPrediction, runPredictions, SCRATCH_PREFIX, type PredictionSummary } from '../src/mood/run.js';
import { parseTaskList } from '../src/mood/tasks.js';
import { makeVolume, type Affine, type Shape3, type Volume } from '../src/volume/volume.js';

const SHAPE: Shape3 = [20, 18, 16];
const SPACING = [1.2, 0.9, 1.5] as const;
/** A flipped x axis and an offset: a header copied wrongly would show. */
const AFFINE: Affine = [
  [-1.2, 0, 0, 30.5],
  [0, 0.9, 0, -20.25],
  [0, 0, 1.5, 10],
  [0, 0, 0, 1],
];
const SYSTEM_PYTHON = '/usr/bin/python3';

/** An ellipsoidal "head" with noise, values in [0, 1], background 0; `anomalous` adds a dark hole (an anomaly). */
function headVolume(seed: string, anomalous = false, shape: Shape3 = SHAPE): Volume {
  const rng = createRng(seed);
  const [nx, ny, nz] = shape;
  const data = new Float32Array(nx * ny * nz);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const r = ((x - nx / 2) / (0.4 * nx)) ** 2 + ((y - ny / 2) / (0.4 * ny)) ** 2 + ((z - nz / 2) / (0.4 * nz)) ** 2;
        if (r > 1) continue;
        let v = 0.5 + 0.2 * (1 - r) + 0.03 * rng.normal();
        if (anomalous && (x - nx / 2) ** 2 + (y - ny / 2) ** 2 + (z - nz / 2) ** 2 < 25) v = 0.02;
        data[x + nx * (y + ny * z)] = Math.min(1, Math.max(0, v));
      }
    }
  }
  return makeVolume(shape, data, SPACING, AFFINE);
}

/** 2 × 2 of an uncompressed file patched to dim[0] = 2: a 2-D image. */
async function writeTwoDimensional(path: string): Promise<void> {
  const plain = `${path}.plain.nii`;
  await writeNifti(plain, makeVolume([20, 18, 1], new Float32Array(360).fill(0.5)));
  const bytes = await readFile(plain);
  bytes.writeInt16LE(2, 40);
  await writeFile(path, gzipSync(bytes));
  await rm(plain);
}

let root: string;
let weightsDir: string;
let zscore: Predictor;

async function freshDir(name: string): Promise<string> {
  const dir = join(root, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  return dir;
}

/** A folder of good cases: two normal, one with a bright blob. */
async function goodCases(name: string): Promise<string> {
  const dir = await freshDir(name);
  await writeNifti(join(dir, 'toy_0.nii.gz'), headVolume('case-0'));
  await writeNifti(join(dir, 'toy_1.nii.gz'), headVolume('case-1', true));
  await writeNifti(join(dir, 'toy_2.nii.gz'), headVolume('case-2'));
  return dir;
}

function run(task: MoodTask, inDir: string, outDir: string, extra: Partial<Parameters<typeof runPrediction>[0]> = {}) {
  const lines: string[] = [];
  const promise = runPrediction({ task, inDir, outDir, predictor: zscore, seed: 7, log: (l) => lines.push(l), ...extra });
  return { lines, promise };
}

async function leftovers(outDir: string): Promise<string[]> {
  return (await readdir(outDir)).filter((n) => n.startsWith(SCRATCH_PREFIX) || n.endsWith('.tmp'));
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'moodlsr-contract-'));
  const normals = await freshDir('normals');
  const files: string[] = [];
  for (let i = 0; i < 5; i++) {
    const f = join(normals, `n${i}.nii.gz`);
    await writeNifti(f, headVolume(`normal-${i}`));
    files.push(f);
  }
  weightsDir = join(root, 'weights');
  const model = await fitZScore({ files, holdout: 2, seed: 1, config: { grid: 8 }, log: () => undefined });
  await saveZScore(weightsDir, model);
  zscore = zscorePredictor(await loadZScore(weightsDir));
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('case listing and shards', () => {
  it('lists *.nii and *.nii.gz (any case) sorted by code unit, everything else ignored', async () => {
    const dir = await freshDir('listing');
    for (const n of ['b.nii.gz', 'A.NII.GZ', 'a b.nii', 'notes.txt', 'c.nii.gz.txt', 'x.nii.gz.tmp', '_1.nii.gz']) await writeFile(join(dir, n), '');
    await mkdir(join(dir, 'sub.nii.gz.d'));
    await symlink(join(dir, 'b.nii.gz'), join(dir, 'link.nii.gz'));
    const listing = await listCases(dir);
    expect(listing.cases).toEqual(['A.NII.GZ', '_1.nii.gz', 'a b.nii', 'b.nii.gz', 'link.nii.gz']);
    expect(listing.ignored).toEqual(['c.nii.gz.txt', 'notes.txt', 'sub.nii.gz.d', 'x.nii.gz.tmp']);
  });

  it('parses K/N and rejects anything else', () => {
    expect(parseShard('2/8')).toEqual({ index: 2, count: 8 });
    expect(parseShard(' 1 / 1 ')).toEqual({ index: 1, count: 1 });
    for (const bad of ['0/3', '4/3', '1/0', '', '2', '1/2/3', 'a/b', '-1/2', '1.5/2']) {
      expect(() => parseShard(bad), bad).toThrow(/shard/);
    }
  });

  it('the N shards of any list are disjoint, contiguous, balanced and cover it in order', () => {
    for (let length = 0; length <= 40; length++) {
      const items = Array.from({ length }, (_, i) => `case_${String(i).padStart(3, '0')}`);
      for (let count = 1; count <= 13; count++) {
        const parts = Array.from({ length: count }, (_, k) => selectShard(items, { index: k + 1, count }));
        expect(parts.flat(), `${length} items in ${count} shards`).toEqual(items);
        const sizes = parts.map((p) => p.length);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }
    }
  });

  it('shard runs into one folder give exactly the files of a full run, byte for byte, each case once', async () => {
    const inDir = await freshDir('shard-in');
    for (let i = 0; i < 7; i++) await writeNifti(join(inDir, `case_${i}.nii.gz`), headVolume(`s${i}`, i % 3 === 0));
    const full = await freshDir('shard-full');
    const sharded = await freshDir('shard-parts');
    await run('sample', inDir, full).promise;
    const written: string[][] = [];
    for (let k = 1; k <= 3; k++) {
      const summary = await run('sample', inDir, sharded, { shard: { index: k, count: 3 } }).promise;
      written.push([...summary.written]);
    }
    expect(written.flat().sort()).toEqual((await listCases(inDir)).cases);
    expect(new Set(written.flat()).size).toBe(7);
    const names = (await readdir(full)).sort();
    expect((await readdir(sharded)).sort()).toEqual(names);
    for (const n of names) expect(await readFile(join(sharded, n))).toEqual(await readFile(join(full, n)));
  });
});

describe('outputs: naming, shape, header, range', () => {
  let inDir: string;
  let cases: NiftiImage[];

  beforeAll(async () => {
    inDir = await goodCases('good-in');
    cases = await Promise.all(['toy_0.nii.gz', 'toy_1.nii.gz', 'toy_2.nii.gz'].map((n) => readNifti(join(inDir, n))));
  });

  it('pixel: OUT/F for every F, gzipped, same shape and header, finite values in [0, 1]', async () => {
    const out = join(root, 'pixel-out', 'created', 'on demand');
    const { promise, lines } = run('pixel', inDir, out);
    const summary = await promise;
    expect(summary.failed).toEqual([]);
    expect((await readdir(out)).sort()).toEqual(['toy_0.nii.gz', 'toy_1.nii.gz', 'toy_2.nii.gz']);
    const maxima: number[] = [];
    for (const [i, name] of ['toy_0.nii.gz', 'toy_1.nii.gz', 'toy_2.nii.gz'].entries()) {
      const raw = await readFile(join(out, name));
      expect([raw[0], raw[1]]).toEqual([0x1f, 0x8b]);
      const { volume, header } = await readNifti(join(out, name));
      const input = cases[i]!;
      expect(volume.shape).toEqual(input.volume.shape);
      expect(volume.affine).toEqual(input.volume.affine);
      expect(header.pixDims.slice(0, 4)).toEqual(input.header.pixDims.slice(0, 4));
      expect([header.qformCode, header.sformCode]).toEqual([input.header.qformCode, input.header.sformCode]);
      expect(header.srow).toEqual(input.header.srow);
      expect(header.quatern).toEqual(input.header.quatern);
      expect(header.qoffset).toEqual(input.header.qoffset);
      expect(header.xyztUnits).toBe(input.header.xyztUnits);
      let max = 0;
      for (const v of volume.data) {
        if (!(v >= 0 && v <= 1)) throw new Error(`${name}: voxel value ${v} outside [0, 1]`);
        max = Math.max(max, v);
      }
      maxima.push(max);
    }
    // the case with the bright blob scores higher than the normal ones
    expect(maxima[1]).toBeGreaterThan(Math.max(maxima[0]!, maxima[2]!));
    expect(lines.at(-1)).toMatch(/3\/3 cases written, 0 failed, .* s per case/);
  });

  it('pixel maps are read by nibabel (an independent reader) with the input affine', async () => {
    const out = await freshDir('pixel-nibabel');
    await run('pixel', inDir, out, { pixelDtype: 'uint16' }).promise;
    const script = [
      'import json, sys, numpy as np, nibabel as nib',
      'res = []',
      'for p in sys.argv[1:]:',
      '    img = nib.load(p); a = np.asarray(img.get_fdata(dtype=np.float32))',
      '    res.append(dict(shape=list(a.shape), affine=img.affine.tolist(), lo=float(a.min()), hi=float(a.max()), finite=bool(np.isfinite(a).all())))',
      'print(json.dumps(res))',
    ].join('\n');
    const names = ['toy_0.nii.gz', 'toy_1.nii.gz'];
    const stdout = execFileSync(SYSTEM_PYTHON, ['-c', script, ...names.map((n) => join(out, n)), ...names.map((n) => join(inDir, n))], { encoding: 'utf8' });
    const [p0, p1, i0, i1] = JSON.parse(stdout) as { shape: number[]; affine: number[][]; lo: number; hi: number; finite: boolean }[];
    for (const [p, i] of [[p0!, i0!], [p1!, i1!]] as const) {
      expect(p.shape).toEqual([...SHAPE]);
      expect(p.affine).toEqual(i.affine);
      expect(p.finite).toBe(true);
      expect(p.lo).toBeGreaterThanOrEqual(0);
      expect(p.hi).toBeLessThanOrEqual(1);
    }
    expect(p1!.hi).toBeGreaterThan(0);
  });

  it('pixel maps as uint16 carry slope 1/65535 and stay in [0, 1]', async () => {
    const out = await freshDir('pixel-u16');
    await run('pixel', inDir, out, { pixelDtype: 'uint16' }).promise;
    const { volume, header } = await readNifti(join(out, 'toy_1.nii.gz'));
    expect(header.datatypeCode).toBe(512);
    expect(header.sclSlope).toBeCloseTo(1 / 65535, 12);
    const f32 = await freshDir('pixel-f32');
    await run('pixel', inDir, f32).promise;
    const exact = (await readNifti(join(f32, 'toy_1.nii.gz'))).volume.data;
    for (let i = 0; i < exact.length; i++) expect(Math.abs(volume.data[i]! - exact[i]!)).toBeLessThanOrEqual(1 / 65535);
  });

  it('an uncompressed .nii case keeps its name (readable under it)', async () => {
    const dir = await freshDir('plain-in');
    await writeNifti(join(dir, 'case.nii'), headVolume('plain'));
    const out = await freshDir('plain-out');
    await run('pixel', dir, out).promise;
    expect(await readdir(out)).toEqual(['case.nii']);
    expect((await readNifti(join(out, 'case.nii'))).volume.shape).toEqual(SHAPE);
  });

  it('sample: OUT/F.txt holds one finite float in [0, 1] on its first line, Python-parseable', async () => {
    const out = await freshDir('sample-out');
    await run('sample', inDir, out).promise;
    const names = (await readdir(out)).sort();
    expect(names).toEqual(['toy_0.nii.gz.txt', 'toy_1.nii.gz.txt', 'toy_2.nii.gz.txt']);
    const scores: number[] = [];
    for (const n of names) {
      const text = await readFile(join(out, n), 'utf8');
      expect(text).toMatch(/^[^\n]+\n$/);
      const v = Number(text.trim());
      expect(Number.isFinite(v)).toBe(true);
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
      scores.push(v);
    }
    const python = execFileSync(SYSTEM_PYTHON, ['-c', 'import sys; print([float(open(p).readline()) for p in sys.argv[1:]])', ...names.map((n) => join(out, n))], { encoding: 'utf8' });
    expect(JSON.parse(python)).toEqual(scores);
    expect(scores[1]).toBeGreaterThan(Math.max(scores[0]!, scores[2]!));
  });

  it('an integer input with scl_slope/scl_inter: the map is written as float32, not rescaled by the input scaling', async () => {
    const dir = await freshDir('scaled-in');
    await writeNifti(join(dir, 'scaled.nii.gz'), headVolume('scaled'), { dtype: 'int16', slope: 0.001, inter: 0.25 });
    const identity: Predictor = { name: 'identity', tasks: ['pixel'], pixelScore: async (v) => Float32Array.from(v.data) };
    const out = await freshDir('scaled-out');
    await run('pixel', dir, out, { predictor: identity }).promise;
    const input = await readNifti(join(dir, 'scaled.nii.gz'));
    const { volume, header } = await readNifti(join(out, 'scaled.nii.gz'));
    expect(header.datatypeCode).toBe(16);
    expect([header.sclSlope === 0 || header.sclSlope === 1, header.sclInter]).toEqual([true, 0]);
    expect(volume.affine).toEqual(input.volume.affine);
    for (let i = 0; i < volume.data.length; i += 37) expect(volume.data[i]).toBe(Math.min(1, Math.max(0, input.volume.data[i]!)));
  });

  it('a shard with no cases (more shards than cases) writes nothing and succeeds', async () => {
    const out = await freshDir('empty-shard');
    const { promise, lines } = run('sample', inDir, out, { shard: { index: 1, count: 5 } });
    const summary = await promise;
    expect(summary.cases).toEqual([]);
    expect(summary.failed).toEqual([]);
    expect(await readdir(out)).toEqual([]);
    expect(lines.some((l) => /shard 1\/5: 0 of 3 cases/.test(l))).toBe(true);
  });

  it('out-of-range predictor values are clipped; file names with spaces and unicode are kept', async () => {
    const dir = await freshDir('odd-names');
    await writeNifti(join(dir, 'cas é 1.nii.gz'), headVolume('odd'));
    const wild: Predictor = {
      name: 'wild',
      tasks: ['sample', 'pixel'],
      sampleScore: async () => 7.5,
      pixelScore: async (v) => Float32Array.from(v.data, (x, i) => (i % 2 ? -3 : 2 + x)),
    };
    const out = await freshDir('odd-out');
    await run('sample', dir, out, { predictor: wild }).promise;
    await run('pixel', dir, out, { predictor: wild }).promise;
    expect((await readdir(out)).sort()).toEqual(['cas é 1.nii.gz', 'cas é 1.nii.gz.txt']);
    expect(Number((await readFile(join(out, 'cas é 1.nii.gz.txt'), 'utf8')).trim())).toBe(1);
    const map = (await readNifti(join(out, 'cas é 1.nii.gz'))).volume.data;
    expect(new Set(map)).toEqual(new Set([0, 1]));
  });
});

describe('determinism', () => {
  /** Seeded noise from the case's seed: any change in seeding shows in the bytes. */
  const noisy: Predictor = {
    name: 'noisy',
    tasks: ['sample', 'pixel'],
    sampleScore: async (_v, ctx: CaseContext) => createRng(ctx.seed).next(),
    pixelScore: async (v, ctx: CaseContext) => {
      const rng = createRng(ctx.seed);
      return Float32Array.from(v.data, () => rng.next());
    },
  };

  async function bytesOf(dir: string): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    for (const n of (await readdir(dir)).sort()) out.set(n, await readFile(join(dir, n)));
    return out;
  }

  it('the same seed gives identical bytes (z-score and a seeded predictor), another seed differs', async () => {
    const inDir = await goodCases('det-in');
    for (const task of ['sample', 'pixel'] as const) {
      for (const predictor of [zscore, noisy]) {
        const a = await freshDir('det-a');
        const b = await freshDir('det-b');
        await run(task, inDir, a, { predictor, seed: 11 }).promise;
        await run(task, inDir, b, { predictor, seed: 11 }).promise;
        const first = await bytesOf(a);
        expect(first.size).toBe(3);
        expect(await bytesOf(b)).toEqual(first);
        if (predictor === noisy) {
          const c = await freshDir('det-c');
          await run(task, inDir, c, { predictor, seed: 12 }).promise;
          expect(await bytesOf(c)).not.toEqual(first);
        }
      }
    }
  });

  it('a case seed depends only on the run seed and the case name', () => {
    expect(caseSeed(3, 'toy_1.nii.gz')).toBe(caseSeed(3, 'toy_1.nii.gz'));
    expect(caseSeed(3, 'toy_1.nii.gz')).not.toBe(caseSeed(4, 'toy_1.nii.gz'));
    expect(caseSeed(3, 'toy_1.nii.gz')).not.toBe(caseSeed(3, 'toy_2.nii.gz'));
  });
});

describe('bad inputs', () => {
  let inDir: string;
  let out: string;
  let summary: PredictionSummary;
  let lines: string[];
  const bad = ['corrupt.nii.gz', 'flat2d.nii.gz', 'nan.nii.gz', 'short.nii.gz', 'wrongshape.nii.gz'];

  beforeAll(async () => {
    inDir = await goodCases('bad-in');
    await writeFile(join(inDir, 'corrupt.nii.gz'), Buffer.from('this is not a NIfTI file at all'));
    await writeTwoDimensional(join(inDir, 'flat2d.nii.gz'));
    const withNan = headVolume('nan');
    withNan.data[123] = Number.NaN;
    await writeNifti(join(inDir, 'nan.nii.gz'), withNan);
    const whole = await readFile(join(inDir, 'toy_0.nii.gz'));
    await writeFile(join(inDir, 'short.nii.gz'), whole.subarray(0, whole.length >> 1));
    await writeNifti(join(inDir, 'wrongshape.nii.gz'), headVolume('ws', false, [12, 12, 12]));
    await writeFile(join(inDir, 'README.md'), 'not a case');
    await writeFile(join(inDir, 'toy_0.nii.gz.txt'), '0.5');
    await mkdir(join(inDir, 'labels'));
    out = await freshDir('bad-out');
    // stale results of an earlier run: a failing case must not keep one
    await writeFile(join(out, 'nan.nii.gz.txt'), '0.9\n');
    const r = run('sample', inDir, out);
    lines = r.lines;
    summary = await r.promise;
  });

  it('each bad case: exactly one log line naming it, no output file; the good cases are written', async () => {
    expect(summary.failed.map((f) => f.name)).toEqual(bad);
    expect(summary.written).toEqual(['toy_0.nii.gz', 'toy_1.nii.gz', 'toy_2.nii.gz']);
    for (const name of bad) {
      const mentions = lines.filter((l) => l.includes(name));
      expect(mentions, name).toHaveLength(1);
      expect(mentions[0]).toMatch(/FAILED/);
    }
    expect(summary.failed.find((f) => f.name === 'nan.nii.gz')!.reason).toMatch(/NaN/);
    expect((await readdir(out)).sort()).toEqual(['toy_0.nii.gz.txt', 'toy_1.nii.gz.txt', 'toy_2.nii.gz.txt']);
  });

  it('non-NIfTI entries are ignored with a single note', () => {
    const notes = lines.filter((l) => /ignoring/.test(l));
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/3 non-NIfTI entries/);
    expect(notes[0]).toMatch(/README\.md/);
  });

  it('the summary line counts written and failed cases', () => {
    expect(lines.at(-1)).toMatch(/zscore sample: 3\/8 cases written, 5 failed/);
  });

  it('predictor faults (non-finite score, wrong map size, NaN map) fail only that case', async () => {
    const dir = await goodCases('fault-in');
    const faulty: Predictor = {
      name: 'faulty',
      tasks: ['sample', 'pixel'],
      sampleScore: async (_v, ctx) => (ctx.name === 'toy_1.nii.gz' ? Number.NaN : 0.25),
      pixelScore: async (v, ctx) => {
        if (ctx.name === 'toy_0.nii.gz') return new Float32Array(5);
        const m = new Float32Array(v.data.length).fill(0.5);
        if (ctx.name === 'toy_2.nii.gz') m[7] = Number.POSITIVE_INFINITY;
        return m;
      },
    };
    const o = await freshDir('fault-out');
    const s = await run('sample', dir, o, { predictor: faulty }).promise;
    expect(s.failed.map((f) => f.name)).toEqual(['toy_1.nii.gz']);
    const p = await run('pixel', dir, o, { predictor: faulty }).promise;
    expect(p.failed.map((f) => f.name)).toEqual(['toy_0.nii.gz', 'toy_2.nii.gz']);
    expect((await readdir(o)).sort()).toEqual(['toy_0.nii.gz.txt', 'toy_1.nii.gz', 'toy_2.nii.gz.txt']);
    expect(await leftovers(o)).toEqual([]);
  });

  it('an empty folder, a folder without NIfTI files, a missing folder: a clear setup error, nothing written', async () => {
    const empty = await freshDir('empty-in');
    const onlyText = await freshDir('text-in');
    await writeFile(join(onlyText, 'a.txt'), '1');
    for (const dir of [empty, onlyText, join(root, 'does-not-exist')]) {
      const o = join(root, 'never-created');
      await expect(run('pixel', dir, o).promise).rejects.toThrow(PredictionSetupError);
      await expect(run('pixel', dir, o).promise).rejects.toThrow(dir);
      expect(existsSync(o)).toBe(false);
    }
  });

  it('an unwritable output folder: a clear setup error naming it', async () => {
    const inDir2 = await goodCases('unwritable-in');
    const file = join(root, 'a-file');
    await writeFile(file, '');
    const under = join(file, 'out');
    await expect(run('sample', inDir2, under).promise).rejects.toThrow(/cannot use output folder .*a-file.*: .*a-file: is a file, not a folder/);
    if (process.getuid?.() !== 0) {
      const ro = await freshDir('ro-out');
      await chmod(ro, 0o555);
      await expect(run('sample', inDir2, ro).promise).rejects.toThrow(/cannot write to output folder/);
      await chmod(ro, 0o755);
    }
  });

  it('pixel output into the input folder is refused (it would overwrite the cases)', async () => {
    const dir = await goodCases('same-dir');
    const before = await readFile(join(dir, 'toy_0.nii.gz'));
    await expect(run('pixel', dir, dir).promise).rejects.toThrow(/overwrite/);
    expect(await readFile(join(dir, 'toy_0.nii.gz'))).toEqual(before);
    expect(await leftovers(dir)).toEqual([]);
  });
});

describe('scratch and temp files', () => {
  it('TMPDIR points into OUT during the run, its files are removed, TMPDIR is restored', async () => {
    const inDir = await goodCases('scratch-in');
    const out = await freshDir('scratch-out');
    const seen: string[] = [];
    const messy: Predictor = {
      name: 'messy',
      tasks: ['pixel'],
      pixelScore: async (v, ctx) => {
        const t = process.env.TMPDIR!;
        seen.push(t);
        await writeFile(join(t, `scratch-${ctx.name}`), 'x');
        if (ctx.name === 'toy_1.nii.gz') throw new Error('model fell over');
        return new Float32Array(v.data.length);
      },
    };
    const before = process.env.TMPDIR;
    const summary = await run('pixel', inDir, out, { predictor: messy }).promise;
    expect(process.env.TMPDIR).toBe(before);
    expect(summary.failed.map((f) => f.name)).toEqual(['toy_1.nii.gz']);
    expect(new Set(seen).size).toBe(1);
    expect(seen[0]!.startsWith(join(out, SCRATCH_PREFIX))).toBe(true);
    expect(await leftovers(out)).toEqual([]);
    expect((await readdir(out)).sort()).toEqual(['toy_0.nii.gz', 'toy_2.nii.gz']);
  });

  it('leaves alone a scratch folder of another run sharing OUT (same pid on another host)', async () => {
    const inDir = await goodCases('shared-in');
    const out = await freshDir('shared-out');
    const foreign = join(out, `${SCRATCH_PREFIX}${process.pid}`);
    await mkdir(foreign);
    await writeFile(join(foreign, 'in-use'), 'x');
    await run('sample', inDir, out).promise;
    expect(await readdir(foreign)).toEqual(['in-use']);
    await rm(foreign, { recursive: true });
    expect(await leftovers(out)).toEqual([]);
  });

  it('outputPathFor names F.txt for sample and F for pixel', () => {
    expect(outputPathFor('/o', 'toy_0.nii.gz', 'sample')).toBe(join('/o', 'toy_0.nii.gz.txt'));
    expect(outputPathFor('/o', 'toy_0.nii.gz', 'pixel')).toBe(join('/o', 'toy_0.nii.gz'));
  });

  it('a case copied under a new name scores the same (no hidden state between cases)', async () => {
    const inDir = await goodCases('copy-in');
    await copyFile(join(inDir, 'toy_1.nii.gz'), join(inDir, 'toy_9.nii.gz'));
    const out = await freshDir('copy-out');
    await run('sample', inDir, out).promise;
    expect(await readFile(join(out, 'toy_9.nii.gz.txt'), 'utf8')).toBe(await readFile(join(out, 'toy_1.nii.gz.txt'), 'utf8'));
  });
});

describe('both tasks in one run', () => {
  function runBoth(inDir: string, out: string, predictor: Predictor, extra: Partial<Parameters<typeof runPredictions>[0]> = {}) {
    const lines: string[] = [];
    const targets = (['sample', 'pixel'] as const).map((task) => ({ task, outDir: join(out, task), predictor }));
    const promise = runPredictions({ targets, inDir, seed: 7, log: (l) => lines.push(l), ...extra });
    return { lines, promise };
  }

  it('each case is read once: sampleScore then pixelScore get the same Volume object; the bytes equal two single-task runs', async () => {
    const inDir = await goodCases('both-in');
    const calls: string[] = [];
    const seen = new Map<string, Volume>();
    const watching: Predictor = {
      name: 'zscore',
      tasks: zscore.tasks,
      sampleScore: async (v, ctx) => {
        calls.push(`sample ${ctx.name}`);
        seen.set(ctx.name, v);
        return zscore.sampleScore!(v, ctx);
      },
      pixelScore: async (v, ctx) => {
        calls.push(`pixel ${ctx.name}`);
        expect(seen.get(ctx.name)).toBe(v);
        return zscore.pixelScore!(v, ctx);
      },
    };
    const out = await freshDir('both-out');
    const { promise, lines } = runBoth(inDir, out, watching, { shard: { index: 2, count: 2 }, pixelDtype: 'uint16' });
    const summaries = await promise;
    expect(calls).toEqual(['sample toy_1.nii.gz', 'pixel toy_1.nii.gz', 'sample toy_2.nii.gz', 'pixel toy_2.nii.gz']);
    expect(summaries.map((s) => [s.task, s.written, s.sharedRun])).toEqual([
      ['sample', ['toy_1.nii.gz', 'toy_2.nii.gz'], true],
      ['pixel', ['toy_1.nii.gz', 'toy_2.nii.gz'], true],
    ]);
    expect(summaries[0]!.seconds).toBe(summaries[1]!.seconds);
    expect(lines.filter((l) => /cases written/.test(l))).toHaveLength(2);
    for (const task of ['sample', 'pixel'] as const) {
      const alone = await freshDir(`both-alone-${task}`);
      await run(task, inDir, alone, { shard: { index: 2, count: 2 }, pixelDtype: 'uint16' }).promise;
      const names = (await readdir(alone)).sort();
      expect((await readdir(join(out, task))).sort()).toEqual(names);
      for (const n of names) expect(await readFile(join(out, task, n))).toEqual(await readFile(join(alone, n)));
      expect(await leftovers(join(out, task))).toEqual([]);
    }
  });

  it('a case failing in one task is written in neither folder (stale outputs removed); the others in both', async () => {
    const inDir = await goodCases('both-fault-in');
    const faulty: Predictor = {
      name: 'faulty',
      tasks: ['sample', 'pixel'],
      sampleScore: async (_v, ctx) => (ctx.name === 'toy_0.nii.gz' ? Number.NaN : 0.25),
      pixelScore: async (v, ctx) => {
        const m = new Float32Array(v.data.length).fill(0.5);
        if (ctx.name === 'toy_2.nii.gz') m[3] = Number.NaN;
        return m;
      },
    };
    const out = await freshDir('both-fault-out');
    await mkdir(join(out, 'sample'));
    await writeFile(join(out, 'sample', 'toy_2.nii.gz.txt'), '0.9\n');
    const { promise, lines } = runBoth(inDir, out, faulty);
    const [sample, pixel] = await promise;
    for (const s of [sample!, pixel!]) {
      expect(s.written).toEqual(['toy_1.nii.gz']);
      expect(s.failed).toEqual([
        { name: 'toy_0.nii.gz', reason: 'sample: faulty produced a non-finite sample score (NaN)' },
        { name: 'toy_2.nii.gz', reason: 'pixel: faulty produced 1 non-finite voxel scores' },
      ]);
    }
    expect(await readdir(join(out, 'sample'))).toEqual(['toy_1.nii.gz.txt']);
    expect(await readdir(join(out, 'pixel'))).toEqual(['toy_1.nii.gz']);
    expect(lines.filter((l) => l.includes('toy_2.nii.gz'))).toEqual([expect.stringMatching(/FAILED, no output written: pixel: /)]);
  });

  it('setup: a task listed twice, a task the predictor lacks, a pixel folder that is the input folder', async () => {
    const inDir = await goodCases('both-setup-in');
    const out = join(root, 'both-setup-out');
    const twice = runPredictions({ targets: [{ task: 'sample', outDir: out, predictor: zscore }, { task: 'sample', outDir: join(out, 'b'), predictor: zscore }], inDir, seed: 0, log: () => undefined });
    await expect(twice).rejects.toThrow(/listed twice/);
    const pixelOnly: Predictor = { name: 'maps', tasks: ['pixel'], pixelScore: async (v) => new Float32Array(v.data.length) };
    await expect(runBoth(inDir, out, pixelOnly).promise).rejects.toThrow(/maps has no sample score/);
    expect(existsSync(out)).toBe(false);
    const intoInput = runPredictions({ targets: [{ task: 'sample', outDir: join(root, 'both-setup-s'), predictor: zscore }, { task: 'pixel', outDir: inDir, predictor: zscore }], inDir, seed: 0, log: () => undefined });
    await expect(intoInput).rejects.toThrow(/overwrite/);
    expect(await leftovers(join(root, 'both-setup-s'))).toEqual([]);
    expect(await leftovers(inDir)).toEqual([]);
  });

  it('--task values: sample, pixel, sample,pixel in either order, both; anything else is refused', () => {
    expect(parseTaskList('sample')).toEqual(['sample']);
    expect(parseTaskList('pixel')).toEqual(['pixel']);
    expect(parseTaskList('pixel,sample')).toEqual(['sample', 'pixel']);
    expect(parseTaskList('both')).toEqual(['sample', 'pixel']);
    for (const bad of ['', 'both,sample', 'sample,sample', 'Sample', 'sample;pixel']) expect(() => parseTaskList(bad), bad).toThrow(/--task must be/);
  });
});
