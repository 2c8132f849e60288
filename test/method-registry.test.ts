/**
 * The method registry (src/methods/index.ts): adding a method takes its folder and one registry line, and
 * predict, leaderboard and --help pick it up; predict refuses a task a method does not score before
 * loading anything. The toy method (test/fixtures/toy-method/index.ts) is added to a copy of the compiled
 * package, so the real CLI runs it as a child process.
 */
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNifti, writeNifti } from '../src/io/nifti.js';
import { describeScoreTasks, methodNames, REGISTRY, requireScoreFor } from '../src/methods/index.js';
import { makeVolume, type Shape3 } from '../src/volume/volume.js';
import { runChild } from './helpers/run-node.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const SHAPE: Shape3 = [8, 8, 6];
const REGISTRY_LINE = "(await import('./lsgs/index.js')).default,";

let root: string;
let pkg: string;
let set: string;
let registryBefore: string;
let registryAfter: string;

/** Four cases: two normal, two with a bright cube (its voxels are the pixel label). */
async function buildSet(dir: string): Promise<void> {
  for (const sub of ['toy', join('toy_label', 'pixel'), join('toy_label', 'sample')]) await mkdir(join(dir, sub), { recursive: true });
  const cases = [];
  for (let i = 0; i < 4; i++) {
    const name = `toy_${i}.nii.gz`;
    const anomalous = i % 2 === 1;
    const image = new Float32Array(8 * 8 * 6).map((_, v) => 0.3 + 0.01 * ((v * 7 + i) % 5));
    const label = new Float32Array(image.length);
    if (anomalous) for (const v of [200, 201, 208, 209]) (image[v] = 1), (label[v] = 1);
    await writeNifti(join(dir, 'toy', name), makeVolume(SHAPE, image));
    await writeNifti(join(dir, 'toy_label', 'pixel', name), makeVolume(SHAPE, label), { dtype: 'uint8' });
    await writeFile(join(dir, 'toy_label', 'sample', `${name}.txt`), anomalous ? '1' : '0');
    cases.push({ name, kind: anomalous ? 'uniform' : 'normal' });
  }
  await writeFile(join(dir, 'manifest.json'), JSON.stringify({ format: 'moodlsr-toyset/1', seed: 1, size: 8, sources: ['synthetic'], cases }));
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  root = await mkdtemp(join(tmpdir(), 'moodlsr-registry-'));
  set = join(root, 'set');
  await buildSet(set);
  // A copy of the compiled package: dist/src, dist/eval, package.json, node_modules (linked).
  pkg = join(root, 'pkg');
  await cp(join(ROOT, 'dist', 'src'), join(pkg, 'dist', 'src'), { recursive: true });
  await cp(join(ROOT, 'dist', 'eval'), join(pkg, 'dist', 'eval'), { recursive: true });
  await copyFile(join(ROOT, 'package.json'), join(pkg, 'package.json'));
  await symlink(join(ROOT, 'node_modules'), join(pkg, 'node_modules'), 'dir');
  // The method's folder …
  const source = await readFile(join(ROOT, 'test', 'fixtures', 'toy-method', 'index.ts'), 'utf8');
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText;
  await mkdir(join(pkg, 'dist', 'src', 'methods', 'toy'));
  await writeFile(join(pkg, 'dist', 'src', 'methods', 'toy', 'index.js'), js);
  // … and one registry line.
  const registryFile = join(pkg, 'dist', 'src', 'methods', 'index.js');
  registryBefore = await readFile(registryFile, 'utf8');
  const lines = registryBefore.split('\n');
  const at = lines.findIndex((l) => l.trim() === REGISTRY_LINE);
  if (at < 0) throw new Error(`no line "${REGISTRY_LINE}" in ${registryFile}`);
  lines.splice(at + 1, 0, lines[at]!.replace('./lsgs/', './toy/'));
  registryAfter = lines.join('\n');
  await writeFile(registryFile, registryAfter);
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

function toyCli(args: string[]) {
  return runChild(process.execPath, [join(pkg, 'dist', 'src', 'cli.js'), ...args]);
}

describe('registry', () => {
  it('lists every method of the five folders, with the tasks each name scores', () => {
    expect(REGISTRY.map((m) => m.id)).toEqual(['zscore', 'lsr', 'vae', 'lsgs', 'disyre']);
    expect(methodNames()).toEqual(['zscore', 'lsr', 'vae-rec', 'vae-elbo', 'vae-kl', 'vae-elbograd', 'vae-klgrad', 'vae-recgrad', 'vae-combi', 'lsgs', 'disyre']);
    expect(describeScoreTasks()).toContain('vae-elbo (sample), ');
    expect(describeScoreTasks()).toContain('vae-combi (pixel), ');
    expect(() => requireScoreFor('vae-elbo', 'pixel')).toThrow(/--method vae-elbo has no pixel score/);
    expect(() => requireScoreFor('nope', 'sample')).toThrow(/unknown --method "nope"/);
    expect(requireScoreFor('vae-rec', 'pixel').method.id).toBe('vae');
  });

  it('every method folder is registered and has its README', async () => {
    const folders = (await readdir(join(ROOT, 'src', 'methods'), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
    expect(folders.sort()).toEqual(REGISTRY.map((m) => m.id).sort());
    for (const id of folders) expect(existsSync(join(ROOT, 'src', 'methods', id, 'README.md')), `src/methods/${id}/README.md`).toBe(true);
  });
});

describe('predict', () => {
  it('refuses a task the method does not score before any model loads', async () => {
    const r = await runChild(process.execPath, [CLI, 'predict', '--task', 'pixel', '--region', 'brain', '-i', join(set, 'toy'), '-o', join(root, 'refused'), '--method', 'vae-elbo', '--weights', join(root, 'no-such-weights')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--method vae-elbo has no pixel score \(pixel: zscore, lsr, vae-rec, vae-elbograd, vae-klgrad, vae-recgrad, vae-combi, lsgs, disyre\)/);
    expect(r.stderr).not.toMatch(/no-such-weights/);
    expect(existsSync(join(root, 'refused'))).toBe(false);
  });

  it('--help says which method scores which task', async () => {
    const r = await runChild(process.execPath, [CLI, 'predict', '--help']);
    const help = r.stdout.replace(/\s+/g, ' ');
    expect(help).toContain('zscore (sample, pixel), lsr (sample, pixel), vae-rec (sample, pixel), vae-elbo (sample), vae-kl (sample), vae-elbograd (pixel)');
  });
});

describe('a toy method added by its folder and one registry line', () => {
  it('changed the copy by exactly one registry line', () => {
    const before = registryBefore.split('\n');
    const after = registryAfter.split('\n');
    expect(after.length).toBe(before.length + 1);
    expect(after.filter((l) => !before.includes(l))).toEqual([expect.stringContaining("(await import('./toy/index.js')).default,")]);
  });

  it('the unmodified package does not know it', async () => {
    const r = await runChild(process.execPath, [CLI, 'predict', '--task', 'sample', '--region', 'brain', '-i', join(set, 'toy'), '-o', join(root, 'unknown'), '--method', 'toy-constant']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown --method "toy-constant"/);
  });

  it('predict --help and leaderboard --help list it', async () => {
    const predictHelp = (await toyCli(['predict', '--help'])).stdout.replace(/\s+/g, ' ');
    expect(predictHelp).toContain('lsgs (sample, pixel), toy-constant (sample, pixel)');
    const leaderboardHelp = (await toyCli(['leaderboard', '--help'])).stdout.replace(/\s+/g, ' ');
    expect(leaderboardHelp).toContain('lsgs, toy-constant');
  });

  it('predict runs it for both tasks', async () => {
    const sample = await toyCli(['predict', '--task', 'sample', '--region', 'brain', '-i', join(set, 'toy'), '-o', join(root, 'sample'), '--method', 'toy-constant']);
    expect(sample.status, sample.stderr).toBe(0);
    expect(await readFile(join(root, 'sample', 'toy_1.nii.gz.txt'), 'utf8')).toMatch(/^0\.5\s*$/);
    const pixel = await toyCli(['predict', '--task', 'pixel', '--region', 'abdom', '-i', join(set, 'toy'), '-o', join(root, 'pixel'), '--method', 'toy-constant']);
    expect(pixel.status, pixel.stderr).toBe(0);
    const map = (await readNifti(join(root, 'pixel', 'toy_2.nii.gz'))).volume;
    expect(map.shape).toEqual(SHAPE);
    expect(new Set(map.data)).toEqual(new Set([0.25]));
  });

  it('leaderboard runs it and scores it', async () => {
    const out = join(root, 'board');
    const r = await toyCli(['leaderboard', '--set', set, '--method', 'toy-constant', '--out', out, '--bootstrap', '5', '--overlays', '0', '--timeout', '120']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('toy-constant');
    const scores = JSON.parse(await readFile(join(out, 'scores.json'), 'utf8')) as { methods: Record<string, Record<string, { auroc: number }>> };
    expect(Object.keys(scores.methods)).toEqual(['toy-constant']);
    // Constant scores rank nothing: AUROC 0.5 for both tasks.
    expect(scores.methods['toy-constant']!.sample!.auroc).toBeCloseTo(0.5, 6);
    expect(scores.methods['toy-constant']!.pixel!.auroc).toBeCloseTo(0.5, 6);
  });
});
