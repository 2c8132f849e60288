/**
 * The evaluation harness (eval/harness): the organisers' semantics on folders of predictions (checked against an
 * independent Python evaluator written with nibabel + scikit-learn), the regression gate through the CLI, the
 * runner's timeout, and memory that stays flat in the number of cases.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../src/engine/random.js';
import { writeNifti } from '../src/io/nifti.js';
import { makeVolume, type Shape3 } from '../src/volume/volume.js';
import { evaluate, NaNPredictionError, parseScore, resolveLabelDir, type EvalResult } from '../eval/harness/evaluate.js';
import { describeDrops, findDrops } from '../eval/harness/regression.js';
import { parseEntry, runEntry, timerDelayMs } from '../eval/harness/runner.js';
import { sampleAp, sampleAuroc } from '../eval/metrics/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const SYSTEM_PYTHON = '/usr/bin/python3';
const SHAPE: Shape3 = [12, 10, 8];
const VOXELS = SHAPE[0] * SHAPE[1] * SHAPE[2];

/** The organisers' evaluation as the contract describes it, written independently: nibabel + sklearn, per case. */
const PYTHON_EVALUATOR = String.raw`
import json, os, sys
import numpy as np, nibabel as nib
from sklearn.metrics import average_precision_score, roc_auc_score
def evaluate(mode, label_dir, pred_dir):
    scores, labels = [], []
    for f in sorted(n for n in os.listdir(label_dir) if n.endswith('.txt' if mode == 'sample' else '.nii.gz')):
        p = os.path.join(pred_dir, f)
        if mode == 'sample':
            with open(os.path.join(label_dir, f)) as fh:
                labels.append(np.array([int(fh.readline())]))
            try:
                with open(p) as fh:
                    s = float(fh.readline())
            except Exception:
                s = 0.0
            scores.append(np.array([s]))
        else:
            label_img = nib.load(os.path.join(label_dir, f))
            lab = np.rint(label_img.get_fdata()).astype(int).ravel()
            pred = np.zeros(lab.shape, np.float16)
            if os.path.exists(p):
                try:
                    img = nib.load(p)
                    if img.shape == label_img.shape:
                        pred = np.asarray(img.get_fdata(dtype=np.float32)).astype(np.float16).ravel()
                except Exception:
                    pass
            labels.append(lab)
            scores.append(pred)
    y = np.concatenate(labels)
    s = np.clip(np.concatenate(scores).astype(np.float64), 0, 1)
    return {'ap': average_precision_score(y, s), 'auroc': roc_auc_score(y, s)}
jobs = json.loads(sys.argv[1])
print(json.dumps([evaluate(*job) for job in jobs]))
`;

/** One Python process for several evaluations (importing sklearn costs seconds). */
function pythonEvaluate(jobs: ['sample' | 'pixel', string, string][]): { ap: number; auroc: number }[] {
  return JSON.parse(execFileSync(SYSTEM_PYTHON, ['-c', PYTHON_EVALUATOR, JSON.stringify(jobs)], { encoding: 'utf8' }));
}

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let root: string;

/** Whether a process exists and is not a zombie (a killed child whose parent died waits for the init to reap it). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    if (existsSync('/proc/self/stat')) return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function freshDir(...parts: string[]): Promise<string> {
  const dir = join(root, ...parts);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  return dir;
}

/** A cube of positives in abnormal cases (none in normal ones). */
function labelVolume(abnormal: boolean, offset: number): Float32Array {
  const label = new Float32Array(VOXELS);
  if (!abnormal) return label;
  for (let z = 2; z < 5; z++) for (let y = 2 + offset; y < 6 + offset; y++) for (let x = 3; x < 7; x++) label[x + SHAPE[0] * (y + SHAPE[1] * z)] = 1;
  return label;
}

/** Noisy scores higher on the label, with exact ties (quantised to 1/64) and some values outside [0, 1]. */
function predictionFor(label: Float32Array, seed: string): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from(label, (l) => Math.round((0.25 * l + 0.6 * rng.next() - 0.05) * 64) / 64);
}

interface CaseSpec {
  name: string;
  abnormal: boolean;
  kind: string;
  /** What to put in the sample prediction: a text, or null for none. */
  sample: string | null;
  /** The pixel prediction: 'ok', 'missing', 'garbage', 'wrongshape', 'uint16'. */
  pixel: 'ok' | 'missing' | 'garbage' | 'wrongshape' | 'uint16';
}

/** Created in this (unsorted) order; sorted walk order is B…, a…, c…, … (code units). */
const CASES: CaseSpec[] = [
  { name: 'c_ok.nii.gz', abnormal: true, kind: 'noise', sample: '  0.71  \n', pixel: 'ok' },
  { name: 'B_ok.nii.gz', abnormal: true, kind: 'uniform', sample: '0.8\n', pixel: 'ok' },
  { name: 'a_missing.nii.gz', abnormal: true, kind: 'uniform', sample: null, pixel: 'missing' },
  { name: 'd_garbage.nii.gz', abnormal: false, kind: 'normal', sample: 'abc\n', pixel: 'garbage' },
  { name: 'e_wrongshape.nii.gz', abnormal: true, kind: 'noise', sample: '', pixel: 'wrongshape' },
  { name: 'f_u16.nii.gz', abnormal: false, kind: 'normal', sample: 'inf', pixel: 'uint16' },
  { name: 'g_clip.nii.gz', abnormal: true, kind: 'uniform', sample: '1.5e-1\r\n0.99', pixel: 'ok' },
  { name: 'h_normal.nii.gz', abnormal: false, kind: 'normal', sample: '-2', pixel: 'ok' },
  { name: 'i_normal.nii.gz', abnormal: false, kind: 'normal', sample: '0.7100000000000001', pixel: 'ok' },
];

let set: string;
let predSample: string;
let predPixel: string;

async function buildSet(): Promise<void> {
  set = await freshDir('set');
  const pixelLabels = await freshDir('set', 'toy_label', 'pixel');
  const sampleLabels = await freshDir('set', 'toy_label', 'sample');
  predSample = await freshDir('pred', 'sample');
  predPixel = await freshDir('pred', 'pixel');
  for (const [i, c] of CASES.entries()) {
    const label = labelVolume(c.abnormal, i % 3);
    await writeNifti(join(pixelLabels, c.name), makeVolume(SHAPE, label), { dtype: 'uint8' });
    await writeFile(join(sampleLabels, `${c.name}.txt`), c.abnormal ? '1' : '0');
    if (c.sample !== null) await writeFile(join(predSample, `${c.name}.txt`), c.sample);
    const pred = predictionFor(label, c.name);
    if (c.name === 'g_clip.nii.gz') for (let v = 0; v < pred.length; v += 5) pred[v] = v % 2 ? 2.5 : -1;
    if (c.pixel === 'ok') await writeNifti(join(predPixel, c.name), makeVolume(SHAPE, pred));
    if (c.pixel === 'uint16') await writeNifti(join(predPixel, c.name), makeVolume(SHAPE, pred.map((v) => Math.min(1, Math.max(0, v)))), { dtype: 'uint16' });
    if (c.pixel === 'garbage') await writeFile(join(predPixel, c.name), 'definitely not gzip');
    if (c.pixel === 'wrongshape') await writeNifti(join(predPixel, c.name), makeVolume([8, 10, 12], pred));
  }
  await writeFile(join(sampleLabels, 'README'), 'not a label');
  await writeFile(
    join(set, 'manifest.json'),
    JSON.stringify({ format: 'moodlsr-toyset/1', cases: CASES.map((c) => ({ name: c.name, kind: c.kind })) }),
  );
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  root = await mkdtemp(join(tmpdir(), 'moodlsr-harness-'));
  await buildSet();
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('MOOD semantics on a folder of predictions', () => {
  let sample: EvalResult;
  let pixel: EvalResult;
  let reference: { ap: number; auroc: number }[];
  beforeAll(async () => {
    const manifest = JSON.parse(await readFile(join(set, 'manifest.json'), 'utf8'));
    sample = await evaluate({ labels: set, pred: predSample, mode: 'sample', manifest });
    pixel = await evaluate({ labels: set, pred: predPixel, mode: 'pixel', manifest });
    reference = pythonEvaluate([
      ['sample', join(set, 'toy_label', 'sample'), predSample],
      ['pixel', join(set, 'toy_label', 'pixel'), predPixel],
    ]);
  });

  it('sample AP and AUROC equal an independent evaluator (nibabel + sklearn) to 1e-12', () => {
    const ref = reference[0]!;
    expect(Math.abs(sample.ap - ref.ap)).toBeLessThanOrEqual(1e-12);
    expect(Math.abs(sample.auroc - ref.auroc)).toBeLessThanOrEqual(1e-12);
  });

  it('pixel AP (one AP pooled over all voxels) and AUROC equal the independent evaluator to 1e-12', () => {
    const ref = reference[1]!;
    expect(pixel.ap).toBeLessThan(1);
    expect(Math.abs(pixel.ap - ref.ap)).toBeLessThanOrEqual(1e-12);
    expect(Math.abs(pixel.auroc - ref.auroc)).toBeLessThanOrEqual(1e-12);
  });

  it('walks label names in sorted (code unit) order', () => {
    const sorted = CASES.map((c) => c.name).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(sorted[0]).toBe('B_ok.nii.gz');
    expect(sample.per_case.map((c) => c.name)).toEqual(sorted);
    expect(pixel.per_case.map((c) => c.name)).toEqual(sorted);
    expect(sample.cases).toBe(CASES.length);
  });

  it('lists missing and bad predictions (scored as zeros) with a reason', () => {
    expect(sample.missing).toEqual(['a_missing.nii.gz']);
    expect(sample.bad.map((b) => b.name)).toEqual(['d_garbage.nii.gz', 'e_wrongshape.nii.gz']);
    expect(pixel.missing).toEqual(['a_missing.nii.gz']);
    expect(pixel.bad.map((b) => b.name)).toEqual(['d_garbage.nii.gz', 'e_wrongshape.nii.gz']);
    expect(pixel.bad[1]!.reason).toMatch(/shape/);
    for (const r of [sample, pixel]) {
      const status = Object.fromEntries(r.per_case.map((c) => [c.name, c.status]));
      expect(status['a_missing.nii.gz']).toBe('missing');
      expect(status['d_garbage.nii.gz']).toBe('bad');
      expect(status['c_ok.nii.gz']).toBe('ok');
    }
    const score = Object.fromEntries(sample.per_case.map((c) => [c.name, c.score]));
    expect(score['a_missing.nii.gz']).toBe(0);
    expect(score['d_garbage.nii.gz']).toBe(0);
  });

  it('sample scores are clipped to [0, 1] and parsed from the first line only', () => {
    const score = Object.fromEntries(sample.per_case.map((c) => [c.name, c.score]));
    expect(score['f_u16.nii.gz']).toBe(1); // inf
    expect(score['h_normal.nii.gz']).toBe(0); // -2
    expect(score['g_clip.nii.gz']).toBe(0.15); // "1.5e-1\r\n0.99"
    expect(score['c_ok.nii.gz']).toBe(0.71);
  });

  it('per_kind: each anomaly kind with all normal cases, as from the metric functions', () => {
    const byName = new Map(sample.per_case.map((c) => [c.name, c]));
    for (const kind of ['noise', 'uniform']) {
      const members = CASES.filter((c) => c.kind === kind || c.kind === 'normal').map((c) => byName.get(c.name)!);
      const s = members.map((m) => m.score!);
      const l = members.map((m) => m.label);
      expect(sample.per_kind[kind]!.n).toBe(members.length);
      expect(sample.per_kind[kind]!.ap).toBe(sampleAp(s, l));
      expect(sample.per_kind[kind]!.auroc).toBe(sampleAuroc(s, l));
    }
    expect(Object.keys(pixel.per_kind).sort()).toEqual(['noise', 'uniform']);
    expect(pixel.per_kind.uniform!.n).toBe(3 + 4);
  });

  it('finds the labels from the set, from toy_label/ or from the mode folder itself', async () => {
    const expected = join(set, 'toy_label', 'pixel');
    expect(await resolveLabelDir(set, 'pixel')).toBe(expected);
    expect(await resolveLabelDir(join(set, 'toy_label'), 'pixel')).toBe(expected);
    expect(await resolveLabelDir(expected, 'pixel')).toBe(expected);
    const r = await evaluate({ labels: join(set, 'toy_label', 'sample'), pred: predSample, mode: 'sample' });
    expect(r.ap).toBe(sample.ap);
    expect(r.per_kind).toEqual({});
  });
});

describe('NaN, quantisation and clipping', () => {
  async function twoCaseSet(name: string): Promise<{ labels: string; pred: string }> {
    const labels = await freshDir(name, 'toy_label', 'sample');
    const pixelLabels = await freshDir(name, 'toy_label', 'pixel');
    const pred = await freshDir(name, 'pred');
    for (const [f, l] of [['p.nii.gz', 1], ['q.nii.gz', 0]] as const) {
      await writeFile(join(labels, `${f}.txt`), String(l));
      await writeNifti(join(pixelLabels, f), makeVolume([2, 2, 2], new Float32Array(8).fill(l)), { dtype: 'uint8' });
    }
    return { labels: join(root, name), pred };
  }

  it('a NaN sample score is an error naming the file, in any spelling', async () => {
    const { labels, pred } = await twoCaseSet('nan-sample');
    await writeFile(join(pred, 'q.nii.gz.txt'), '0.3');
    for (const text of ['nan', ' NaN\n', '-nan']) {
      await writeFile(join(pred, 'p.nii.gz.txt'), text);
      const run = evaluate({ labels, pred, mode: 'sample' });
      await expect(run).rejects.toThrow(NaNPredictionError);
      await expect(evaluate({ labels, pred, mode: 'sample' })).rejects.toThrow(join(pred, 'p.nii.gz.txt'));
    }
  });

  it('a NaN voxel is an error naming the file; infinities are clipped, not errors', async () => {
    const { labels, pred } = await twoCaseSet('nan-pixel');
    await writeNifti(join(pred, 'p.nii.gz'), makeVolume([2, 2, 2], Float32Array.from([0.5, 0.5, 0.5, NaN, 0.5, 0.5, 0.5, 0.5])));
    const err = await evaluate({ labels, pred, mode: 'pixel' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NaNPredictionError);
    expect(String((err as Error).message)).toContain(join(pred, 'p.nii.gz'));
    expect(String((err as Error).message)).toMatch(/1 voxel is NaN/);
    await writeNifti(join(pred, 'p.nii.gz'), makeVolume([2, 2, 2], new Float32Array(8).fill(Infinity)));
    await writeNifti(join(pred, 'q.nii.gz'), makeVolume([2, 2, 2], new Float32Array(8).fill(0.9)));
    expect((await evaluate({ labels, pred, mode: 'pixel' })).ap).toBe(1);
  });

  it('sample scores are not quantised; pixel scores are float16-quantised (ties below float16 resolution)', async () => {
    const { labels, pred } = await twoCaseSet('quantised');
    // 0.50002 and 0.50001 differ by less than half a float16 step at 0.5 (2^-11): they round to the same float16
    await writeFile(join(pred, 'p.nii.gz.txt'), '0.50002');
    await writeFile(join(pred, 'q.nii.gz.txt'), '0.50001');
    expect((await evaluate({ labels, pred, mode: 'sample' })).ap).toBe(1);
    await writeNifti(join(pred, 'p.nii.gz'), makeVolume([2, 2, 2], new Float32Array(8).fill(0.50002)));
    await writeNifti(join(pred, 'q.nii.gz'), makeVolume([2, 2, 2], new Float32Array(8).fill(0.50001)));
    const tied = await evaluate({ labels, pred, mode: 'pixel' });
    expect(tied.ap).toBe(0.5);
    expect(tied.auroc).toBe(0.5);
    // one float16 step apart: ranked again
    await writeNifti(join(pred, 'p.nii.gz'), makeVolume([2, 2, 2], new Float32Array(8).fill(0.5 + 2 ** -11)));
    expect((await evaluate({ labels, pred, mode: 'pixel' })).ap).toBe(1);
  });

  it('clips to [0, 1] before ranking (sample and pixel): 3.2 and 1.7 tie at 1', async () => {
    const { labels, pred } = await twoCaseSet('clipped');
    await writeFile(join(pred, 'p.nii.gz.txt'), '1.7');
    await writeFile(join(pred, 'q.nii.gz.txt'), '3.2');
    expect((await evaluate({ labels, pred, mode: 'sample' })).ap).toBe(0.5);
    await writeNifti(join(pred, 'p.nii.gz'), makeVolume([2, 2, 2], new Float32Array(8).fill(-0.5)));
    await writeNifti(join(pred, 'q.nii.gz'), makeVolume([2, 2, 2], new Float32Array(8).fill(-3)));
    expect((await evaluate({ labels, pred, mode: 'pixel' })).ap).toBe(0.5);
  });

  it('parses a score file like Python float(readline()) does', async () => {
    const texts = [
      '0.5', ' 0.5 \n', '1e-3', '1E+02', '.5', '5.', '+0.25', '-0', '1_000.5', '1__0', '_1', '1_', '0x10', '', '\n0.5',
      '0.5\r0.7', '0.5 0.7', 'inf', '-Infinity', 'INF', 'infinit', '\ufeff0.5', '\t0.5\x0c', '\x1c0.5', '0.5\x1c', '\x850.5', '\u20000.5', '1e', 'e5',
      '0.1\u00a0', '5e-324', '1e400',
    ];
    const dir = await freshDir('parse-score');
    const files = await Promise.all(texts.map(async (t, i) => {
      const f = join(dir, `${i}.txt`);
      await writeFile(f, t);
      return f;
    }));
    // what the organisers' evaluator does with each file: float(first line), 0 on failure (None here)
    const script = 'import json,sys\nout=[]\nfor p in sys.argv[1:]:\n    try:\n        with open(p, encoding="utf-8") as fh: out.append(repr(float(fh.readline())))\n    except Exception: out.append(None)\nprint(json.dumps(out))';
    const python = JSON.parse(execFileSync(SYSTEM_PYTHON, ['-c', script, ...files], { encoding: 'utf8' })) as (string | null)[];
    texts.forEach((t, i) => {
      const ours = parseScore(t);
      const expected = python[i];
      if (expected === null) expect(Number.isNaN(ours.value) && !ours.wasNaN, JSON.stringify(t)).toBe(true);
      else expect(ours.value, JSON.stringify(t)).toBe(Number(expected.replace('inf', 'Infinity')));
    });
  });
});

describe('regression gate', () => {
  it('findDrops names metrics that fell by more than the tolerance, missing ones and NaN; rises pass', () => {
    const base = { ap: 0.8, auroc: 0.9, per_kind: { noise: { ap: 0.7, best_dice: 0.4 } }, prevalence: 0.5 };
    expect(findDrops(base, base, 0)).toEqual([]);
    expect(findDrops({ ...base, ap: 0.796 }, base, 0.005)).toEqual([]);
    expect(findDrops({ ...base, ap: 0.99, prevalence: 0.1 }, base, 0)).toEqual([]);
    const drops = findDrops({ ap: 0.79, auroc: NaN, per_kind: { noise: { ap: 0.7 } } }, base, 0.005);
    expect(drops.map((d) => d.path)).toEqual(['ap', 'auroc', 'per_kind.noise.best_dice']);
    const text = describeDrops(drops, 0.005);
    expect(text).toMatch(/^ap: 0\.79 < baseline 0\.8/m);
    expect(text).toMatch(/per_kind\.noise\.best_dice: missing/);
    expect(() => findDrops(base, base, -1)).toThrow(RangeError);
  });

  it('moodlsr eval --baseline: exit 0 within the tolerance, exit non-zero naming the fallen metric beyond it', async () => {
    const current = cli(['eval', '--labels', set, '--pred', predSample, '--mode', 'sample', '--json']);
    expect(current.status, current.stderr).toBe(0);
    const result = JSON.parse(current.stdout) as EvalResult;
    expect(result.missing).toEqual(['a_missing.nii.gz']);
    const gate = async (ap: number, tolerance: string) => {
      const file = join(root, `baseline-${ap}.json`);
      await writeFile(file, JSON.stringify({ ...result, ap }));
      return cli(['eval', '--labels', set, '--pred', predSample, '--mode', 'sample', '--baseline', file, '--tolerance', tolerance]);
    };
    const within = await gate(result.ap + 0.004, '0.005');
    expect(within.status, within.stderr).toBe(0);
    expect(within.stderr).toMatch(/no metric fell/);
    const beyond = await gate(result.ap + 0.006, '0.005');
    expect(beyond.status).not.toBe(0);
    expect(beyond.stderr).toMatch(/REGRESSION/);
    expect(beyond.stderr).toMatch(/^ap: /m);
    expect(beyond.stderr).not.toMatch(/^auroc/m);
  });

  it('moodlsr eval: a NaN prediction exits non-zero naming the file; a bad baseline file is named', async () => {
    const pred = await freshDir('cli-nan');
    await copyFile(join(predSample, 'B_ok.nii.gz.txt'), join(pred, 'B_ok.nii.gz.txt'));
    await writeFile(join(pred, 'c_ok.nii.gz.txt'), 'nan');
    const r = cli(['eval', '--labels', set, '--pred', pred, '--mode', 'sample']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(join(pred, 'c_ok.nii.gz.txt'));
    const badBaseline = join(root, 'broken.json');
    await writeFile(badBaseline, '{ not json');
    const b = cli(['eval', '--labels', set, '--pred', predSample, '--mode', 'sample', '--baseline', badBaseline]);
    expect(b.status).toBe(1);
    expect(b.stderr).toContain(badBaseline);
  });
});

describe('runner', () => {
  it('the timeout kills a hanging command and its children; the partial outputs are scored', async () => {
    const inDir = await freshDir('runner-in');
    const out = join(root, 'runner-out');
    const pidFile = join(root, 'runner.pid');
    const script = join(root, 'partial.sh');
    await writeFile(script, `printf '0.9\\n' > "$2/B_ok.nii.gz.txt"\nsleep 100 &\necho $! > "${pidFile}"\nwait\n`);
    const entry = parseEntry(`partial=sh '${script}'`, 'command');
    const outcome = await runEntry(entry, { inDir, outDir: out, task: 'sample', region: 'brain', seed: 0, timeoutSeconds: 1 });
    expect(outcome.timedOut).toBe(true);
    expect(outcome.exitCode).not.toBe(0);
    const sleeper = Number(await readFile(pidFile, 'utf8'));
    let alive = isRunning(sleeper);
    for (let i = 0; i < 50 && alive; i++) {
      await new Promise((r) => setTimeout(r, 20));
      alive = isRunning(sleeper);
    }
    expect(alive).toBe(false);
    const r = await evaluate({ labels: set, pred: out, mode: 'sample' });
    expect(r.missing).toHaveLength(CASES.length - 1);
    expect(r.per_case.find((c) => c.name === 'B_ok.nii.gz')!.score).toBe(0.9);
  });

  it('a command without {in}/{out} gets the folders appended, quoted (spaces survive)', async () => {
    const inDir = await freshDir('runner in with spaces');
    const out = join(root, 'runner out with spaces');
    const outcome = await runEntry(parseEntry('args=printf "[%s]"', 'command'), { inDir, outDir: out, task: 'pixel', region: 'abdom', seed: 0, timeoutSeconds: 30 });
    expect(outcome.exitCode).toBe(0);
    expect(outcome.tail).toBe(`[${inDir}][${out}]`);
    const filled = await runEntry(parseEntry('ph=printf "%s|" {task} {region} {out}', 'command'), { inDir, outDir: out, task: 'pixel', region: 'abdom', seed: 0, timeoutSeconds: 30 });
    expect(filled.tail).toBe(`pixel|abdom|${out}|`);
    expect(existsSync(out)).toBe(true);
  });

  it('parses entries: NAME=COMMAND, and method@weights split at the first @', () => {
    expect(parseEntry('zscore', 'method')).toEqual({ name: 'zscore', kind: 'method', method: 'zscore' });
    expect(parseEntry('zscore@/w/v1@2024', 'method')).toEqual({ name: 'zscore', kind: 'method', method: 'zscore', weights: '/w/v1@2024' });
    expect(parseEntry('mine=sh run.sh a=b', 'command')).toEqual({ name: 'mine', kind: 'command', command: 'sh run.sh a=b' });
    expect(() => parseEntry('=sh x', 'command')).toThrow(/NAME=COMMAND/);
    expect(() => parseEntry('@w', 'method')).toThrow(/needs a name/);
  });

  it('a timeout longer than a timer can hold does not fire at once', async () => {
    expect(timerDelayMs(3e6)).toBe(2 ** 31 - 1);
    expect(() => timerDelayMs(0)).toThrow(RangeError);
    const outcome = await runEntry(parseEntry('quick=sleep 0.2 # {in}', 'command'), { inDir: root, outDir: join(root, 'quick-out'), task: 'sample', region: 'brain', seed: 0, timeoutSeconds: 3e6 });
    expect(outcome.timedOut).toBe(false);
    expect(outcome.exitCode).toBe(0);
  });

  it('does not wait for a process that left the group but holds the output pipes', async () => {
    const pidFile = join(root, 'escaped.pid');
    const outcome = await runEntry(parseEntry(`escape=setsid sleep 30 & echo $! > '${pidFile}'; echo started # {in}`, 'command'), {
      inDir: root, outDir: join(root, 'escape-out'), task: 'sample', region: 'brain', seed: 0, timeoutSeconds: 60,
    });
    expect(outcome.exitCode).toBe(0);
    expect(outcome.seconds).toBeLessThan(30);
    process.kill(Number(await readFile(pidFile, 'utf8')), 'SIGKILL');
  });
});

describe('memory', () => {
  it('stays flat in the number of cases: evaluating 6 cases holds about one case of voxels, not six', async () => {
    // 192³: one case (float32 label + prediction as read) is 57 MB, well above V8's slack before it collects.
    const size = 192;
    const dir = await freshDir('memory');
    const labels = await freshDir('memory', 'toy_label', 'pixel');
    const pred = await freshDir('memory', 'pred');
    const n = size ** 3;
    const label = new Float32Array(n);
    for (let i = 0; i < n; i += 97) label[i] = 1;
    await writeNifti(join(labels, 'c0.nii.gz'), makeVolume([size, size, size], label), { dtype: 'uint8' });
    await writeNifti(join(pred, 'c0.nii.gz'), makeVolume([size, size, size], Float32Array.from(label, (l, i) => 0.3 * l + ((i * 7919) % 1000) / 1500)));
    const perCaseBytes = 2 * 4 * n;
    const probe = [
      `import { evaluate } from ${JSON.stringify(join(ROOT, 'dist', 'eval', 'harness', 'evaluate.js'))};`,
      'let peak = 0;',
      'const t = setInterval(() => { peak = Math.max(peak, process.memoryUsage().arrayBuffers); }, 1);',
      `const r = await evaluate({ labels: ${JSON.stringify(dir)}, pred: ${JSON.stringify(pred)}, mode: 'pixel' });`,
      'clearInterval(t); peak = Math.max(peak, process.memoryUsage().arrayBuffers);',
      'console.log(JSON.stringify({ cases: r.cases, ap: r.ap, peak }));',
    ].join('\n');
    const measure = (): { cases: number; ap: number; peak: number } =>
      JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8' }));
    const one = measure();
    for (let k = 1; k < 6; k++) {
      await copyFile(join(labels, 'c0.nii.gz'), join(labels, `c${k}.nii.gz`));
      await copyFile(join(pred, 'c0.nii.gz'), join(pred, `c${k}.nii.gz`));
    }
    const six = measure();
    expect(one.cases).toBe(1);
    expect(six.cases).toBe(6);
    expect(six.ap).toBeCloseTo(one.ap, 12);
    expect(one.peak).toBeGreaterThanOrEqual(perCaseBytes * 0.9);
    // Keeping each case's voxels would add 5 × 57 MB; allow two and a half cases of slack for the collector.
    expect(six.peak - one.peak).toBeLessThan(2.5 * perCaseBytes);
  });
});
