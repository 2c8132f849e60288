/**
 * What `docker run --read-only -v IN:/mnt/data:ro -v OUT:/mnt/pred IMAGE sh /workspace/run_X.sh /mnt/data /mnt/pred`
 * does to the entry scripts, emulated without a Docker engine: a folder laid out like /workspace (the four scripts
 * next to the package and its weights), `sh` (dash), HOME not writable, no TMPDIR, an output folder with spaces, a
 * read-only input folder and — where mount namespaces are available — a read-only root file system. Plus a lint
 * of the Dockerfile and .dockerignore.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
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
const SCRIPTS = ['run_sample_brain.sh', 'run_pixel_brain.sh', 'run_sample_abdom.sh', 'run_pixel_abdom.sh'];
/** The shared body the four entry scripts exec. */
const ENTRY_BODY = 'mood-entry.sh';
const SHAPE: Shape3 = [16, 14, 12];
const NOBODY = 65534;
const IS_ROOT = process.getuid?.() === 0;

let root: string;
let workspace: string;
let inDir: string;
let shimDir: string;

function head(seed: string): Float32Array {
  const rng = createRng(seed);
  const [nx, ny, nz] = SHAPE;
  const data = new Float32Array(nx * ny * nz);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const r = ((x - nx / 2) / (0.42 * nx)) ** 2 + ((y - ny / 2) / (0.42 * ny)) ** 2 + ((z - nz / 2) / (0.42 * nz)) ** 2;
        if (r <= 1) data[x + nx * (y + ny * z)] = Math.min(1, Math.max(0, 0.6 + 0.15 * (1 - r) + 0.03 * rng.normal()));
      }
    }
  }
  return data;
}

/** The environment of a container: a PATH, a HOME nobody can write, no TMPDIR. */
function containerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', ...extra };
}

function sh(args: string[], options: SpawnSyncOptions = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('sh', args, { encoding: 'utf8', env: containerEnv(), ...options });
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function freshDir(...parts: string[]): Promise<string> {
  const dir = join(root, ...parts);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o777);
  return dir;
}

/** Entries a run must not leave in OUT: its scratch folder, temp files of atomic writes. */
async function leftovers(out: string): Promise<string[]> {
  return (await readdir(out)).filter((n) => n.startsWith('.') || n.endsWith('.tmp'));
}

function canUseMountNamespaces(): boolean {
  if (!IS_ROOT) return false;
  return spawnSync('unshare', ['-m', 'sh', '-c', `mount --bind ${JSON.stringify(tmpdir())} ${JSON.stringify(tmpdir())}`]).status === 0;
}

beforeAll(async () => {
  const cli = join(ROOT, 'dist', 'src', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" first`);
  root = await mkdtemp(join(tmpdir(), 'moodlsr-docker-'));
  await chmod(root, 0o755);
  // /workspace as the Dockerfile lays it out: scripts, package.json, dist/, node_modules/, weights/<region>/
  workspace = join(root, 'workspace');
  await mkdir(workspace);
  for (const s of [...SCRIPTS, ENTRY_BODY]) await copyFile(join(ROOT, 'scripts', s), join(workspace, s));
  await copyFile(join(ROOT, 'package.json'), join(workspace, 'package.json'));
  await cp(join(ROOT, 'dist'), join(workspace, 'dist'), { recursive: true });
  await symlink(join(ROOT, 'node_modules'), join(workspace, 'node_modules'));
  const normals = join(root, 'normals');
  await mkdir(normals);
  const files: string[] = [];
  for (let i = 0; i < 4; i++) {
    files.push(join(normals, `n${i}.nii.gz`));
    await writeNifti(files[i]!, makeVolume(SHAPE, head(`n${i}`)));
  }
  const model = await fitZScore({ files, holdout: 1, seed: 0, config: { grid: 8 }, log: () => undefined });
  await saveZScore(join(workspace, 'weights', 'brain'), model);
  await saveZScore(join(workspace, 'weights', 'abdom'), model);
  inDir = join(root, 'mnt data');
  await mkdir(inDir);
  for (let i = 0; i < 3; i++) await writeNifti(join(inDir, `toy_${i}.nii.gz`), makeVolume(SHAPE, head(`c${i}`)));
  await writeFile(join(inDir, 'readme.txt'), 'not a case');
  await chmod(inDir, 0o555);
  // a `node` that records how the script called it, the environment it saw, and exits with $SHIM_STATUS
  shimDir = join(root, 'shim');
  await mkdir(shimDir);
  await writeFile(
    join(shimDir, 'node'),
    [
      '#!/bin/sh',
      'printf "%s\\n" "$@" > "$SHIM_LOG"',
      'if [ -d "$HOME" ] && [ -w "$TMPDIR" ]; then echo "home=$HOME" >> "$SHIM_LOG"; echo "tmp=$TMPDIR" >> "$SHIM_LOG"; fi',
      'exit "${SHIM_STATUS:-0}"',
    ].join('\n'),
  );
  await chmod(join(shimDir, 'node'), 0o755);
});

afterAll(async () => {
  if (!root) return;
  await chmod(inDir, 0o755).catch(() => undefined);
  await rm(root, { recursive: true, force: true });
});

describe('Dockerfile and .dockerignore', () => {
  let dockerfile: string;
  let instructions: string[];
  beforeAll(async () => {
    dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    // one instruction per logical line: comments dropped, continuation lines joined
    instructions = dockerfile
      .split('\n')
      .filter((l) => !/^\s*#/.test(l))
      .join('\n')
      .replace(/\\\n/g, ' ')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
  });

  it('bases the image on ARG BASE (its build stage on BUILD_BASE), by default the CUDA 11.2 + cuDNN 8 runtime, and sets no ENTRYPOINT', () => {
    const firstFrom = instructions.findIndex((l) => /^FROM\s/i.test(l));
    expect(instructions.slice(0, firstFrom)).toEqual(['ARG BASE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04', 'ARG BUILD_BASE=${BASE}']);
    const froms = instructions.filter((l) => /^FROM\s/i.test(l));
    expect(froms).toEqual(['FROM ${BUILD_BASE} AS build', 'FROM ${BASE}']);
    expect(instructions.filter((l) => /^ENTRYPOINT\b/i.test(l))).toEqual([]);
    expect(instructions.filter((l) => /^CMD\b/i.test(l))).toEqual([]);
  });

  it('installs Node 20, npm ci with tfjs-node-gpu, fails unless it loads, builds and prunes dev dependencies', () => {
    const runs = instructions.filter((l) => /^RUN\s/i.test(l)).join('\n');
    expect(dockerfile).toMatch(/NODE_VERSION=20\.\d+\.\d+/);
    // the GPU build (the default) fails unless tfjs-node-gpu loads; GPU=0 (the offline CPU image) leaves it out
    expect(instructions).toContain('ARG GPU=1');
    expect(instructions.join('\n')).toMatch(/if \[ "\$GPU" = 1 \]; then\s+node -e "[^"]*require\('@tensorflow\/tfjs-node-gpu'\)/);
    expect(runs).toMatch(/npm ci\b/);
    expect(runs).toMatch(/npm rebuild @tensorflow\/tfjs-node-gpu/);
    expect(runs).toMatch(/node -e "[^"]*require\('@tensorflow\/tfjs-node-gpu'\)/);
    expect(runs).toMatch(/npm run build/);
    expect(runs).toMatch(/npm prune --omit=dev/);
    const order = ['npm ci', "require('@tensorflow/tfjs-node-gpu')", 'npm run build', 'npm prune'].map((s) => runs.indexOf(s));
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('puts the four scripts in /workspace (executable), the weights in /workspace/weights, and creates /mnt/data and /mnt/pred', () => {
    const copies = instructions.filter((l) => /^COPY\s/i.test(l));
    for (const s of [...SCRIPTS, ENTRY_BODY]) expect(copies.some((c) => c.includes(`scripts/${s}`) && /\/workspace\/?$/.test(c)), s).toBe(true);
    expect(copies.some((c) => /^COPY weights \/workspace\/weights$/.test(c))).toBe(true);
    const runs = instructions.filter((l) => /^RUN\s/i.test(l)).join('\n');
    expect(runs).toMatch(/chmod \+x \/workspace\/run_\*\.sh/);
    expect(runs).toMatch(/mkdir -p \/mnt\/data \/mnt\/pred/);
  });

  it('every COPY source exists in the checkout and is not excluded by .dockerignore', async () => {
    const ignored = (await readFile(join(ROOT, '.dockerignore'), 'utf8'))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const must of ['node_modules', 'data', 'dist', '.git']) expect(ignored, must).toContain(must);
    const sources = instructions
      .filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l))
      .flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(sources.length).toBeGreaterThan(5);
    for (const s of sources) {
      expect(existsSync(join(ROOT, s)), s).toBe(true);
      expect(ignored.some((pattern) => s === pattern || s.startsWith(`${pattern}/`)), s).toBe(false);
    }
  });
});

describe('the entry scripts as files', () => {
  it('are POSIX sh that dash parses, set -eu, quote their arguments, and differ only in task and region', async () => {
    const texts = await Promise.all(SCRIPTS.map((s) => readFile(join(ROOT, 'scripts', s), 'utf8')));
    const generic = texts.map((t, i) => {
      const [, task, region] = /^run_(sample|pixel)_(brain|abdom)\.sh$/.exec(SCRIPTS[i]!)!;
      expect(t).toMatch(new RegExp(`mood-entry\\.sh" ${task} ${region} "\\$1" "\\$2"$`, 'm'));
      return t.replace(/abdominal|brain/g, 'REGION').replaceAll(task!, 'TASK').replaceAll(region!, 'REGION');
    });
    expect(new Set(generic).size).toBe(1);
    for (const t of texts) {
      expect(t.startsWith('#!/bin/sh\n')).toBe(true);
      expect(t).toMatch(/^set -eu$/m);
    }
    const body = await readFile(join(ROOT, 'scripts', ENTRY_BODY), 'utf8');
    expect(body).toMatch(/^task=\$1$/m);
    expect(body).toMatch(/^region=\$2$/m);
    const text = body;
    expect(spawnSync('dash', ['-n', join(ROOT, 'scripts', ENTRY_BODY)]).status).toBe(0);
    expect(text.startsWith('#!/bin/sh\n')).toBe(true);
    expect(text).toMatch(/^set -eu$/m);
    expect(text).toMatch(/input=\$3/);
    expect(text).toMatch(/output=\$4/);
    for (const bashism of [/\[\[/, /^\s*function\s/m, /\$'/, /<<</, /&>/, /\bsource\s/, /^\s*local\s/m, /=\(/, /\$\{[A-Za-z_]+\/\//]) {
      expect(text, String(bashism)).not.toMatch(bashism);
    }
    // outside double quotes, a path variable appears only on the right of a plain assignment (no word splitting there)
    const unquoted = text
      .split('\n')
      .filter((l) => !/^\s*#/.test(l))
      .map((l) => l.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/^\s*[A-Za-z_]+=\$\w+/, ''));
    for (const v of ['1', '2', '3', '4', 'input', 'output', 'scratch', 'package', 'weights', 'here']) {
      const bare = unquoted.filter((l) => new RegExp(`\\$\\{?${v}\\b`).test(l));
      expect(bare, `unquoted $${v}`).toEqual([]);
    }
    for (const s of SCRIPTS) {
      expect(spawnSync('dash', ['-n', join(ROOT, 'scripts', s)]).status, s).toBe(0);
      expect(statSync(join(ROOT, 'scripts', s)).mode & 0o111, s).not.toBe(0);
    }
  });
});

describe('the entry scripts in a /workspace-like layout', () => {
  it('each script scores every case under sh, with HOME unwritable, no TMPDIR and spaces in the paths', async () => {
    const outRoot = await freshDir('mnt pred');
    for (const s of SCRIPTS) {
      const out = join(outRoot, `${s} out`);
      const r = sh([join(workspace, s), inDir, out]);
      expect(r.status, `${s}: ${r.stderr}`).toBe(0);
      const names = (await readdir(out)).sort();
      const expected = ['toy_0.nii.gz', 'toy_1.nii.gz', 'toy_2.nii.gz'].map((n) => (s.startsWith('run_sample') ? `${n}.txt` : n));
      expect(names, s).toEqual(expected);
      expect(r.stderr).toMatch(/zscore (sample|pixel): 3\/3 cases written/);
      expect(r.stderr).toMatch(/ignoring 1 non-NIfTI entry/);
    }
    const map = await readNifti(join(outRoot, 'run_pixel_abdom.sh out', 'toy_1.nii.gz'));
    expect(map.volume.shape).toEqual(SHAPE);
  });

  it.skipIf(!canUseMountNamespaces())('works with a read-only root file system and a read-only input mount (unshare -m)', async () => {
    const out = await freshDir('ro root', 'pred dir');
    const script = [
      'set -e',
      'mount --bind "$1" "$1"',
      'mount --bind "$2" "$2" && mount -o remount,bind,ro "$2"',
      'mount -o remount,bind,ro /',
      'if touch /moodlsr-ro-probe 2>/dev/null; then echo "the root file system is writable" >&2; exit 99; fi',
      'if touch "$2/probe" 2>/dev/null; then echo "the input is writable" >&2; exit 98; fi',
      'exec sh "$3" "$2" "$1"',
    ].join('\n');
    const r = spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', out, inDir, join(workspace, 'run_pixel_brain.sh')], {
      encoding: 'utf8',
      env: containerEnv(),
    });
    expect(r.status, r.stderr).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['toy_0.nii.gz', 'toy_1.nii.gz', 'toy_2.nii.gz']);
    expect(await leftovers(out)).toEqual([]);
    expect(existsSync('/moodlsr-ro-probe')).toBe(false);
  });

  it.skipIf(!IS_ROOT)('works as an unprivileged user with a read-only input folder', async (ctx) => {
    // the workspace links node_modules of the checkout, which nobody cannot read under a private (0700)
    // folder: then a workspace of its own, with a readable copy of the runtime packages
    const install = installFor(ROOT, NOBODY, NOBODY);
    if ('skip' in install) return ctx.skip(install.skip);
    ctx.onTestFinished(() => install.dispose());
    let space = workspace;
    if (install.root !== ROOT) {
      space = join(root, 'workspace-nobody');
      await cp(workspace, space, { recursive: true, filter: (src) => src !== join(workspace, 'node_modules') });
      await symlink(install.nodeModules, join(space, 'node_modules'));
    }
    const out = await freshDir('nobody pred');
    const r = sh([join(space, 'run_sample_brain.sh'), inDir, out], { uid: NOBODY, gid: NOBODY });
    expect(r.status, r.stderr).toBe(0);
    expect(await readdir(out)).toHaveLength(3);
  });

  it('exit status: 2 with a bad case (others written), 1 for an empty input folder, 64 for wrong usage; scratch removed', async () => {
    const mixed = await freshDir('mixed in');
    await copyFile(join(inDir, 'toy_0.nii.gz'), join(mixed, 'good.nii.gz'));
    await writeFile(join(mixed, 'bad.nii.gz'), 'corrupt');
    const out = await freshDir('mixed out');
    const bad = sh([join(workspace, 'run_pixel_brain.sh'), mixed, out]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/bad\.nii\.gz: FAILED/);
    expect(await readdir(out)).toEqual(['good.nii.gz']);

    const empty = await freshDir('empty in');
    const out2 = await freshDir('empty out');
    const none = sh([join(workspace, 'run_sample_abdom.sh'), empty, out2]);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/no \.nii or \.nii\.gz files/);
    expect(await readdir(out2)).toEqual([]);

    const usage = sh([join(workspace, 'run_sample_abdom.sh'), empty]);
    expect(usage.status).toBe(64);
    expect(usage.stderr).toMatch(/usage/);
  });

  it('an output path that cannot be created fails non-zero with a message', async () => {
    const file = join(root, 'a file');
    await writeFile(file, '');
    const r = sh([join(workspace, 'run_sample_brain.sh'), inDir, join(file, 'out')]);
    expect(r.status).not.toBe(0);
    expect(r.stderr.length).toBeGreaterThan(0);
  });

  it('also runs from scripts/ in a checkout, called by a relative path from another folder', async () => {
    const out = await freshDir('checkout out');
    const r = sh(['scripts/run_sample_brain.sh', inDir, out], {
      cwd: ROOT,
      // The checkout's own weights/brain/default-method names disyre; these weights are the workspace's zscore.
      env: containerEnv({ MOODLSR_METHOD: 'zscore', MOODLSR_WEIGHTS: join(workspace, 'weights', 'brain') }),
    });
    expect(r.status, r.stderr).toBe(0);
    expect(await readdir(out)).toHaveLength(3);
    const fromWorkspace = sh(['./run_sample_brain.sh', inDir, await freshDir('relative out')], { cwd: workspace });
    expect(fromWorkspace.status, fromWorkspace.stderr).toBe(0);
  });
});

describe('what the scripts pass to moodlsr (a recording node on PATH)', () => {
  async function record(script: string, env: Record<string, string> = {}): Promise<{ status: number | null; args: string[]; out: string }> {
    const out = await freshDir('recorded', script);
    const log = join(root, 'recorded.log');
    await rm(log, { force: true });
    const r = sh([join(workspace, script), inDir, out], { env: containerEnv({ PATH: `${shimDir}:${process.env.PATH}`, SHIM_LOG: log, ...env }) });
    return { status: r.status, args: (await readFile(log, 'utf8')).trimEnd().split('\n'), out };
  }

  function option(args: string[], name: string): string | undefined {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  }

  it('calls predict with the task, region and folders; predict finds the shipped weights of the method itself', async () => {
    const { status, args, out } = await record('run_pixel_abdom.sh');
    expect(status).toBe(0);
    expect(args[0]).toBe(join(workspace, 'dist', 'src', 'cli.js'));
    expect(args[1]).toBe('predict');
    expect(option(args, '--task')).toBe('pixel');
    expect(option(args, '--region')).toBe('abdom');
    expect(option(args, '-i')).toBe(inDir);
    expect(option(args, '-o')).toBe(out);
    expect(option(args, '--weights')).toBeUndefined();
    expect(option(args, '--method')).toBe('zscore');
    expect(option(args, '--shard')).toBeUndefined();
  });

  it('HOME and TMPDIR are a writable folder under the output folder while it runs, removed afterwards', async () => {
    const { args, out } = await record('run_sample_brain.sh');
    const home = args.find((a) => a.startsWith('home='))?.slice(5);
    const tmp = args.find((a) => a.startsWith('tmp='))?.slice(4);
    expect(home?.startsWith(`${out}/`)).toBe(true);
    expect(tmp?.startsWith(`${out}/`)).toBe(true);
    expect(existsSync(tmp!)).toBe(false);
    expect(await readdir(out)).toEqual([]);
  });

  it('runs the method named in weights/REGION/default-method; MOODLSR_METHOD, MOODLSR_WEIGHTS, MOODLSR_SHARD, MOODLSR_SEED override', async () => {
    const named = join(workspace, 'weights', 'brain', 'default-method');
    await writeFile(named, 'lsr\n');
    try {
      const auto = await record('run_pixel_brain.sh');
      expect(option(auto.args, '--method')).toBe('lsr');
      expect(option(auto.args, '--weights')).toBeUndefined();
      const other = await record('run_pixel_abdom.sh');
      expect(option(other.args, '--method')).toBe('zscore');
      const lsrWeights = join(root, 'lsr weights');
      const forced = await record('run_pixel_brain.sh', { MOODLSR_WEIGHTS: lsrWeights, MOODLSR_METHOD: 'zscore', MOODLSR_SHARD: '2/5', MOODLSR_SEED: '9' });
      expect(option(forced.args, '--method')).toBe('zscore');
      expect(option(forced.args, '--weights')).toBe(lsrWeights);
      expect(option(forced.args, '--shard')).toBe('2/5');
      expect(option(forced.args, '--seed')).toBe('9');
    } finally {
      await rm(named, { force: true });
    }
  });

  it('reads one method per task from default-method lines TASK=METHOD, a line without = for the other task', async () => {
    const named = join(workspace, 'weights', 'brain', 'default-method');
    try {
      await writeFile(named, 'sample = zscore\npixel=disyre\n');
      expect(option((await record('run_pixel_brain.sh')).args, '--method')).toBe('disyre');
      expect(option((await record('run_sample_brain.sh')).args, '--method')).toBe('zscore');
      await writeFile(named, 'pixel=disyre\n');
      expect(option((await record('run_sample_brain.sh')).args, '--method')).toBe('zscore');
      await writeFile(named, 'lsr\npixel=disyre\n');
      expect(option((await record('run_sample_brain.sh')).args, '--method')).toBe('lsr');
      expect(option((await record('run_pixel_brain.sh')).args, '--method')).toBe('disyre');
      expect(option((await record('run_pixel_brain.sh', { MOODLSR_METHOD: 'lsgs' })).args, '--method')).toBe('lsgs');
    } finally {
      await rm(named, { force: true });
    }
  });

  it('propagates the exit status of moodlsr and still removes its scratch folder', async () => {
    for (const code of ['1', '2', '3']) {
      const { status, out } = await record('run_sample_abdom.sh', { SHIM_STATUS: code });
      expect(status).toBe(Number(code));
      expect(await readdir(out)).toEqual([]);
    }
  });
});
