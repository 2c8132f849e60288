/**
 * Messages a user can act on: each names the real cause (a read-only mount, missing networks, a bad seed,
 * stray arguments, an empty set, a tiny volume, weights of another region), without internal class
 * prefixes or raw errno text; --help marks required options and lists the exit codes; predict shows k/N
 * progress and can write a machine-readable summary.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fitZScore, saveZScore } from '../src/methods/zscore/model.js';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { describeError, InputFileError } from '../src/errors.js';
import { writeNifti } from '../src/io/nifti.js';
import type { Predictor } from '../src/mood/predictor.js';
import { runPrediction } from '../src/mood/run.js';
import { makeVolume, type Shape3 } from '../src/volume/volume.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const SHAPE: Shape3 = [16, 14, 12];
const IS_ROOT = process.getuid?.() === 0;

let root: string;
let weights: string;
let cases: string;

function volume(seed: string, shape: Shape3 = SHAPE): Float32Array {
  const rng = createRng(seed);
  return new Float32Array(shape[0] * shape[1] * shape[2]).map(() => 0.5 + 0.05 * rng.normal());
}

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
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
  root = await mkdtemp(join(tmpdir(), 'moodlsr-messages-'));
  await chmod(root, 0o755);
  const normals = await freshDir('normals');
  const files: string[] = [];
  for (let i = 0; i < 3; i++) {
    files.push(join(normals, `n${i}.nii.gz`));
    await writeNifti(files[i]!, makeVolume(SHAPE, volume(`n${i}`)));
  }
  weights = join(root, 'weights');
  await saveZScore(weights, await fitZScore({ files, holdout: 1, seed: 0, config: { grid: 8 }, log: () => undefined }), { region: 'brain' });
  cases = await freshDir('cases');
  for (let i = 0; i < 2; i++) await writeNifti(join(cases, `toy_${i}.nii.gz`), makeVolume(SHAPE, volume(`c${i}`)));
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const predict = (...extra: string[]): string[] => ['predict', '--task', 'sample', '--region', 'brain', '-i', cases, ...extra];

describe('messages name the real cause', () => {
  it.skipIf(!IS_ROOT)('a read-only output mount says "read-only file system", not ENOENT', async (ctx) => {
    const mount = await freshDir('ro-mount');
    const script = 'mount -t tmpfs -o ro tmpfs "$1" || exit 99; shift; exec "$@"';
    const r = spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', mount, process.execPath, CLI, ...predict('-o', join(mount, 'out'), '--weights', weights)], {
      encoding: 'utf8',
    });
    if (r.status === 99 || r.error) return ctx.skip('no mount namespace here (unshare -m / mount tmpfs failed)');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot use output folder .*ro-mount\/out: .*cannot create the folder: read-only file system \(EROFS\)/);
    expect(r.stderr).not.toMatch(/ENOENT/);
  });

  it('an empty or missing --weights folder says the weights are missing, not "run calibrate"', async () => {
    const empty = await freshDir('empty-weights');
    const r = cli(predict('-o', join(root, 'o-empty'), '--method', 'lsr', '--weights', empty));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/empty-weights: holds no weights \(no \*\.json file\): the networks or statistics of --method lsr are missing/);
    expect(r.stderr).not.toMatch(/calibrate/);
    const missing = cli(predict('-o', join(root, 'o-missing'), '--weights', join(root, 'nowhere')));
    expect(missing.stderr).toMatch(/nowhere: weights folder of --method zscore cannot be used: no such file or folder \(ENOENT\)/);
  });

  it('--seed: empty, fractional and imprecise values are refused with the valid range', () => {
    for (const [value, message] of [
      ['', /--seed must be an integer between -9007199254740991 and 9007199254740991, got ""/],
      ['1.5', /--seed must be an integer between .*got "1\.5"/],
      ['99999999999999999999', /"99999999999999999999" is too large to be kept exactly/],
    ] as const) {
      const r = cli(predict('-o', join(root, 'o-seed'), '--weights', weights, '--seed', value));
      expect(r.status, value).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/Infinity/);
    }
    expect(cli(['inject', '--out', join(root, 'x'), '--seed', '-1', '--normal', '-2']).stderr).toMatch(/--normal must be an integer ≥ 0, got "-2"/);
  });

  it('extra positional arguments are refused', () => {
    const r = cli([...predict('-o', join(root, 'o-extra'), '--weights', weights), 'stray']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/too many arguments.*Expected 0 arguments but got 1/);
  });

  it('inject refuses an empty --kinds and an empty set; an all-normal set gets a warning', () => {
    const src = ['inject', '--src', join(cases, 'toy_0.nii.gz'), '--size', '8', '--seed', '1'];
    const kinds = cli([...src, '--out', join(root, 'k'), '--kinds', '']);
    expect(kinds.status).toBe(1);
    expect(kinds.stderr).toMatch(/--kinds "" names no anomaly kind/);
    const none = cli([...src, '--out', join(root, 'n'), '--normal', '0', '--per-kind', '0']);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/the set would be empty/);
    expect(existsSync(join(root, 'n'))).toBe(false);
    const normals = cli([...src, '--out', join(root, 'normals-only'), '--normal', '1', '--per-kind', '0']);
    expect(normals.status, normals.stderr).toBe(0);
    expect(normals.stderr).toMatch(/warning: the set holds only normal cases/);
  });

  it('an all-zero result of a tiny volume is reported with its size', async () => {
    const inDir = await freshDir('tiny');
    await writeNifti(join(inDir, 't.nii.gz'), makeVolume([8, 8, 8], volume('t', [8, 8, 8])));
    const flat: Predictor = { name: 'flat', tasks: ['sample', 'pixel'], sampleScore: async () => 0, pixelScore: async (v) => new Float32Array(v.data.length) };
    for (const task of ['sample', 'pixel'] as const) {
      const lines: string[] = [];
      await runPrediction({ task, inDir, outDir: await freshDir(`tiny-${task}`), predictor: flat, seed: 0, log: (l) => lines.push(l) });
      expect(lines.join('\n')).toMatch(/t\.nii\.gz: warning: flat .* exactly 0: the volume is only 8×8×8 voxels, too small/);
    }
  });

  it('--region abdom with weights made for brain gets a warning', () => {
    const r = cli(['predict', '--task', 'sample', '--region', 'abdom', '-i', cases, '-o', join(root, 'o-region'), '--weights', weights]);
    expect(r.stderr).toMatch(/warning: --region abdom, but the weights in .*weights were made for brain \(.*zscore\.json\)/);
  });

  it('errors carry no internal class prefix; file-system errors are in words', () => {
    const enoent = Object.assign(new Error("EACCES: permission denied, open '/x/y'"), { code: 'EACCES', syscall: 'open', path: '/x/y' });
    expect(describeError(enoent)).toBe('cannot open /x/y: permission denied (EACCES)');
    class PredictionSetupError extends Error {
      override name = 'PredictionSetupError';
    }
    expect(describeError(new PredictionSetupError('no .nii files in /in'))).toBe('no .nii files in /in');
    expect(describeError(new RangeError('bad size'))).toBe('bad size');
    expect(describeError(new InputFileError('/f', 'truncated'))).toBe('/f: truncated');
    expect(describeError(new TypeError('x is undefined'))).toBe('internal error: TypeError: x is undefined');
    const r = cli(predict('-o', join(root, 'o-none'), '--weights', weights, '--task', 'sample', '-i', join(root, 'no-input')));
    expect(r.stderr).toMatch(/^moodlsr: cannot read input folder .*no-input: no such file or folder \(ENOENT\)$/m);
    expect(r.stderr).not.toMatch(/PredictionSetupError|InputFileError/);
  });
});

describe('everyday use', () => {
  it('--help marks required options and lists the exit codes', () => {
    const r = cli(['predict', '--help']);
    expect(r.stdout).toMatch(/--task <task> +sample or pixel; or sample,pixel \(alias both\)[^(]*\(required\)/);
    expect(r.stdout).toMatch(/--weights <dir> +weights folder \(default: the shipped/);
    expect(r.stdout).not.toMatch(/--weights .*\(required\)/);
    expect(r.stdout).toMatch(/Exit codes:\n {2}0 {2}success\n {2}1 .*\n {2}2 {2}some inputs failed/);
    expect(cli(['--help']).stdout).toMatch(/Exit codes:/);
  });

  it('predict logs the case count and k/N per case, and --summary writes which cases failed and why', async () => {
    const inDir = await freshDir('summary-in');
    await writeNifti(join(inDir, 'a.nii.gz'), makeVolume(SHAPE, volume('a')));
    await writeNifti(join(inDir, 'b.nii.gz'), makeVolume([8, 8, 8], volume('b', [8, 8, 8])));
    const summary = join(root, 'summary.json');
    const r = cli(['predict', '--task', 'sample', '--region', 'brain', '-i', inDir, '-o', join(root, 'summary-out'), '--weights', weights, '--summary', summary]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/zscore sample: 2 cases to score into /);
    expect(r.stderr).toMatch(/\[1\/2\] a\.nii\.gz: sample written/);
    expect(r.stderr).toMatch(/\[2\/2\] b\.nii\.gz: FAILED/);
    const record = JSON.parse(await readFile(summary, 'utf8')) as { cases: number; written: string[]; failed: { name: string; reason: string }[] };
    expect(record.cases).toBe(2);
    expect(record.written).toEqual(['a.nii.gz']);
    expect(record.failed).toHaveLength(1);
    expect(record.failed[0]!.name).toBe('b.nii.gz');
    expect(record.failed[0]!.reason).toMatch(/8×8×8/);
  });

  it('an absent tfjs-node-gpu is one short note, not the resolver’s message', async () => {
    const require = createRequire(import.meta.url);
    let installed = true;
    try {
      require.resolve('@tensorflow/tfjs-node-gpu');
    } catch {
      installed = false;
    }
    if (installed) return;
    const lines: string[] = [];
    await initEngine({ prefer: 'auto', log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/tfjs-node-gpu not installed/);
    expect(lines.join('\n')).not.toMatch(/Cannot find package|imported from/);
  });
});
