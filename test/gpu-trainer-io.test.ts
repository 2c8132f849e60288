/**
 * The GPU trainer (scripts/gpu): the batch producer must emit exactly the CPU trainer's batches (same
 * variants, sampler and corruptions, halves of the same values); the export/import of the training graph
 * and flat weights must round-trip byte for byte; and the torch interpreter of the project's training
 * graphs (onnx_torch.py, Debian's python3-torch on CPU) must give ONNX Runtime's outputs and, through
 * PyTorch's autograd, the gradient the project's own backward graph gives, for every trained network
 * (an independent check of src/onnx/autodiff as well).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportDisyreForGpu, importDisyreFromGpu } from '../scripts/gpu/disyre-io.js';
import { exportTrainedNet, importTrainedNet, type TrainedNetKind } from '../scripts/gpu/net-io.js';
import { augmentOptionsFor } from '../src/train/augment.js';
import { sampleBatch } from '../src/train/sampler.js';
import { HOLDOUT_SLICES_PER_VOLUME, holdoutImageBatches } from '../src/train/holdout-slices.js';
import { loadWarmStart } from '../src/train/warm-start.js';
import { onnxParamLayout } from '../src/train/onnx-nets.js';
import { runChild } from './helpers/run-node.js';
import { readNifti, writeNifti } from '../src/io/nifti.js';
import { float16BitsToFloat32 } from '../src/io/float16.js';
import { deriveSeed, TRAIN_SALT } from '../eval/inject/seeds.js';
import { makeNormalVariant, prepareSource } from '../eval/inject/variants.js';
import { makeAbdomenPhantom } from '../eval/phantom/abdomen.js';
import { abdomenTrainSeed } from '../eval/phantom/population.js';
import { openVolumeFolder } from '../src/train/dataset.js';
import { createRng } from '../src/engine/random.js';
import { DEFAULT_CORRUPTION } from '../src/methods/disyre/corrupt.js';
import { DISYRE_KIND, DISYRE_NAME, DISYRE_PRESETS, RAW_INTENSITIES } from '../src/methods/disyre/config.js';
import { conditionInput } from '../src/methods/disyre/embedding.js';
import { DISYRE_SLICE_RULES, drawBatch, sourceOf } from '../src/methods/disyre/samples.js';
import { disyreLayout, initialDisyreWeights } from '../src/methods/disyre/train-engine.js';
import { saveFlatModel } from '../src/train/checkpoint.js';
import { initEngine } from '../src/engine/backend.js';

const ROOT = join(__dirname, '..');
const TEMPLATE = join(ROOT, 'data', 'mricron', 'ch2bet.nii.gz');
const PRODUCER = join(ROOT, 'dist', 'scripts', 'gpu', 'disyre-batches.js');
const LSR_PRODUCER = join(ROOT, 'dist', 'scripts', 'gpu', 'lsr-batches.js');
const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'moodlsr-gpu-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Runs node with `args`; with `bytes`, kills the child once it has written that many bytes (an endless stream). */
function runBinary(args: readonly string[], bytes = Infinity): Promise<{ status: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let got = 0;
    child.stdout.on('data', (c: Buffer) => {
      out.push(c);
      got += c.length;
      if (got >= bytes) child.kill();
    });
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status: got >= bytes ? 0 : status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

/** The largest |a − b| / max(|b|, 2^-14): halves of the same values are within 2^-11. */
function worstHalfError(got: Float32Array, want: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / Math.max(Math.abs(want[i]!), 2 ** -14));
  return worst;
}

const halvesOf = (buf: Buffer, offset: number, count: number): Float32Array =>
  Float32Array.from({ length: count }, (_, i) => float16BitsToFloat32(buf.readUInt16LE(offset + 2 * i)));

describe.skipIf(!existsSync(TEMPLATE) || !existsSync(PRODUCER))('GPU batch producer', () => {
  it('writes the CPU trainer’s own batches (population variant, sampler, corruptions) as halves', async () => {
    const count = 3;
    const batches = 2;
    const size = 128;
    const embed = 32;
    const run = await runBinary([PRODUCER, '--src', TEMPLATE, '--work', join(tempDir(), 'pop'), '--pop-seed', '7', '--indices', '4', '--seed', 'test', '--batch', String(count), '--mode', 'holdout', '--batches', String(batches)]);
    expect(run.status, run.stderr).toBe(0);
    const plane = count * size * size;
    const record = plane * 2 * 3 + count * 2 * embed * 4;
    expect(run.stdout.length).toBe(batches * record);

    // The same variant, opened and sampled in process as the CPU trainer does.
    const dir = tempDir();
    const source = prepareSource((await readNifti(TEMPLATE)).volume);
    const { volume } = makeNormalVariant(source, { size: 256, seed: deriveSeed(TRAIN_SALT, 7, 'normal', 4) });
    await writeNifti(join(dir, 'normal_0004.nii'), volume, { dtype: 'float32' });
    const folder = await openVolumeFolder([dir], { region: 'brain', size, normalisation: RAW_INTENSITIES, maxSlicesPerVolume: DISYRE_SLICE_RULES.slicesPerVolume });
    const slices = sourceOf(folder.files, DEFAULT_CORRUPTION, DISYRE_SLICE_RULES.minTissue);
    const rng = createRng('test:holdout');
    for (let b = 0; b < batches; b++) {
      const want = drawBatch(slices, size, count, rng, DEFAULT_CORRUPTION);
      const base = b * record;
      const fields = [want.images, want.targets, want.masks!];
      fields.forEach((values, f) => {
        const got = halvesOf(run.stdout, base + f * plane * 2, plane);
        let worst = 0;
        for (let i = 0; i < plane; i++) worst = Math.max(worst, Math.abs(got[i]! - values[i]!) / Math.max(Math.abs(values[i]!), 2 ** -14));
        expect(worst).toBeLessThanOrEqual(2 ** -11);
      });
      const cond = new Float32Array(run.stdout.buffer.slice(run.stdout.byteOffset + base + plane * 6, run.stdout.byteOffset + base + record));
      expect(Array.from(cond)).toEqual(Array.from(conditionInput({ embedDim: embed }, want.levels, want.positions)));
    }
  });
});

describe.skipIf(!existsSync(TEMPLATE) || !existsSync(LSR_PRODUCER))('GPU batch producer of LSR', () => {
  const size = 128;
  const count = 8;
  const plane = count * size * size;
  const record = plane * 2 + count * 4;
  /** The variant the producer makes for index 4, opened as the VQ-VAE trainer opens its data. */
  async function stacksOfVariant4(): Promise<Awaited<ReturnType<typeof openVolumeFolder>>['files'][number]['stack'][]> {
    const dir = tempDir();
    const source = prepareSource((await readNifti(TEMPLATE)).volume);
    const { volume } = makeNormalVariant(source, { size: 256, seed: deriveSeed(TRAIN_SALT, 7, 'normal', 4) });
    await writeNifti(join(dir, 'normal_0004.nii'), volume, { dtype: 'float32' });
    const folder = await openVolumeFolder([dir], { region: 'brain', size, sliceRule: 'foreground' });
    return folder.files.map((f) => f.stack);
  }
  const positionsOf = (buf: Buffer, base: number): number[] => Array.from(new Float32Array(buf.buffer.slice(buf.byteOffset + base + plane * 2, buf.byteOffset + base + record)));

  it('writes the VQ-VAE trainer’s held-out slices and its augmented batches as halves', async () => {
    const common = ['--src', TEMPLATE, '--pop-seed', '7', '--indices', '4', '--seed', 'test', '--batch', String(count), '--size', String(size)];
    const [held, train, stacks] = await Promise.all([
      runBinary([LSR_PRODUCER, ...common, '--work', join(tempDir(), 'pop'), '--mode', 'holdout']),
      runBinary([LSR_PRODUCER, ...common, '--work', join(tempDir(), 'pop')], 2 * record),
      stacksOfVariant4(),
    ]);
    expect(held.status, held.stderr).toBe(0);
    const want = holdoutImageBatches(stacks, HOLDOUT_SLICES_PER_VOLUME, count);
    expect(want.length).toBe(1);
    expect(held.stdout.length).toBe(record);
    expect(worstHalfError(halvesOf(held.stdout, 0, plane), want[0]!.images)).toBeLessThanOrEqual(2 ** -11);
    expect(positionsOf(held.stdout, 0)).toEqual(Array.from(want[0]!.positions));

    expect(train.stdout.length).toBeGreaterThanOrEqual(2 * record);
    const rng = createRng('test:train');
    const augment = augmentOptionsFor('paper', 'brain');
    for (let b = 0; b < 2; b++) {
      const batch = sampleBatch(stacks, { volumesPerBatch: 1, slicesPerVolume: count, rng, augment });
      expect(worstHalfError(halvesOf(train.stdout, b * record, plane), batch.images)).toBeLessThanOrEqual(2 ** -11);
      expect(positionsOf(train.stdout, b * record)).toEqual(Array.from(batch.positions));
    }
  });
});

describe.skipIf(!existsSync(LSR_PRODUCER))('GPU batch producer of LSR, abdomen', () => {
  it('writes the held-out slices of the abdominal phantom the CPU trainer would open', async () => {
    const size = 160;
    const count = 8;
    const plane = count * size * size;
    const run = runBinary([LSR_PRODUCER, '--region', 'abdom', '--src', 'unused', '--pop-seed', '7', '--indices', '3', '--seed', 'test',
      '--batch', String(count), '--size', String(size), '--work', join(tempDir(), 'pop'), '--mode', 'holdout']);
    const dir = tempDir();
    await writeNifti(join(dir, 'normal_0003.nii'), makeAbdomenPhantom({ size: 512, seed: abdomenTrainSeed(7, 3) }).volume, { dtype: 'float32' });
    const folder = await openVolumeFolder([dir], { region: 'abdomen', size, sliceRule: 'foreground' });
    const want = holdoutImageBatches(folder.files.map((f) => f.stack), HOLDOUT_SLICES_PER_VOLUME, count);
    const held = await run;
    expect(held.status, held.stderr).toBe(0);
    expect(held.stdout.length).toBe(want.length * (plane * 2 + count * 4));
    expect(worstHalfError(halvesOf(held.stdout, 0, plane), want[0]!.images)).toBeLessThanOrEqual(2 ** -11);
  });

  it('names the region it does not know', async () => {
    const run = await runBinary([LSR_PRODUCER, '--region', 'chest', '--src', 'unused', '--pop-seed', '7', '--indices', '3', '--seed', 't', '--work', join(tempDir(), 'pop')]);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/--region chest is not brain or abdom/);
  });
});

describe('GPU trainer export and import', () => {
  it('exports the training graph, index maps and start weights, and imports flat weights back unchanged', async () => {
    await initEngine({ prefer: 'cpu', log: () => undefined });
    const cfg = { ...DISYRE_PRESETS.tiny, segmentationWeight: 0.1 };
    const weights = await initialDisyreWeights(cfg, 5);
    const init = tempDir();
    saveFlatModel(init, DISYRE_NAME, { kind: DISYRE_KIND, config: cfg, layout: disyreLayout(cfg), weights });
    const out = tempDir();
    await exportDisyreForGpu(init, out);
    const start = new Float32Array(new Uint8Array(readFileSync(join(out, 'start.f32'))).buffer);
    expect(Array.from(start)).toEqual(Array.from(weights));

    // Every parameter element is reached through some input's index map.
    const blob = readFileSync(join(out, 'bindings.bin'));
    const bindings = JSON.parse(readFileSync(join(out, 'bindings.json'), 'utf8')) as { indexOffset: number; length: number }[];
    const covered = new Uint8Array(weights.length);
    for (const b of bindings) {
      for (let j = 0; j < b.length; j++) {
        const k = blob.readInt32LE(b.indexOffset + 4 * j);
        if (k >= 0) covered[k] = 1;
      }
    }
    expect(covered.every((c) => c === 1)).toBe(true);
    const check = JSON.parse(readFileSync(join(out, 'check.json'), 'utf8')) as { feeds: { name: string }[]; expected: Record<string, { sum: number }> };
    expect(Object.keys(check.expected).sort()).toEqual(['bce', 'loss', 'rec', 'restored']);
    expect(Object.values(check.expected).every((e) => Number.isFinite(e.sum))).toBe(true);
    expect(check.feeds.map((f) => f.name).sort()).toEqual(['cond', 'image', 'mask', 'target']);
    const grad = new Float32Array(new Uint8Array(readFileSync(join(out, 'check-grad.f32'))).buffer);
    expect(grad.length).toBe(weights.length);
    expect(grad.some((g) => g !== 0)).toBe(true);

    const back = tempDir();
    const record = join(back, 'record.json');
    writeFileSync(record, JSON.stringify({ kind: 'disyre', steps: 0 }));
    await importDisyreFromGpu(join(out, 'start.f32'), join(out, 'meta.json'), record, back);
    expect(readFileSync(join(back, 'disyre.bin')).equals(readFileSync(join(init, 'disyre.bin')))).toBe(true);
    await expect(importDisyreFromGpu(join(out, 'check.bin'), join(out, 'meta.json'), record, tempDir())).rejects.toThrow(/check\.bin holds \d+ values, the network has/);
  });
});

describe('torch interpreter of the training graphs', () => {
  it('gives ONNX Runtime’s outputs and the project’s gradients for DISYRE, the VQ-VAE, PixelSNAIL, the transformer and the VAE', async () => {
    const python = '/usr/bin/python3';
    const probe = await runChild(python, ['-c', 'import torch, onnx']);
    if (probe.status !== 0) throw new Error(`${python} cannot import torch and onnx, which this test needs: run "sh scripts/setup.sh" (apt-get install python3-torch python3-onnx)\n${probe.stderr}`);
    const root = tempDir();
    const nets: [TrainedNetKind, string][] = [['vqvae', 'lsr'], ['pixelsnail', 'lsr'], ['transformer', 'lsgs'], ['vae', 'vae']];
    const dirs: string[] = [];
    for (const [kind, folder] of nets) {
      const out = join(root, kind);
      await exportTrainedNet(kind, join(ROOT, 'weights', 'brain', folder), out);
      dirs.push(out);
    }
    await exportDisyreForGpu(join(ROOT, 'weights', 'brain', 'disyre'), join(root, 'disyre'));
    dirs.push(join(root, 'disyre'));
    // A fresh prior: its zero biases put exact ties into ELU's max(x, exp(min(x, 0)) − 1), where the
    // interpreter must give the whole gradient to x as the project's backward does (torch.maximum splits it).
    await exportTrainedNet('pixelsnail', join(ROOT, 'weights', 'brain', 'lsr'), join(root, 'pixelsnail-fresh'), { freshSeed: 'ties' });
    dirs.push(join(root, 'pixelsnail-fresh'));
    const run = await runChild(python, [join(ROOT, 'scripts', 'gpu', 'onnx_torch.py'), ...dirs, '--device', 'cpu', '--tolerance', '1e-4']);
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('parity ok: 6 graph(s)');
    for (const kind of ['vqvae', 'pixelsnail', 'transformer', 'vae', 'disyre']) expect(run.stdout).toMatch(new RegExp(`${kind} d loss / d weights: .* = \\d`));
  });
});

/** `OUT/<kind>-best.f32` imports as weights that load back to exactly those values. */
async function expectImportRoundTrip(kind: 'vqvae' | 'pixelsnail' | 'transformer' | 'vae', exportDir: string, out: string): Promise<void> {
  const weights = tempDir();
  await importTrainedNet(join(out, `${kind}-best.f32`), exportDir, join(out, `${kind}-record.json`), weights);
  const meta = JSON.parse(readFileSync(join(exportDir, 'meta.json'), 'utf8')) as { config: unknown };
  const layout = onnxParamLayout({ kind, config: meta.config } as Parameters<typeof onnxParamLayout>[0]);
  const flat = new Float32Array(new Uint8Array(readFileSync(join(out, `${kind}-best.f32`))).buffer);
  expect(Array.from(loadWarmStart(weights, kind, kind, meta.config, layout).weights)).toEqual(Array.from(flat));
}

describe.skipIf(!existsSync(TEMPLATE) || !existsSync(LSR_PRODUCER))('GPU trainer of LSR (train_lsr.py on CPU torch)', () => {
  it('trains both networks a few steps from their exports and the results import as loadable weights', async () => {
    const python = '/usr/bin/python3';
    const probe = await runChild(python, ['-c', 'import torch, onnx']);
    if (probe.status !== 0) throw new Error(`${python} cannot import torch and onnx, which this test needs: run "sh scripts/setup.sh"\n${probe.stderr}`);
    const root = tempDir();
    const vq = join(root, 'vq');
    const prior = join(root, 'prior');
    await exportTrainedNet('vqvae', join(ROOT, 'weights', 'brain', 'lsr'), vq, { meta: { region: 'brain', background: 0 } });
    await exportTrainedNet('pixelsnail', join(ROOT, 'weights', 'brain', 'lsr'), prior, { freshSeed: 'smoke' });
    const out = join(root, 'out');
    const run = await runChild(python, [
      join(ROOT, 'scripts', 'gpu', 'train_lsr.py'), '--vq-export', vq, '--prior-export', prior, '--batches-js', LSR_PRODUCER, '--node', process.execPath,
      '--src', TEMPLATE, '--work', join(root, 'pop'), '--out', out, '--volumes', '2', '--holdout-volumes', '2', '--producers', '2', '--chunk', '8',
      '--vq-batch', '8', '--prior-batch', '8', '--max-steps', '3', '--warmup', '2', '--eval-every', '3', '--reseed-every', '2', '--device', 'cpu',
    ]);
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/vqvae done: 3 steps, 24 slices/);
    expect(run.stdout).toMatch(/pixelsnail done: 3 steps, 24 maps/);
    for (const [kind, exportDir] of [['vqvae', vq], ['pixelsnail', prior]] as const) {
      const record = JSON.parse(readFileSync(join(out, `${kind}-record.json`), 'utf8')) as { steps: number; parityRelativeError: Record<string, number>; history: { step: number; holdout: Record<string, number> }[] };
      expect(record.steps).toBe(3);
      expect(Math.max(...Object.values(record.parityRelativeError))).toBeLessThan(1e-4);
      expect(record.history.map((h) => h.step)).toEqual([0, 3]);
      expect(Object.values(record.history[1]!.holdout).every(Number.isFinite)).toBe(true);
      await expectImportRoundTrip(kind, exportDir, out);
    }
    await expect(importTrainedNet(join(vq, 'check.bin'), vq, join(out, 'vqvae-record.json'), tempDir())).rejects.toThrow(/check\.bin holds \d+ bytes, the vqvae layout needs/);
  });

  it('trains the VAE a few steps (train_vae.py), and the result imports', async () => {
    const python = '/usr/bin/python3';
    const root = tempDir();
    const vae = join(root, 'vae');
    await exportTrainedNet('vae', join(ROOT, 'weights', 'brain', 'vae'), vae, { meta: { region: 'brain', background: 0 } });
    const out = join(root, 'out');
    const run = await runChild(python, [
      join(ROOT, 'scripts', 'gpu', 'train_vae.py'), '--export', vae, '--batches-js', LSR_PRODUCER, '--node', process.execPath,
      '--src', TEMPLATE, '--work', join(root, 'pop'), '--out', out, '--volumes', '2', '--holdout-volumes', '2', '--producers', '2', '--chunk', '8',
      '--batch', '8', '--max-steps', '3', '--warmup', '2', '--eval-every', '3', '--device', 'cpu',
    ]);
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/vae done: 3 steps, 24 slices/);
    const record = JSON.parse(readFileSync(join(out, 'vae-record.json'), 'utf8')) as { parityRelativeError: Record<string, number>; history: { holdout: Record<string, number> }[] };
    expect(record.parityRelativeError.vae!).toBeLessThan(1e-4);
    const held = record.history[1]!.holdout;
    for (const key of ['loss', 'rec', 'kl', 'recNll', 'recFg']) expect(Number.isFinite(held[key]), key).toBe(true);
    // the brain-only L1 counts foreground pixels only, where the residual is largest
    expect(held.recFg!).toBeGreaterThan(held.rec!);
    await expectImportRoundTrip('vae', vae, out);
  });

  it("trains LSGS's transformer on tampered codes of its frozen VQ-VAE, and the result imports", async () => {
    const python = '/usr/bin/python3';
    const root = tempDir();
    const vq = join(root, 'vq');
    const transformer = join(root, 'transformer');
    await exportTrainedNet('vqvae', join(ROOT, 'weights', 'brain', 'lsgs'), vq, { meta: { region: 'brain', background: 0 } });
    await exportTrainedNet('transformer', join(ROOT, 'weights', 'brain', 'lsgs'), transformer, {});
    const out = join(root, 'out');
    const run = await runChild(python, [
      join(ROOT, 'scripts', 'gpu', 'train_lsr.py'), '--vq-export', vq, '--prior-export', transformer, '--batches-js', LSR_PRODUCER, '--node', process.execPath,
      '--src', TEMPLATE, '--work', join(root, 'pop'), '--out', out, '--volumes', '2', '--holdout-volumes', '2', '--producers', '2', '--chunk', '8',
      '--vq-minutes', '0', '--prior-batch', '8', '--max-steps', '3', '--warmup', '2', '--eval-every', '3', '--device', 'cpu',
    ]);
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/vqvae done: 0 steps/);
    expect(run.stdout).toMatch(/transformer done: 3 steps, 24 maps/);
    const record = JSON.parse(readFileSync(join(out, 'transformer-record.json'), 'utf8')) as { tamperFraction: number; beta: number; history: { holdout: Record<string, number> }[] };
    expect([record.tamperFraction, record.beta]).toEqual([0.1, 0.01]);
    const held = record.history[1]!.holdout;
    for (const key of ['loss', 'nllFg', 'ceTampered', 'ceUntampered']) expect(Number.isFinite(held[key]), key).toBe(true);
    // every map has the same m tampered positions, so the repair loss is exactly (1 − β)·CE(tampered) + β·CE(untampered)
    expect(held.loss!).toBeCloseTo(0.99 * held.ceTampered! + 0.01 * held.ceUntampered!, 4);
    await expectImportRoundTrip('transformer', transformer, out);
  });
});
