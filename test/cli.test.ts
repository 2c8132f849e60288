/**
 * The command line as a user (or the MOOD scripts) runs it: `moodlsr predict` and `moodlsr eval` in child processes,
 * their exit codes (0 all ok, 2 some cases failed, 1 fatal), what goes to stdout and stderr.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fitZScore, saveZScore } from '../src/methods/zscore/model.js';
import { createRng } from '../src/engine/random.js';
import { readNifti, writeNifti } from '../src/io/nifti.js';
import { makeVolume, type Shape3 } from '../src/volume/volume.js';
import { installFor } from './helpers/user-install.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const SHAPE: Shape3 = [16, 14, 12];
const NOBODY = 65534;

let root: string;
let weights: string;
let cases: string;

function head(seed: string, hole: boolean): Float32Array {
  const rng = createRng(seed);
  const [nx, ny, nz] = SHAPE;
  const data = new Float32Array(nx * ny * nz);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const r = ((x - nx / 2) / (0.42 * nx)) ** 2 + ((y - ny / 2) / (0.42 * ny)) ** 2 + ((z - nz / 2) / (0.42 * nz)) ** 2;
        if (r > 1) continue;
        const inHole = hole && Math.abs(x - 8) < 3 && Math.abs(y - 7) < 3 && Math.abs(z - 6) < 3;
        data[x + nx * (y + ny * z)] = inHole ? 0.05 : Math.min(1, Math.max(0, 0.6 + 0.15 * (1 - r) + 0.03 * rng.normal()));
      }
    }
  }
  return data;
}

function cli(args: string[], options: SpawnSyncOptions = {}, entry = CLI): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [entry, ...args], { encoding: 'utf8', ...options });
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function freshDir(name: string): Promise<string> {
  const dir = join(root, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  return dir;
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  root = await mkdtemp(join(tmpdir(), 'moodlsr-cli-'));
  await chmod(root, 0o755); // readable by the unprivileged user some tests run as
  const normals = await freshDir('normals');
  const files: string[] = [];
  for (let i = 0; i < 4; i++) {
    files.push(join(normals, `n${i}.nii.gz`));
    await writeNifti(files[i]!, makeVolume(SHAPE, head(`n${i}`, false)));
  }
  weights = join(root, 'weights');
  await saveZScore(weights, await fitZScore({ files, holdout: 1, seed: 0, config: { grid: 8 }, log: () => undefined }));
  cases = await freshDir('cases');
  for (let i = 0; i < 4; i++) await writeNifti(join(cases, `toy_${i}.nii.gz`), makeVolume(SHAPE, head(`c${i}`, i % 2 === 1)));
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('moodlsr predict', () => {
  it('exit 0 when every case is written; logs go to stderr, stdout stays empty', async () => {
    const out = join(root, 'ok out');
    const r = cli(['predict', '--task', 'sample', '--region', 'brain', '-i', cases, '-o', out, '--weights', weights]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/zscore sample: 4\/4 cases written, 0 failed/);
    expect((await readdir(out)).sort()).toEqual(['toy_0.nii.gz.txt', 'toy_1.nii.gz.txt', 'toy_2.nii.gz.txt', 'toy_3.nii.gz.txt']);
  });

  it('exit 2 when some cases fail; the others are written', async () => {
    const inDir = await freshDir('mixed');
    await writeNifti(join(inDir, 'a.nii.gz'), makeVolume(SHAPE, head('a', false)));
    await writeFile(join(inDir, 'b.nii.gz'), 'garbage');
    await writeFile(join(inDir, 'notes.txt'), 'hello');
    const out = join(root, 'mixed-out');
    const r = cli(['predict', '--task', 'pixel', '--region', 'abdom', '-i', inDir, '-o', out, '--weights', weights]);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n').filter((l) => l.includes('b.nii.gz'))).toHaveLength(1);
    expect(r.stderr).toMatch(/ignoring 1 non-NIfTI entry/);
    expect(await readdir(out)).toEqual(['a.nii.gz']);
  });

  it('--shard K/N writes only that part; --dtype uint16 writes slope-scaled maps', async () => {
    const out = await freshDir('shard-out');
    const r = cli(['predict', '--task', 'pixel', '--region', 'brain', '-i', cases, '-o', out, '--weights', weights, '--shard', '2/2', '--dtype', 'uint16']);
    expect(r.status, r.stderr).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['toy_2.nii.gz', 'toy_3.nii.gz']);
    const { header, volume } = await readNifti(join(out, 'toy_3.nii.gz'));
    expect(header.datatypeCode).toBe(512);
    expect(volume.shape).toEqual(SHAPE);
  });

  it('exit 1 with a clear message: empty folder, unwritable output, bad options, missing weights', async () => {
    const empty = await freshDir('empty');
    const base = ['predict', '--task', 'sample', '--region', 'brain', '--weights', weights];
    const noCases = cli([...base, '-i', empty, '-o', join(root, 'o1')]);
    expect(noCases.status).toBe(1);
    expect(noCases.stderr).toMatch(/no \.nii or \.nii\.gz files in .*empty/);
    const file = join(root, 'plain-file');
    await writeFile(file, '');
    const notDir = cli([...base, '-i', cases, '-o', join(file, 'out')]);
    expect(notDir.status).toBe(1);
    expect(notDir.stderr).toMatch(/cannot use output folder .*plain-file\/out: .*plain-file: is a file, not a folder/);
    const checks: [string[], RegExp][] = [
      [['predict', '--task', 'samples', '--region', 'brain', '-i', cases, '-o', root, '--weights', weights], /--task must be sample, pixel, or both tasks as sample,pixel \(alias both\), got "samples"/],
      [['predict', '--task', 'sample,sample', '--region', 'brain', '-i', cases, '-o', root, '--weights', weights], /--task must be sample, pixel, or both/],
      [['predict', '--task', 'both', '--region', 'brain', '-i', cases, '-o', root, '--method', 'vae-elbo'], /--method vae-elbo has no pixel score/],
      [[...base, '-i', cases, '-o', root, '--method', 'magic'], /unknown --method "magic"/],
      [[...base, '-i', cases, '-o', root, '--shard', '3/2'], /--shard 3\/2/],
      [['predict', '--task', 'sample', '--region', 'brain', '-i', cases, '-o', root, '--weights', join(root, 'nope')], /nope/],
    ];
    for (const [args, message] of checks) {
      const r = cli(args);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(message);
    }
  });

  it('--task sample,pixel (alias both): one pass, the same bytes as two single-task runs, in OUT/sample and OUT/pixel', async () => {
    const single: Record<string, string> = {};
    for (const task of ['sample', 'pixel']) {
      single[task] = await freshDir(`single-${task}`);
      const r = cli(['predict', '--task', task, '--region', 'brain', '-i', cases, '-o', single[task]!, '--weights', weights, '--seed', '3']);
      expect(r.status, r.stderr).toBe(0);
    }
    for (const spelling of ['sample,pixel', 'both', 'pixel, sample']) {
      const out = await freshDir('both-out');
      const summary = join(root, 'both-summary.json');
      const r = cli(['predict', '--task', spelling, '--region', 'brain', '-i', cases, '-o', out, '--weights', weights, '--seed', '3', '--summary', summary]);
      expect(r.status, r.stderr).toBe(0);
      expect((await readdir(out)).sort(), spelling).toEqual(['pixel', 'sample']);
      for (const task of ['sample', 'pixel']) {
        const names = (await readdir(single[task]!)).sort();
        expect((await readdir(join(out, task))).sort()).toEqual(names);
        for (const n of names) expect(await readFile(join(out, task, n)), `${spelling} ${task}/${n}`).toEqual(await readFile(join(single[task]!, n)));
        expect(r.stderr).toMatch(new RegExp(`zscore ${task}: 4/4 cases written, 0 failed, [\\d.]+ s total, [\\d.]+ s per case \\(one pass scoring sample, pixel`));
      }
      // one line per case for both tasks: each case read once
      expect(r.stderr.split('\n').filter((l) => /\] toy_1\.nii\.gz: sample, pixel written/.test(l))).toHaveLength(1);
      const record = JSON.parse(await readFile(summary, 'utf8')) as Record<string, unknown>;
      expect(record).toMatchObject({ tasks: ['sample', 'pixel'], method: 'zscore', cases: 4, sharedRun: true });
      expect(record.sample).toEqual({ output: join(out, 'sample'), written: ['toy_0.nii.gz', 'toy_1.nii.gz', 'toy_2.nii.gz', 'toy_3.nii.gz'], failed: [] });
      expect((record.pixel as { written: string[] }).written).toHaveLength(4);
      expect(typeof record.seconds).toBe('number');
    }
  });

  it('--task both: a bad case fails alone, in both folders, and a stale output of it is removed from each', async () => {
    const inDir = await freshDir('both-mixed');
    await writeNifti(join(inDir, 'a.nii.gz'), makeVolume(SHAPE, head('a', true)));
    await writeFile(join(inDir, 'b.nii.gz'), 'garbage');
    const out = await freshDir('both-mixed-out');
    await mkdir(join(out, 'sample'));
    await mkdir(join(out, 'pixel'));
    await writeFile(join(out, 'sample', 'b.nii.gz.txt'), '0.9\n');
    await writeFile(join(out, 'pixel', 'b.nii.gz'), 'stale');
    const summary = join(root, 'both-mixed.json');
    const r = cli(['predict', '--task', 'both', '--region', 'brain', '-i', inDir, '-o', out, '--weights', weights, '--summary', summary]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr.split('\n').filter((l) => l.includes('b.nii.gz'))).toHaveLength(1);
    expect(await readdir(join(out, 'sample'))).toEqual(['a.nii.gz.txt']);
    expect(await readdir(join(out, 'pixel'))).toEqual(['a.nii.gz']);
    const record = JSON.parse(await readFile(summary, 'utf8')) as Record<'sample' | 'pixel', { written: string[]; failed: { name: string }[] }>;
    for (const task of ['sample', 'pixel'] as const) {
      expect(record[task].written).toEqual(['a.nii.gz']);
      expect(record[task].failed.map((f) => f.name)).toEqual(['b.nii.gz']);
    }
  });

  it.skipIf(process.getuid?.() !== 0)('as an unprivileged user: a read-only output folder is exit 1; read-only input and no HOME work', async (ctx) => {
    // a checkout under a private (0700) folder is not readable by nobody: run a readable copy of the CLI
    const install = installFor(ROOT, NOBODY, NOBODY);
    if ('skip' in install) return ctx.skip(install.skip);
    ctx.onTestFinished(() => install.dispose());
    const userCli = join(install.root, 'dist', 'src', 'cli.js');
    const ro = await freshDir('read-only-out');
    await chmod(ro, 0o555);
    const asNobody: SpawnSyncOptions = { uid: NOBODY, gid: NOBODY, env: { PATH: process.env.PATH, HOME: '/nonexistent' } };
    const denied = cli(['predict', '--task', 'sample', '--region', 'brain', '-i', cases, '-o', ro, '--weights', weights], asNobody, userCli);
    expect(denied.status).toBe(1);
    expect(denied.stderr).toMatch(/cannot write to output folder .*read-only-out: permission denied \(EACCES\)/);
    const readOnlyIn = await freshDir('read-only-in');
    await writeNifti(join(readOnlyIn, 'x.nii.gz'), makeVolume(SHAPE, head('x', true)));
    await chmod(readOnlyIn, 0o555);
    const out = await freshDir('nobody-out');
    await chmod(out, 0o777);
    const ok = cli(['predict', '--task', 'pixel', '--region', 'brain', '-i', readOnlyIn, '-o', out, '--weights', weights], asNobody, userCli);
    expect(ok.status, ok.stderr).toBe(0);
    expect(await readdir(out)).toEqual(['x.nii.gz']);
  });
});

describe('moodlsr eval', () => {
  let set: string;
  let pred: string;
  beforeAll(async () => {
    set = await freshDir('eval-set');
    await mkdir(join(set, 'toy_label', 'sample'), { recursive: true });
    pred = await freshDir('eval-pred');
    const scores = [0.1, 0.9, 0.4, 0.3, 0.8];
    const labels = [0, 1, 0, 1, 1];
    for (let i = 0; i < 5; i++) {
      await writeFile(join(set, 'toy_label', 'sample', `toy_${i}.nii.gz.txt`), String(labels[i]));
      if (i !== 4) await writeFile(join(pred, `toy_${i}.nii.gz.txt`), `${scores[i]}\n`);
    }
  });

  it('--json prints one JSON object with the documented fields', () => {
    const r = cli(['eval', '--labels', set, '--pred', pred, '--mode', 'sample', '--json', '--threshold', '0.5', '--bootstrap', '50']);
    expect(r.status, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    for (const key of ['ap', 'auroc', 'best_dice', 'missing', 'bad', 'per_kind', 'per_case', 'ci', 'dice_at_threshold']) expect(result, key).toHaveProperty(key);
    expect(result.missing).toEqual(['toy_4.nii.gz']);
    expect(result.curves).toBeUndefined();
    // scores 0.9 (1), 0.4 (0), 0.3 (1), 0.1 (0), and the missing toy_4 (1) at 0
    expect(result.ap).toBeCloseTo((1 / 3) * (1 + 2 / 3 + 3 / 5), 12);
  });

  it('prints a readable summary without --json, naming missing predictions', () => {
    const r = cli(['eval', '--labels', set, '--pred', pred, '--mode', 'sample']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^sample: 5 cases {2}AP 0\.\d{4}/);
    expect(r.stdout).toMatch(/missing \(scored as 0\): toy_4\.nii\.gz/);
  });

  it('refuses an unusable --pred: missing, a file, empty, the other task’s folder, no matching names', async () => {
    const pixelDir = await freshDir('pixel-preds');
    await writeNifti(join(pixelDir, 'toy_0.nii.gz'), makeVolume(SHAPE, head('p', false)));
    const plain = join(root, 'pred-file');
    await writeFile(plain, '0.5');
    const otherNames = await freshDir('other-names');
    await writeFile(join(otherNames, 'case_9.nii.gz.txt'), '0.5');
    const checks: [string, RegExp][] = [
      [join(root, 'no-such-pred'), /no-such-pred: --pred cannot be used: no such file or folder \(ENOENT\)/],
      [plain, /pred-file: --pred must be a folder of predictions/],
      [await freshDir('empty-pred'), /empty-pred: holds no sample predictions/],
      [pixelDir, /pixel-preds: holds 1 NIfTI map and no F\.txt score: pixel predictions; use --mode pixel/],
      [otherNames, /other-names: none of the 5 cases has a prediction here \(expected names like toy_0\.nii\.gz\.txt\)/],
    ];
    for (const [dir, message] of checks) {
      const r = cli(['eval', '--labels', set, '--pred', dir, '--mode', 'sample']);
      expect(r.status, dir).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    }
  });

  it('--curves without --json is refused; --baseline is read before the evaluation', async () => {
    const c = cli(['eval', '--labels', set, '--pred', pred, '--mode', 'sample', '--curves']);
    expect(c.status).toBe(1);
    expect(c.stderr).toMatch(/--curves .* give --json too/);
    const nanPred = await freshDir('nan-pred');
    await writeFile(join(nanPred, 'toy_0.nii.gz.txt'), 'nan');
    const r = cli(['eval', '--labels', set, '--pred', nanPred, '--mode', 'sample', '--baseline', join(root, 'no-baseline.json')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no-baseline\.json: cannot read: no such file or folder/);
  });

  it('exit 1 naming the problem: no labels, bad mode', async () => {
    const r = cli(['eval', '--labels', await freshDir('no-labels'), '--pred', pred, '--mode', 'pixel']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no pixel labels|no label folder/);
    const m = cli(['eval', '--labels', set, '--pred', pred, '--mode', 'voxel']);
    expect(m.status).toBe(1);
    expect(m.stderr).toMatch(/--mode must be sample or pixel/);
    expect(await readFile(join(pred, 'toy_0.nii.gz.txt'), 'utf8')).toBe('0.1\n');
  });
});

describe('shipped weights of each method', () => {
  it('zscore reads weights/REGION, the networks their sub-folder', async () => {
    const { shippedWeightsDir } = await import('../src/methods/index.js');
    const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
    expect(shippedWeightsDir('brain')).toBe(join(root, 'weights', 'brain'));
    expect(shippedWeightsDir('abdom', 'zscore')).toBe(join(root, 'weights', 'abdom'));
    expect(shippedWeightsDir('brain', 'lsr')).toBe(join(root, 'weights', 'brain', 'lsr'));
    expect(shippedWeightsDir('abdom', 'lsgs')).toBe(join(root, 'weights', 'abdom', 'lsgs'));
    expect(shippedWeightsDir('brain', 'vae-combi')).toBe(join(root, 'weights', 'brain', 'vae'));
  });
});
