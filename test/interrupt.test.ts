/**
 * Interrupted runs leave nothing behind: `moodlsr predict` and the MOOD entry scripts in child processes,
 * stopped with real signals (SIGINT, SIGTERM, SIGKILL) while a case is in progress. The case in progress is
 * a symbolic link to a FIFO nobody writes to, so the run is reliably stuck in it, with its scratch folder
 * in OUT and the first case already written, when the signal arrives.
 * Also: an output folder on /proc is refused at once (Node's recursive mkdir spins forever there).
 */
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fitZScore, saveZScore } from '../src/methods/zscore/model.js';
import { createRng } from '../src/engine/random.js';
import { writeNifti } from '../src/io/nifti.js';
import { removeStaleScratch, SCRATCH_PREFIX, STALE_AFTER_MS } from '../src/mood/scratch.js';
import { makeVolume, type Shape3 } from '../src/volume/volume.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const SHAPE: Shape3 = [16, 14, 12];
/** Generous limits for a loaded machine; a run that ignores its signal hits them and fails the test. */
const WAIT_MS = 60_000;

let root: string;
let weights: string;
let stuckIn: string;

function head(seed: string): Float32Array {
  const rng = createRng(seed);
  const [nx, ny, nz] = SHAPE;
  const data = new Float32Array(nx * ny * nz);
  for (let i = 0; i < data.length; i++) data[i] = 0.5 + 0.05 * rng.normal();
  return data;
}

interface Running {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  stderr(): string;
  /** Resolves once stderr matches `pattern`; rejects if the child ends first or after WAIT_MS. */
  waitFor(pattern: RegExp): Promise<void>;
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function start(command: string, args: readonly string[], options: { detached?: boolean; env?: NodeJS.ProcessEnv } = {}): Running {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false, env: options.env ?? process.env });
  let err = '';
  const listeners = new Set<() => void>();
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
    for (const l of listeners) l();
  });
  child.stdout.resume();
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((res) => {
    child.on('close', (code, signal) => res({ code, signal, stderr: err }));
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 4 * WAIT_MS);
  void done.then(() => clearTimeout(killer));
  return {
    child,
    stderr: () => err,
    done,
    waitFor: (pattern) =>
      new Promise<void>((res, rej) => {
        const check = (): void => {
          if (pattern.test(err)) {
            listeners.delete(check);
            clearTimeout(timer);
            res();
          }
        };
        const timer = setTimeout(() => rej(new Error(`no ${pattern} in stderr after ${WAIT_MS} ms:\n${err}`)), WAIT_MS);
        listeners.add(check);
        void done.then(() => rej(new Error(`the child ended before ${pattern}:\n${err}`)));
        check();
      }),
  };
}

async function freshDir(name: string): Promise<string> {
  const dir = join(root, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Everything in OUT but the outputs: scratch folders (predict's and the entry script's) and temp files. */
async function leftovers(out: string): Promise<string[]> {
  return (await readdir(out)).filter((n) => n.startsWith('.') || n.endsWith('.tmp'));
}

/** A run stopped by `signal` either died of it or exited 128 + its number (the entry scripts). */
function stoppedBy(result: { code: number | null; signal: NodeJS.Signals | null }, signal: 'SIGINT' | 'SIGTERM'): boolean {
  return result.signal === signal || result.code === (signal === 'SIGINT' ? 130 : 143);
}

function predictArgs(out: string, inDir = stuckIn): string[] {
  return [CLI, 'predict', '--task', 'pixel', '--region', 'brain', '-i', inDir, '-o', out, '--weights', weights];
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  root = await mkdtemp(join(tmpdir(), 'moodlsr-interrupt-'));
  await chmod(root, 0o755);
  const normals = await freshDir('normals');
  const files: string[] = [];
  for (let i = 0; i < 3; i++) {
    files.push(join(normals, `n${i}.nii.gz`));
    await writeNifti(files[i]!, makeVolume(SHAPE, head(`n${i}`)));
  }
  weights = join(root, 'weights');
  await saveZScore(weights, await fitZScore({ files, holdout: 1, seed: 0, config: { grid: 8 }, log: () => undefined }));
  stuckIn = await freshDir('stuck-in');
  await writeNifti(join(stuckIn, 'a.nii.gz'), makeVolume(SHAPE, head('a')));
  const fifo = join(root, 'never-written.fifo');
  expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
  await symlink(fifo, join(stuckIn, 'b.nii.gz'));
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('moodlsr predict, interrupted', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} during a case: stops, removes its scratch folder, keeps the finished case`, async () => {
      const out = await freshDir(`out-${signal}`);
      const run = start(process.execPath, predictArgs(out));
      await run.waitFor(/\[1\/2\] a\.nii\.gz: pixel written/);
      expect((await leftovers(out)).filter((n) => n.startsWith(SCRATCH_PREFIX))).toHaveLength(1);
      run.child.kill(signal);
      const result = await run.done;
      expect(stoppedBy(result, signal), result.stderr).toBe(true);
      expect(result.stderr).toMatch(new RegExp(`${signal}: stopping after 1 of 2 cases; removing the temporary files`));
      expect(await readdir(out)).toEqual(['a.nii.gz']);
    });
  }

  it('after SIGKILL (no cleanup possible) the next run removes the dead run’s scratch folder', async () => {
    const out = await freshDir('out-kill');
    const run = start(process.execPath, predictArgs(out));
    await run.waitFor(/\[1\/2\] a\.nii\.gz: pixel written/);
    run.child.kill('SIGKILL');
    await run.done;
    const dead = await leftovers(out);
    expect(dead).toHaveLength(1);
    const goodIn = await freshDir('good-in');
    await writeNifti(join(goodIn, 'c.nii.gz'), makeVolume(SHAPE, head('c')));
    const next = start(process.execPath, predictArgs(out, goodIn));
    const result = await next.done;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`removed 1 scratch folder of interrupted runs: ${dead[0]}`);
    expect(await leftovers(out)).toEqual([]);
    expect((await readdir(out)).sort()).toEqual(['a.nii.gz', 'c.nii.gz']);
  });

  it('an output folder on /proc is refused at once, naming the file system', async () => {
    if (!existsSync('/proc/self')) return;
    const result = await start(process.execPath, predictArgs('/proc/moodout')).done;
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot use output folder \/proc\/moodout: lies on the proc file system/);
  });
});

describe('stale scratch folders', () => {
  it('removes those of dead processes on this host and silent ones; keeps live and recent foreign ones', async () => {
    const out = await freshDir('stale');
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(gone.stdout);
    const make = async (name: string, owner: object | null, ageMs = 0): Promise<void> => {
      const dir = join(out, `${SCRATCH_PREFIX}${name}`);
      await mkdir(dir);
      if (owner) await writeFile(join(dir, 'owner.json'), JSON.stringify(owner));
      const when = new Date(Date.now() - ageMs);
      if (owner) await utimes(join(dir, 'owner.json'), when, when);
      await utimes(dir, when, when);
    };
    await make('dead', { host: hostname(), pid: deadPid });
    await make('live', { host: hostname(), pid: process.ppid });
    await make('other-host', { host: `not-${hostname()}`, pid: deadPid });
    await make('other-host-silent', { host: `not-${hostname()}`, pid: deadPid }, STALE_AFTER_MS + 60_000);
    await make('no-owner', null);
    await make('no-owner-old', null, STALE_AFTER_MS + 60_000);
    const removed = await removeStaleScratch(out);
    expect(removed.sort()).toEqual([`${SCRATCH_PREFIX}dead`, `${SCRATCH_PREFIX}no-owner-old`, `${SCRATCH_PREFIX}other-host-silent`]);
    expect((await readdir(out)).sort()).toEqual([`${SCRATCH_PREFIX}live`, `${SCRATCH_PREFIX}no-owner`, `${SCRATCH_PREFIX}other-host`]);
  });
});

describe('MOOD entry scripts, interrupted', () => {
  const script = join(ROOT, 'scripts', 'run_pixel_brain.sh');
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, MOODLSR_WEIGHTS: weights, MOODLSR_METHOD: 'zscore' });

  it('SIGINT to the process group (Ctrl-C): 130, nothing left behind', async () => {
    const out = await freshDir('entry-int');
    const run = start('sh', [script, stuckIn, out], { detached: true, env: env() });
    await run.waitFor(/\[1\/2\] a\.nii\.gz: pixel written/);
    expect(await leftovers(out)).toHaveLength(2); // the script's .tmp-HOST-PID-N and predict's scratch
    process.kill(-run.child.pid!, 'SIGINT');
    const result = await run.done;
    expect(result.code, result.stderr).toBe(130);
    expect(await readdir(out)).toEqual(['a.nii.gz']);
  });

  it('SIGTERM to the script alone (docker stop) is forwarded: 143 at once, nothing left behind', async () => {
    const out = await freshDir('entry-term');
    const run = start('sh', [script, stuckIn, out], { env: env() });
    await run.waitFor(/\[1\/2\] a\.nii\.gz: pixel written/);
    run.child.kill('SIGTERM');
    const result = await run.done;
    expect(result.code, result.stderr).toBe(143);
    expect(result.stderr).toMatch(/SIGTERM: stopping after 1 of 2 cases/);
    expect(await readdir(out)).toEqual(['a.nii.gz']);
  });
});
