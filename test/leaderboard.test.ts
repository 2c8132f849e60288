/**
 * The local leaderboard (eval/harness/leaderboard.ts and `moodlsr leaderboard`): predictors run as child processes
 * under a timeout, scored exactly like `evaluate`, stored scores gate regressions. Tiny self-made toy set, z-score
 * weights fitted here.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fitZScore, saveZScore } from '../src/methods/zscore/model.js';
import { createRng } from '../src/engine/random.js';
import { writeNifti } from '../src/io/nifti.js';
import { makeVolume, type Shape3 } from '../src/volume/volume.js';
import { evaluate } from '../eval/harness/evaluate.js';
import { plannedRuns, predictionDir, runLeaderboard, type Leaderboard, type LeaderboardScores } from '../eval/harness/leaderboard.js';
import { parseEntry } from '../eval/harness/runner.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const SHAPE: Shape3 = [16, 16, 12];

let root: string;
let set: string;
let weights: string;

/** Head-like volume; an anomalous one has a dark cube, whose voxels are its pixel label. */
function makeCase(seed: string, anomalous: boolean): { image: Float32Array; label: Float32Array } {
  const rng = createRng(seed);
  const [nx, ny, nz] = SHAPE;
  const image = new Float32Array(nx * ny * nz);
  const label = new Float32Array(image.length);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const r = ((x - nx / 2) / (0.42 * nx)) ** 2 + ((y - ny / 2) / (0.42 * ny)) ** 2 + ((z - nz / 2) / (0.42 * nz)) ** 2;
        if (r > 1) continue;
        const i = x + nx * (y + ny * z);
        image[i] = Math.min(1, Math.max(0, 0.55 + 0.2 * (1 - r) + 0.03 * rng.normal()));
        if (anomalous && Math.abs(x - 8) < 3 && Math.abs(y - 7) < 3 && Math.abs(z - 6) < 3) {
          image[i] = 0.05;
          label[i] = 1;
        }
      }
    }
  }
  return { image, label };
}

/** A toy-format set: toy/, toy_label/pixel, toy_label/sample, manifest.json. */
async function buildSet(dir: string): Promise<void> {
  for (const sub of ['toy', join('toy_label', 'pixel'), join('toy_label', 'sample')]) await mkdir(join(dir, sub), { recursive: true });
  const kinds = ['normal', 'uniform', 'normal', 'uniform', 'normal', 'noise'];
  const cases = [];
  for (const [i, kind] of kinds.entries()) {
    const name = `toy_${i}.nii.gz`;
    const { image, label } = makeCase(`case-${i}`, kind !== 'normal');
    await writeNifti(join(dir, 'toy', name), makeVolume(SHAPE, image));
    await writeNifti(join(dir, 'toy_label', 'pixel', name), makeVolume(SHAPE, label), { dtype: 'uint8' });
    await writeFile(join(dir, 'toy_label', 'sample', `${name}.txt`), kind === 'normal' ? '0' : '1');
    cases.push({ name, kind });
  }
  await writeFile(join(dir, 'manifest.json'), JSON.stringify({ format: 'moodlsr-toyset/1', seed: 1, size: 16, sources: ['synthetic'], cases }));
}

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  root = await mkdtemp(join(tmpdir(), 'moodlsr-leaderboard-'));
  set = join(root, 'set');
  await buildSet(set);
  const normals = join(root, 'normals');
  await mkdir(normals);
  const files: string[] = [];
  for (let i = 0; i < 4; i++) {
    files.push(join(normals, `n${i}.nii.gz`));
    await writeNifti(files[i]!, makeVolume(SHAPE, makeCase(`normal-${i}`, false).image));
  }
  weights = join(root, 'weights with space');
  await saveZScore(weights, await fitZScore({ files, holdout: 1, seed: 0, config: { grid: 8 }, log: () => undefined }));
  // a foreign predictor: the image itself as the pixel map, 0.5 as every sample score
  await writeFile(
    join(root, 'identity.sh'),
    [
      'task=$1; in=$2; out=$3',
      'for f in "$in"/*.nii.gz; do',
      '  n=$(basename "$f")',
      '  if [ "$task" = pixel ]; then cp "$f" "$out/$n"; else echo 0.5 > "$out/$n.txt"; fi',
      'done',
    ].join('\n'),
  );
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('runLeaderboard', () => {
  let board: Leaderboard;
  const logs: string[] = [];
  let work: string;

  beforeAll(async () => {
    work = join(root, 'work');
    board = await runLeaderboard({
      setDir: set,
      entries: [
        parseEntry(`zscore@${weights}`, 'method'),
        parseEntry(`identity=sh '${join(root, 'identity.sh')}' {task} {in} {out}`, 'command'),
      ],
      tasks: ['sample', 'pixel'],
      region: 'brain',
      workDir: work,
      timeoutSeconds: 120,
      seed: 0,
      bootstrap: 20,
      overlayCases: 2,
      createdAt: '2024-01-01T00:00:00Z',
      log: (l) => logs.push(l),
    });
  });

  it('runs every entry for every task and scores each exactly as evaluate() does', async () => {
    expect(board.entries.map((e) => e.name)).toEqual(['zscore', 'identity']);
    for (const entry of board.entries) {
      for (const task of ['sample', 'pixel'] as const) {
        expect(entry.runs[task]!.exitCode, `${entry.name} ${task}`).toBe(0);
        const direct = await evaluate({ labels: set, pred: predictionDir(work, entry.name, task), mode: task });
        expect(entry.results[task]!.ap).toBe(direct.ap);
        expect(entry.results[task]!.auroc).toBe(direct.auroc);
        expect(entry.results[task]!.missing).toEqual([]);
        expect(board.scores.methods[entry.name]![task]!.ap).toBe(direct.ap);
      }
    }
    // the z-score baseline separates the dark cubes; a constant sample score gives AP = prevalence
    expect(board.scores.methods.zscore!.pixel!.ap).toBeGreaterThan(board.scores.methods.identity!.pixel!.ap);
    expect(board.scores.methods.identity!.sample!.ap).toBeCloseTo(0.5, 12);
    expect(Object.keys(board.scores.methods.zscore!.sample!.per_kind).sort()).toEqual(['noise', 'uniform']);
  });

  it('a method entry scores both tasks in one child run; a command entry runs once per task', () => {
    expect(logs.filter((l) => / running/.test(l))).toEqual([
      'zscore sample+pixel: running (one predict run scores both tasks)',
      'identity sample: running',
      'identity pixel: running',
    ]);
    const [z, identity] = board.entries;
    expect(z!.runs.sample).toBe(z!.runs.pixel);
    expect(z!.runs.sample!.sharedRun).toBe(true);
    expect(logs.some((l) => /^zscore sample\+pixel: exit 0, [\d.]+ s for both tasks \([\d.]+ s per case\)$/.test(l))).toBe(true);
    expect(identity!.runs.sample).not.toBe(identity!.runs.pixel);
    expect(identity!.runs.sample!.sharedRun).toBe(false);
    // the shared run's time counts once; the command's two runs are summed
    const [zRow, identityRow] = board.report.methods;
    expect(zRow!.secondsPerCase).toBeCloseTo(z!.runs.sample!.seconds / 6, 12);
    expect(zRow!.sharedRun).toBe(true);
    expect(identityRow!.secondsPerCase).toBeCloseTo((identity!.runs.sample!.seconds + identity!.runs.pixel!.seconds) / 6, 12);
    expect(identityRow!.sharedRun).toBeUndefined();
    expect(board.report.notes!.some((n) => /sharedRun/.test(n))).toBe(true);
  });

  it('the shared run gives the same metrics as one run per task', async () => {
    const perTask: Record<string, unknown> = {};
    for (const task of ['sample', 'pixel'] as const) {
      const single = await runLeaderboard({
        setDir: set,
        entries: [parseEntry(`zscore@${weights}`, 'method')],
        tasks: [task],
        region: 'brain',
        workDir: join(root, `single-${task}`),
        timeoutSeconds: 120,
        seed: 0,
        bootstrap: 20,
        overlayCases: 0,
        createdAt: 'x',
        log: () => undefined,
      });
      expect(single.entries[0]!.runs[task]!.sharedRun).toBe(false);
      perTask[task] = single.scores.methods.zscore![task];
      const { ci, per_case } = single.entries[0]!.results[task]!;
      expect(board.entries[0]!.results[task]!.ci).toEqual(ci);
      expect(board.entries[0]!.results[task]!.per_case).toEqual(per_case);
    }
    expect(JSON.stringify(board.scores.methods.zscore)).toBe(JSON.stringify(perTask));
  });

  it('a failing shared run fails both tasks, with the reason', async () => {
    const failLogs: string[] = [];
    const failed = await runLeaderboard({
      setDir: set,
      entries: [parseEntry(`zscore@${join(root, 'no-such-weights')}`, 'method')],
      tasks: ['sample', 'pixel'],
      region: 'brain',
      workDir: join(root, 'shared-fail'),
      timeoutSeconds: 60,
      seed: 0,
      bootstrap: 0,
      overlayCases: 0,
      createdAt: 'x',
      log: (l) => failLogs.push(l),
    });
    const entry = failed.entries[0]!;
    for (const task of ['sample', 'pixel'] as const) {
      expect(entry.failures[task]).toMatch(/^exit 1 \(the one run of both tasks\): .*no-such-weights/);
      expect(entry.results[task]!.missing).toHaveLength(6);
    }
    expect(failLogs.filter((l) => / running/.test(l))).toHaveLength(1);
    expect(failed.report.methods[0]!.failed).toEqual([`sample: ${entry.failures.sample}`, `pixel: ${entry.failures.pixel}`]);
  });

  it('the z-score entry wrote MOOD outputs for all six cases', async () => {
    expect((await readdir(predictionDir(work, 'zscore', 'pixel'))).sort()).toHaveLength(6);
    expect((await readdir(predictionDir(work, 'zscore', 'sample'))).every((n) => n.endsWith('.nii.gz.txt'))).toBe(true);
  });

  it('a hanging entry is stopped by the timeout and scored as all missing', async () => {
    const hangLogs: string[] = [];
    const hung = await runLeaderboard({
      setDir: set,
      entries: [parseEntry('hang=sleep 100 # {in} {out}', 'command')],
      tasks: ['sample', 'pixel'],
      region: 'brain',
      workDir: join(root, 'hang'),
      timeoutSeconds: 1,
      seed: 0,
      bootstrap: 0,
      overlayCases: 1,
      createdAt: 'x',
      log: (l) => hangLogs.push(l),
    });
    const hang = hung.entries[0]!;
    expect(hang.runs.sample!.timedOut).toBe(true);
    expect(hang.runs.pixel!.timedOut).toBe(true);
    expect(hang.results.sample!.missing).toHaveLength(6);
    expect(hang.results.pixel!.ap).toBeCloseTo(hang.results.pixel!.prevalence, 12);
    expect(hangLogs.some((l) => /hang sample: TIMED OUT after 1 s/.test(l))).toBe(true);
    expect(hung.report.methods[0]!.missing).toHaveLength(12);
  });

  it('the report holds one method row per entry, with overlays for the chosen cases', () => {
    expect(board.report.methods.map((m) => m.name)).toEqual(['zscore', 'identity']);
    const z = board.report.methods[0]!;
    expect(z.cases ?? []).toHaveLength(2);
    expect((z.cases ?? []).every((c) => c.slice !== undefined)).toBe(true);
    expect(z.sample!.ci).toBeDefined();
  });

  it('a NaN prediction voids that entry and task only; the other entries are still scored', async () => {
    const nanLogs: string[] = [];
    const nanBoard = await runLeaderboard({
      setDir: set,
      entries: [
        parseEntry(`nan=for f in {in}/*.nii.gz; do echo nan > {out}/$(basename "$f").txt; done`, 'command'),
        parseEntry(`identity=sh '${join(root, 'identity.sh')}' {task} {in} {out}`, 'command'),
      ],
      tasks: ['sample'],
      region: 'brain',
      workDir: join(root, 'nan'),
      timeoutSeconds: 60,
      seed: 0,
      bootstrap: 0,
      overlayCases: 0,
      createdAt: 'x',
      log: (l) => nanLogs.push(l),
    });
    const [nan, identity] = nanBoard.entries;
    expect(nan!.results.sample).toBeUndefined();
    expect(nan!.voided.sample).toMatch(/toy_0\.nii\.gz\.txt: the sample score is NaN/);
    expect(identity!.results.sample!.ap).toBeCloseTo(0.5, 12);
    expect(nanBoard.report.methods[0]!.bad[0]).toMatch(/evaluation void/);
    expect(nanLogs.some((l) => /nan sample: evaluation VOID/.test(l))).toBe(true);
  });

  it('plans one shared run only for a method that scores both tasks, asked for both', () => {
    const both = ['sample', 'pixel'] as const;
    expect(plannedRuns(parseEntry('zscore', 'method'), both)).toEqual(['both']);
    expect(plannedRuns(parseEntry('zscore', 'method'), ['pixel'])).toEqual(['pixel']);
    // a sample-only method keeps one run per task: its sample run is still scored, its pixel run fails alone
    expect(plannedRuns(parseEntry('vae-elbo', 'method'), both)).toEqual(['sample', 'pixel']);
    expect(plannedRuns(parseEntry('bogus', 'method'), both)).toEqual(['sample', 'pixel']);
    expect(plannedRuns(parseEntry('x=sh run.sh', 'command'), both)).toEqual(['sample', 'pixel']);
  });

  it('refuses entries whose names share a prediction folder', async () => {
    await expect(
      runLeaderboard({
        setDir: set,
        entries: [parseEntry('a b=true', 'command'), parseEntry('a_b=true', 'command')],
        tasks: ['sample'],
        region: 'brain',
        workDir: join(root, 'clash'),
        timeoutSeconds: 5,
        seed: 0,
        bootstrap: 0,
        overlayCases: 0,
        createdAt: 'x',
        log: () => undefined,
      }),
    ).rejects.toThrow(/share a prediction folder/);
  });
});

describe('moodlsr leaderboard', () => {
  it('writes the report and scores.json; --baseline passes on the same scores and fails naming a fallen metric', async () => {
    const out = join(root, 'cli out');
    const args = ['leaderboard', '--set', set, '--method', `zscore@${weights}`, '--tasks', 'sample', '--out', out, '--bootstrap', '0', '--overlays', '1'];
    const first = cli(args);
    expect(first.status, first.stderr).toBe(0);
    for (const f of ['report.json', 'report.md', 'report.html', 'scores.json']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(first.stdout).toMatch(/zscore/);
    const scores = JSON.parse(await readFile(join(out, 'scores.json'), 'utf8')) as LeaderboardScores;
    const ap = scores.methods.zscore!.sample!.ap;
    expect(ap).toBeGreaterThan(0);

    const same = join(root, 'baseline-same.json');
    await writeFile(same, JSON.stringify(scores));
    const pass = cli([...args, '--baseline', same]);
    expect(pass.status, pass.stderr).toBe(0);
    expect(pass.stderr).toMatch(/no metric fell/);

    const higher = join(root, 'baseline-higher.json');
    await writeFile(higher, JSON.stringify({ ...scores, methods: { zscore: { sample: { ...scores.methods.zscore!.sample!, ap: ap + 0.05 } } } }));
    const fail = cli([...args, '--baseline', higher, '--tolerance', '0.01']);
    expect(fail.status).toBe(3);
    expect(fail.stderr).toMatch(/REGRESSION/);
    expect(fail.stderr).toMatch(/methods\.zscore\.sample\.ap: /);
    expect(fail.stderr).not.toMatch(/methods\.zscore\.sample\.auroc/);
  });

  it('marks failed entries FAILED with the reason in report.json, report.md and report.html, and exits 2', async () => {
    const common = ['leaderboard', '--set', set, '--tasks', 'sample', '--bootstrap', '0', '--overlays', '0'];
    const out = join(root, 'failing out');
    // an unknown method is refused before anything runs, naming the known ones
    const unknown = cli([...common, '--out', join(root, 'unknown out'), '--method', `zscore@${weights}`, '--method', 'bogus']);
    expect(unknown.status, unknown.stderr).toBe(1);
    expect(unknown.stderr).toMatch(/unknown --method "bogus" \(known: zscore, /);
    const r = cli([...common, '--out', out, '--method', `zscore@${weights}`, '--method', `lsr@${join(root, 'no-such-weights')}`]);
    expect(r.status, r.stderr).toBe(2);
    // alone, so that the 1 s limit cannot catch a slow machine's zscore run
    const slowOut = join(root, 'slow out');
    const slow = cli([...common, '--out', slowOut, '--timeout', '1', '--command', 'slow=sleep 100 # {in} {out}']);
    expect(slow.status, slow.stderr).toBe(2);
    const expected: Record<string, RegExp> = {
      zscore: /^$/,
      lsr: /^sample: exit 1: .*no-such-weights.*no such file or folder/,
      slow: /^sample: timed out after 1 s and was killed$/,
    };
    for (const [dir, names] of [[out, ['zscore', 'lsr']], [slowOut, ['slow']]] as const) {
      const json = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as { methods: { name: string; status: string; failed: string[] }[] };
      expect(json.methods.map((m) => m.name)).toEqual(names);
      for (const m of json.methods) {
        expect(m.status, `${m.name}: ${m.failed.join('; ')}`).toBe(m.name === 'zscore' ? 'ok' : 'failed');
        expect(m.failed.join('\n'), m.name).toMatch(expected[m.name]!);
      }
    }
    for (const [dir, name] of [[out, 'lsr'], [slowOut, 'slow']] as const) {
      const md = await readFile(join(dir, 'report.md'), 'utf8');
      const html = await readFile(join(dir, 'report.html'), 'utf8');
      expect(md).toMatch(new RegExp(`\\| ${name} \\*\\*FAILED\\*\\* \\|`));
      expect(md).toMatch(new RegExp(`- \\*\\*${name}\\*\\* FAILED: sample: `));
      expect(html).toMatch(new RegExp(`${name} <span class="badge failed"`));
      expect(html).toMatch(new RegExp(`${name}: FAILED</summary><ul class="names"><li>sample: `));
    }
    expect(await readFile(join(out, 'report.md'), 'utf8')).not.toMatch(/zscore \*\*FAILED/);
    expect(await readFile(join(slowOut, 'report.html'), 'utf8')).toContain('timed out after 1 s and was killed');
    expect(r.stderr).toMatch(/leaderboard: lsr sample FAILED: exit 1/);
  });

  it('rejects a folder that is not a toy-format set, and an unknown task', () => {
    const r = cli(['leaderboard', '--set', root, '--method', 'zscore', '--out', join(root, 'x')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/not a toy-format set/);
    const t = cli(['leaderboard', '--set', set, '--method', 'zscore', '--tasks', 'sample,pixels', '--out', join(root, 'y')]);
    expect(t.status).toBe(1);
    expect(t.stderr).toMatch(/--tasks/);
  });
});
