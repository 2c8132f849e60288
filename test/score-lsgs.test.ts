import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { readNifti, writeNifti } from '../src/io/nifti.js';
import { initTransformer, saveModel, type TransformerConfig } from '../src/models/index.js';
import { disposeParams, type ParamMap } from '../src/models/params.js';
import { METHODS } from '../src/methods/index.js';
import { cliEntryPath } from '../src/package-root.js';
import { execFileSync } from 'node:child_process';
import { runPrediction } from '../src/mood/run.js';
import { calibrateLsgs, writeLsgsCalibration } from '../src/methods/lsgs/calibrate.js';
import { loadLsgsModel, lsgsPredictor, readLsgsCalibration } from '../src/methods/lsgs/model.js';
import { loadLsgsNetworks, disposeLsgsNetworks, type TransformerNetwork } from '../src/methods/lsgs/networks.js';
import { restoreParallel } from '../src/methods/lsgs/restoration.js';
import { disposeLsrNetworks } from '../src/methods/lsr/networks.js';
import { randomCodes, tinyBrain, tinyNetworks } from './helpers/score-fixtures.js';
import { Command } from 'commander';
import { registerCalibrate } from '../src/cli/calibrate.js';
import { bodyMask } from '../src/volume/body-mask.js';
import { applySampleCalibration } from '../src/score/calibration.js';
import { lsgsNetworksFingerprint, readLsgsNllReference, readLsgsResidualReference, transformerFingerprint } from '../src/methods/lsgs/references.js';
import { ZERO_EXCESS_BAND } from '../src/score/residual-reference.js';

const root = mkdtempSync(join(tmpdir(), 'moodlsr-score-lsgs-'));
const weights = join(root, 'weights');
const normals = join(root, 'normals');
const cases = join(root, 'cases');
const shape = [20, 18, 24] as const;
const silent = () => undefined;

const TINY_TRANSFORMER: TransformerConfig = {
  codebookSize: 8,
  height: 4,
  width: 4,
  dim: 8,
  layers: 1,
  heads: 2,
  mlpDim: 16,
  dropout: 0.1,
  condChannels: 1,
  causal: false,
};

/** A sharp, non-uniform random transformer (larger head), so NLLs spread and resampling varies. */
function tinyTransformer(seed: number, causal = false): TransformerNetwork {
  const cfg = { ...TINY_TRANSFORMER, causal };
  const params: ParamMap = initTransformer(cfg, seed);
  const rng = createRng(seed + 7);
  for (const name of ['out.head.w', 'out.head.b', 'embed.cond.w']) {
    const v = params[name]!;
    v.assign(tf.tensor(Array.from({ length: v.size }, () => rng.normal() * 2), v.shape));
  }
  return { cfg, params };
}

function saveTinyLsgs(dir: string, seed: number): void {
  const nets = tinyNetworks(seed);
  const transformer = tinyTransformer(seed + 3);
  saveModel(dir, 'vqvae', { kind: 'vqvae', config: nets.vqvae.cfg, params: nets.vqvae.params });
  saveModel(dir, 'transformer', { kind: 'transformer', config: transformer.cfg, params: transformer.params });
  disposeLsrNetworks(nets);
  disposeParams(transformer.params);
}

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: silent });
  saveTinyLsgs(weights, 21);
  mkdirSync(normals);
  mkdirSync(cases);
  for (let i = 0; i < 3; i++) await writeNifti(join(normals, `normal_${i}.nii.gz`), tinyBrain(shape, 100 + i));
  await writeNifti(join(cases, 'a.nii.gz'), tinyBrain(shape, 200, true));
  await writeNifti(join(cases, 'b.nii.gz'), tinyBrain(shape, 201));
  const { calibration } = await calibrateLsgs({
    weightsDir: weights,
    files: readdirSync(normals).map((f) => join(normals, f)),
    region: 'brain',
    slices: { every: 4 },
    copies: 3,
    rounds: 2,
    pixelVolumes: 1,
    seed: 0,
    workers: 0,
    log: silent,
  });
  writeLsgsCalibration(weights, calibration);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('parallel restoration', () => {
  let net: TransformerNetwork;
  beforeAll(() => {
    net = tinyTransformer(5);
  });
  const cells = 16;
  const codes = randomCodes(3, cells, 8, 11);
  const positions = Float32Array.from([-0.3, 0, 0.3]);
  const base = { copies: 4, rounds: 3, seed: 1, sliceKeys: [0, 8, 16] };

  it('leaves the maps alone with no rounds or a λ above every NLL', async () => {
    for (const opts of [{ ...base, lambda: 0, rounds: 0 }, { ...base, lambda: 1e9 }]) {
      const out = await restoreParallel(net, codes, positions, opts);
      for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) expect(Array.from(out.codes.subarray((i * 4 + j) * cells, (i * 4 + j + 1) * cells))).toEqual(Array.from(codes.subarray(i * cells, (i + 1) * cells)));
      expect(out.stats.changed).toBe(0);
    }
  });

  it('resamples every position in parallel when λ < 0, copies diverge, one shared pass in the first round', async () => {
    const out = await restoreParallel(net, codes, positions, { ...base, lambda: -1, rounds: 1 });
    expect(out.stats.resampled).toBe(3 * 4 * cells);
    expect(out.stats.mapPasses).toBe(3);
    const copy0 = Array.from(out.codes.subarray(0, cells));
    const copy1 = Array.from(out.codes.subarray(cells, 2 * cells));
    expect(copy0).not.toEqual(copy1);
  });

  it('is reproducible and independent of which slices share the call', async () => {
    const opts = { ...base, lambda: 1.5 };
    const all = await restoreParallel(net, codes, positions, opts);
    const again = await restoreParallel(net, codes, positions, opts);
    expect(Array.from(again.codes)).toEqual(Array.from(all.codes));
    expect(all.stats.changed).toBeGreaterThan(0);
    const second = await restoreParallel(net, codes.slice(cells, 2 * cells), positions.slice(1, 2), { ...opts, sliceKeys: [8] });
    expect(Array.from(second.codes)).toEqual(Array.from(all.codes.subarray(4 * cells, 8 * cells)));
  });
});

describe('lsgs calibration', () => {
  it('stores λs ≥ λ, rounds, the mask flag, a sample calibration and a positive pixel scale', () => {
    const cal = readLsgsCalibration(weights);
    expect(cal.lambdaS).toBeGreaterThanOrEqual(cal.lambdaP);
    expect(cal.rounds).toBe(2);
    expect(cal.foregroundMask).toBe(true);
    expect(cal.sampleCalibration.normalScores.length).toBe(3);
    expect(cal.pixelScale).toBeGreaterThan(0);
    expect(cal.scoring).toBeUndefined();
    expect(cal.heldOut?.thresholdCodes).toBe('foreground');
    expect(cal.heldOut?.resampledShare).toBeGreaterThanOrEqual(0);
  });

  it('calibrate lsgs --set stores the chain and fits the sample calibration on its aggregate', async () => {
    const dir = join(root, 'weights-chain');
    saveTinyLsgs(dir, 21);
    const calibrate = (argv: string[]) => {
      const program = new Command().exitOverride();
      registerCalibrate(program);
      return program.parseAsync(argv, { from: 'user' });
    };
    const stderr = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    const args = ['calibrate', 'lsgs', '--weights', dir, '--data', normals, '--slices', 'every:4', '--copies', '3', '--rounds', '2', '--pixel-volumes', '1', '--workers', '0', '--engine', 'tfjs'];
    try {
      await calibrate([...args, '--set', 'sample=localmax', '--set', 'minPool=3,3,1', '--set', 'mask=body']);
      await expect(calibrate([...args, '--set', 'lambda=3'])).rejects.toThrow(/lambda: calibrate lsgs takes only the scoring keys/);
    } finally {
      process.stderr.write = stderr;
    }
    const cal = readLsgsCalibration(dir);
    const reference = readLsgsCalibration(weights);
    expect(cal.scoring).toEqual({ smoothing: { min: [3, 3, 1], avg: [7, 7, 17] }, mask: 'body', sample: 'localmax', sampleTop: 0.0005 });
    expect(cal.lambdaS).toBeCloseTo(reference.lambdaS, 4); // the same foreground quantile (engines differ by ~1e-6)
    // local maxima of NLL − λs are nats per code, not sums over thousands of codes
    expect(Math.max(...cal.sampleCalibration.normalScores)).toBeLessThan(Math.min(...reference.sampleCalibration.normalScores));
    expect(cal.pixelScale).not.toBe(reference.pixelScale);
    // predict applies the stored chain: a normal held-out volume scores as its own calibration says
    const predictor = lsgsPredictor(await loadLsgsModel(dir, { engine: 'tfjs' }), { workers: 0 });
    try {
      const { volume } = await readNifti(join(normals, 'normal_1.nii.gz'));
      const score = await predictor.sampleScore!(volume, { name: 'n', seed: 0, log: silent });
      const raws = cal.sampleCalibration.normalScores;
      expect(raws.some((r) => Math.abs(applySampleCalibration(cal.sampleCalibration, r) - score) < 1e-9)).toBe(true);
    } finally {
      await predictor.dispose?.();
    }
  });
});

describe('lsgs normal references', () => {
  const calibrate = async (dir: string, extra: string[]): Promise<void> => {
    const program = new Command().exitOverride();
    registerCalibrate(program);
    const stderr = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      await program.parseAsync(['calibrate', 'lsgs', '--weights', dir, '--data', normals, '--slices', 'every:4', '--copies', '2', '--rounds', '2', '--workers', '0', '--engine', 'tfjs', ...extra], { from: 'user' });
    } finally {
      process.stderr.write = stderr;
    }
  };

  it('calibrate lsgs --reference-data builds the NLL reference; interior and sum+interior score against it', async () => {
    const dir = join(root, 'weights-interior');
    saveTinyLsgs(dir, 21);
    const refs = join(root, 'lsgs-reference-normals');
    mkdirSync(refs);
    for (let i = 0; i < 2; i++) await writeNifti(join(refs, `ref_${i}.nii.gz`), tinyBrain(shape, 400 + i));
    await expect(calibrate(dir, ['--pixel-volumes', '0', '--set', 'sample=interior'])).rejects.toThrow(/sample=interior needs the transformer's NLL reference/);
    await expect(calibrate(dir, ['--pixel-volumes', '0', '--set', 'sample=interior', '--reference-data', normals])).rejects.toThrow(/share 3 volume/);
    await calibrate(dir, ['--pixel-volumes', '0', '--set', 'sample=interior', '--reference-data', refs]);
    const record = readLsgsNllReference(dir)!;
    expect(record.files).toHaveLength(2);
    expect(record.prior).toBe(transformerFingerprint(dir));
    expect(record.reference.mean.some((v) => v > 0)).toBe(true);
    const interior = readLsgsCalibration(dir);
    expect(interior.scoring?.sample).toBe('interior');
    expect(interior.heldOut?.nllReferenceVolumes).toBe(2);
    // the combined aggregate: both parts calibrated on the same normals, the raw score is the larger calibrated part
    await calibrate(dir, ['--pixel-volumes', '0', '--set', 'sample=sum+interior']);
    const both = readLsgsCalibration(dir);
    expect(Object.keys(both.sampleParts ?? {}).sort()).toEqual(['interior', 'sum']);
    expect(both.sampleParts!.interior!.normalScores).toEqual(interior.sampleCalibration.normalScores);
    for (const raw of both.sampleCalibration.normalScores) expect(raw).toBeGreaterThanOrEqual(0.25 - 1e-12);
    const volume = tinyBrain(shape, 200, true);
    const combined = lsgsPredictor(await loadLsgsModel(dir, { engine: 'tfjs' }), { workers: 0 });
    const interiorOnly = lsgsPredictor(await loadLsgsModel(dir, { engine: 'tfjs' }), { workers: 0, settings: { sample: 'interior' } });
    try {
      const score = await combined.sampleScore!(volume, { name: 'a.nii.gz', seed: 0, log: silent });
      expect(score).toBeGreaterThanOrEqual(0);
      expect(score).toBeLessThanOrEqual(1);
      // another aggregate at predict time takes its part's calibration, without a warning
      const logs: string[] = [];
      const fromPart = await interiorOnly.sampleScore!(volume, { name: 'a.nii.gz', seed: 0, log: (l) => logs.push(l) });
      const raw = Number(/raw (-?[0-9.]+)/.exec(logs.find((l) => /interior\): raw/.test(l))!)![1]);
      expect(fromPart).toBeCloseTo(applySampleCalibration(both.sampleParts!.interior!, raw), 2);
      expect(logs.some((l) => /warning/.test(l))).toBe(false);
    } finally {
      await combined.dispose?.();
      await interiorOnly.dispose?.();
    }
    // a combined calibration without its parts is refused when read; a missing reference when the predictor is built
    const text = readFileSync(join(dir, 'lsgs-calibration.json'), 'utf8');
    const { sampleParts: _dropped, ...withoutParts } = JSON.parse(text) as Record<string, unknown>;
    writeFileSync(join(dir, 'lsgs-calibration.json'), JSON.stringify(withoutParts));
    await expect(loadLsgsModel(dir, { engine: 'tfjs' })).rejects.toThrow(/needs sampleParts for sum and interior/);
    writeFileSync(join(dir, 'lsgs-calibration.json'), text);
    unlinkSync(join(dir, 'lsgs-nll-reference.json'));
    const model = await loadLsgsModel(dir, { engine: 'tfjs' });
    try {
      expect(() => lsgsPredictor(model, { workers: 0 })).toThrow(/lsgs-nll-reference\.json/);
    } finally {
      await model.engine.dispose();
      disposeLsgsNetworks(model.nets);
    }
  }, 60_000);

  it('calibrate lsgs --set reference=on builds the residual reference; the pixel map is the standardised excess over it', async () => {
    const dir = join(root, 'weights-residual');
    saveTinyLsgs(dir, 21);
    const refs = join(root, 'lsgs-residual-normals');
    mkdirSync(refs);
    for (let i = 0; i < 2; i++) await writeNifti(join(refs, `ref_${i}.nii.gz`), tinyBrain(shape, 500 + i));
    await expect(calibrate(dir, ['--pixel-volumes', '1', '--set', 'reference=on'])).rejects.toThrow(/reference=on needs the normal residual reference/);
    await calibrate(dir, ['--pixel-volumes', '1', '--set', 'reference=on', '--set', 'referenceFloor=0.05', '--reference-data', refs]);
    const record = readLsgsResidualReference(dir)!;
    expect(record.files).toHaveLength(2);
    expect(record.networks).toBe(lsgsNetworksFingerprint(dir));
    const cal = readLsgsCalibration(dir);
    expect(cal.scoring).toMatchObject({ reference: true, referenceFloor: 0.05 });
    expect(record.recipe).toMatchObject({ lambdaP: cal.lambdaP, copies: 2, rounds: 2, foregroundMask: true });
    const volume = tinyBrain(shape, 200, true);
    const ctx = { name: 'a.nii.gz', seed: 5, log: silent };
    const standardised = lsgsPredictor(await loadLsgsModel(dir, { engine: 'tfjs' }), { workers: 0, settings: { lambda: '-1' } });
    const plain = lsgsPredictor(await loadLsgsModel(dir, { engine: 'tfjs' }), { workers: 0, settings: { lambda: '-1', reference: 'off' } });
    try {
      const z = await standardised.pixelScore!(volume, ctx);
      const raw = await plain.pixelScore!(volume, ctx);
      expect(z.every((v) => v >= 0 && v < 1)).toBe(true);
      // the same restorations: zero where the raw map is; places without excess keep the raw order below the band
      let inBand = 0;
      for (let i = 0; i < raw.length; i++) {
        if (raw[i] === 0) expect(z[i]).toBe(0);
        if (z[i]! > 0 && z[i]! < ZERO_EXCESS_BAND) inBand++;
      }
      expect(raw.some((v) => v > 0)).toBe(true);
      expect(inBand + z.filter((v) => v >= ZERO_EXCESS_BAND).length).toBeGreaterThan(0);
      expect(Array.from(z)).not.toEqual(Array.from(raw));
    } finally {
      await standardised.dispose?.();
      await plain.dispose?.();
    }
    unlinkSync(join(dir, 'lsgs-residual-reference.json'));
    const model = await loadLsgsModel(dir, { engine: 'tfjs' });
    try {
      expect(() => lsgsPredictor(model, { workers: 0 })).toThrow(/lsgs-residual-reference\.json/);
    } finally {
      await model.engine.dispose();
      disposeLsgsNetworks(model.nets);
    }
  }, 60_000);
});

describe('lsgs --set overrides at predict time', () => {
  it('mask=body zeroes the map outside the body and keeps it inside; smoothing in voxels changes it', async () => {
    const volume = tinyBrain(shape, 300, true);
    const ctx = { name: 'x.nii.gz', seed: 12, log: silent };
    const base = lsgsPredictor(await loadLsgsModel(weights, { engine: 'tfjs' }), { workers: 0 });
    const masked = lsgsPredictor(await loadLsgsModel(weights, { engine: 'tfjs' }), { workers: 0, settings: { mask: 'body', lambda: '-1' } });
    const eager = lsgsPredictor(await loadLsgsModel(weights, { engine: 'tfjs' }), { workers: 0, settings: { lambda: '-1' } });
    const inplane = lsgsPredictor(await loadLsgsModel(weights, { engine: 'tfjs' }), { workers: 0, settings: { lambda: '-1', minPool: '3,3,1', avgPool: '7,7,1' } });
    try {
      const plain = await eager.pixelScore!(volume, ctx);
      const m = await masked.pixelScore!(volume, ctx);
      const body = bodyMask(volume.data, volume.shape);
      let wrong = 0;
      for (let i = 0; i < m.length; i++) if (m[i] !== (body[i] === 1 ? plain[i] : 0)) wrong++;
      expect(wrong).toBe(0);
      expect(body.some((b) => b === 0)).toBe(true);
      expect(Array.from(await inplane.pixelScore!(volume, ctx))).not.toEqual(Array.from(plain));
      expect(Array.from(await base.pixelScore!(volume, ctx))).not.toEqual(Array.from(plain)); // λ overridden
    } finally {
      for (const p of [base, masked, eager, inplane]) await p.dispose?.();
    }
  });
});

describe('lsgs predictor through the MOOD contract', () => {
  it('writes valid sample and pixel outputs, identical for the same seed, zero outside the head', async () => {
    // λ below every NLL: every code of every slice is resampled, so every slice gets a non-zero residual.
    const eager = join(root, 'weights-eager');
    saveTinyLsgs(eager, 21);
    writeLsgsCalibration(eager, { ...readLsgsCalibration(weights), lambdaP: -1 });
    const predictor = await METHODS.lsgs!(eager);
    try {
      for (const task of ['sample', 'pixel'] as const) {
        const summary = await runPrediction({ task, inDir: cases, outDir: join(root, `out-${task}`), predictor, seed: 3, log: silent });
        expect(summary.failed).toEqual([]);
        expect(summary.written).toEqual(['a.nii.gz', 'b.nii.gz']);
      }
      const again = join(root, 'out-pixel-again');
      await runPrediction({ task: 'pixel', inDir: cases, outDir: again, predictor, seed: 3, log: silent });
      for (const name of ['a.nii.gz', 'b.nii.gz']) {
        const score = Number(readFileSync(join(root, 'out-sample', `${name}.txt`), 'utf8'));
        expect(score).toBeGreaterThanOrEqual(0);
        expect(score).toBeLessThanOrEqual(1);
        const { volume } = await readNifti(join(root, 'out-pixel', name));
        expect(volume.shape).toEqual(shape);
        expect(volume.data.every((v) => v >= 0 && v <= 1)).toBe(true);
        expect(volume.data.some((v) => v > 0)).toBe(true);
        // The corner voxel is background in every slice: the foreground mask keeps it at 0.
        expect(volume.data[0]).toBe(0);
        expect(readFileSync(join(again, name))).toEqual(readFileSync(join(root, 'out-pixel', name)));
      }
    } finally {
      await predictor.dispose?.();
    }
  });

  it('the predict command (compiled CLI, child process) writes pixel maps on the input grid, same bytes as in-process', async () => {
    const eager = join(root, 'weights-eager');
    const out = join(root, 'out-cli');
    execFileSync(process.execPath, [cliEntryPath(), 'predict', '--task', 'pixel', '--region', 'brain', '-i', cases, '-o', out, '--method', 'lsgs', '--weights', eager, '--seed', '3'], { stdio: 'pipe' });
    for (const name of ['a.nii.gz', 'b.nii.gz']) {
      const input = await readNifti(join(cases, name));
      const pred = await readNifti(join(out, name));
      expect(pred.volume.shape).toEqual(input.volume.shape);
      expect(pred.volume.affine).toEqual(input.volume.affine);
      expect(readFileSync(join(out, name))).toEqual(readFileSync(join(root, 'out-pixel', name)));
    }
  });

  it('workers give the same pixel map as the in-process run (TF.js)', async () => {
    const volume = tinyBrain(shape, 300, true);
    const ctx = { name: 'x.nii.gz', seed: 12, log: silent };
    const inProcess = lsgsPredictor(await loadLsgsModel(weights, { engine: 'tfjs' }), { workers: 0 });
    const pooled = lsgsPredictor(await loadLsgsModel(weights, { engine: 'tfjs' }), { workers: 2 });
    try {
      const a = await inProcess.pixelScore!(volume, ctx);
      const b = await pooled.pixelScore!(volume, ctx);
      expect(Array.from(b)).toEqual(Array.from(a));
    } finally {
      await inProcess.dispose?.();
      await pooled.dispose?.();
    }
  });

  it('names the missing calibration and the missing transformer', async () => {
    const dir = join(root, 'broken');
    saveTinyLsgs(dir, 1);
    await expect(loadLsgsModel(dir)).rejects.toThrow(/lsgs-calibration\.json: missing/);
    const nets = loadLsgsNetworks(dir);
    disposeLsgsNetworks(nets);
    unlinkSync(join(dir, 'transformer.bin'));
    expect(() => loadLsgsNetworks(dir)).toThrow(/transformer\.bin: missing/);
  });
});
