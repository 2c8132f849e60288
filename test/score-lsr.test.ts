import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { initEngine } from '../src/engine/backend.js';
import { applySampleCalibration } from '../src/score/calibration.js';
import { InputFileError } from '../src/errors.js';
import { readNifti, writeNifti } from '../src/io/nifti.js';
import { runPrediction } from '../src/mood/run.js';
import { registerCalibrate } from '../src/cli/calibrate.js';
import { calibrateLsr, writeLsrCalibration } from '../src/methods/lsr/calibrate.js';
import { calibrationPath, combinedSampleRaw, loadLsrModel, lsrPredictor, readLsrCalibration } from '../src/methods/lsr/model.js';
import { disposeLsrNetworks, loadLsrNetworks } from '../src/methods/lsr/networks.js';
import { networksFingerprint, priorFingerprint, readLsrNllReference } from '../src/methods/lsr/nll-reference.js';
import { readLsrResidualReference, ZERO_EXCESS_BAND } from '../src/methods/lsr/residual-reference.js';
import { saveTinyNetworks, tinyBrain, tinyNetworks } from './helpers/score-fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'moodlsr-score-lsr-'));
const weights = join(root, 'weights');
const normals = join(root, 'normals');
const cases = join(root, 'cases');
const shape = [20, 18, 24] as const;
const silent = () => undefined;

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: silent });
  const nets = tinyNetworks(21);
  saveTinyNetworks(weights, nets);
  disposeLsrNetworks(nets);
  mkdirSync(normals);
  mkdirSync(cases);
  for (let i = 0; i < 3; i++) await writeNifti(join(normals, `normal_${i}.nii.gz`), tinyBrain(shape, 100 + i));
  await writeNifti(join(cases, 'a.nii.gz'), tinyBrain(shape, 200, true));
  await writeNifti(join(cases, 'b.nii.gz'), tinyBrain(shape, 201));
  const { calibration } = await calibrateLsr({
    weightsDir: weights,
    files: readdirSync(normals).map((f) => join(normals, f)),
    region: 'brain',
    slices: { every: 4 },
    copies: 3,
    pixelVolumes: 1,
    seed: 0,
    workers: 0,
    log: silent,
  });
  writeLsrCalibration(weights, calibration);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('lsr calibration', () => {
  it('stores λs ≥ λp, a sample calibration and a positive pixel scale', () => {
    const cal = readLsrCalibration(weights);
    expect(cal.lambdaS).toBeGreaterThanOrEqual(cal.lambdaP);
    expect(cal.sampleCalibration.normalScores.length).toBe(3);
    expect(cal.pixelScale).toBeGreaterThan(0);
    expect(cal.slices).toEqual({ every: 4 });
    expect(cal.copies).toBe(3);
  });

  it('the calibrate lsr command writes the file', async () => {
    const dir = join(root, 'cli-weights');
    const nets = tinyNetworks(21);
    saveTinyNetworks(dir, nets);
    disposeLsrNetworks(nets);
    const program = new Command().exitOverride();
    registerCalibrate(program);
    await program.parseAsync(['calibrate', 'lsr', '--weights', dir, '--data', normals, '--slices', 'every:6', '--copies', '2', '--pixel-volumes', '0', '--workers', '0'], { from: 'user' });
    const cal = readLsrCalibration(dir);
    expect(cal.slices).toEqual({ every: 6 });
    expect(cal.pixelScale).toBe(1);
    // The default chain is stored with it: the local maximum of the NLL excess as the sample aggregate.
    expect(cal.scoring?.sample).toBe('localmax');
    expect(cal.heldOut?.thresholdCodes).toBe('foreground');
  });

  it('calibrate lsr --set stores the chosen chain and fits the sample calibration on that aggregate', async () => {
    const sumDir = join(root, 'cli-sum');
    const nets = tinyNetworks(21);
    saveTinyNetworks(sumDir, nets);
    disposeLsrNetworks(nets);
    const run = async (dir: string, extra: string[]): Promise<void> => {
      const program = new Command().exitOverride();
      registerCalibrate(program);
      await program.parseAsync(['calibrate', 'lsr', '--weights', dir, '--data', normals, '--slices', 'every:6', '--copies', '2', '--pixel-volumes', '0', '--workers', '0', ...extra], {
        from: 'user',
      });
    };
    await run(sumDir, ['--set', 'sample=sum', '--set', 'weighting=mean']);
    const sum = readLsrCalibration(sumDir);
    expect(sum.scoring).toMatchObject({ sample: 'sum', weighting: 'mean' });
    const localDir = join(root, 'cli-weights');
    const local = readLsrCalibration(localDir);
    // Same thresholds (same weights, data and slices), different raw sample scores: the sum is never below the local mean excess.
    expect(local.lambdaS).toBeCloseTo(sum.lambdaS, 6);
    expect(local.sampleCalibration.normalScores).not.toEqual(sum.sampleCalibration.normalScores);
    expect(Math.min(...sum.sampleCalibration.normalScores)).toBeGreaterThan(Math.max(...local.sampleCalibration.normalScores));
    await expect(run(sumDir, ['--set', 'lambdaS=3'])).rejects.toThrow(/scoring keys/);
    await expect(run(sumDir, ['--set', 'sample=top'])).rejects.toThrow(/sample=top is not calibrated/);
  });

  it('calibrate lsr --reference-data builds the NLL reference that sample=interior scores against', async () => {
    const dir = join(root, 'cli-interior');
    const nets = tinyNetworks(21);
    saveTinyNetworks(dir, nets);
    disposeLsrNetworks(nets);
    const refs = join(root, 'reference-normals');
    mkdirSync(refs);
    for (let i = 0; i < 2; i++) await writeNifti(join(refs, `ref_${i}.nii.gz`), tinyBrain(shape, 400 + i));
    const run = async (extra: string[]): Promise<void> => {
      const program = new Command().exitOverride();
      registerCalibrate(program);
      await program.parseAsync(['calibrate', 'lsr', '--weights', dir, '--data', normals, '--slices', 'every:6', '--copies', '2', '--pixel-volumes', '0', '--workers', '0', ...extra], { from: 'user' });
    };
    await expect(run(['--set', 'sample=interior'])).rejects.toThrow(/sample=interior needs the prior's NLL reference/);
    await expect(run(['--set', 'sample=interior', '--reference-data', normals])).rejects.toThrow(/share 3 volume/);
    await run(['--set', 'sample=interior', '--reference-data', refs]);
    const record = readLsrNllReference(dir)!;
    expect(record.files).toHaveLength(2);
    expect(record.prior).toBe(priorFingerprint(dir));
    expect(record.reference.volumes).toBe(2);
    // NLLs are positive, so is their mean at every place the reference holds
    expect(record.reference.mean.some((v) => v > 0)).toBe(true);
    const cal = readLsrCalibration(dir);
    expect(cal.scoring?.sample).toBe('interior');
    expect(cal.heldOut?.nllReferenceVolumes).toBe(2);
    const model = await loadLsrModel(dir, { engine: 'tfjs' });
    const predictor = lsrPredictor(model, { workers: 0 });
    try {
      const logs: string[] = [];
      const score = await predictor.sampleScore!(tinyBrain(shape, 200, true), { name: 'a.nii.gz', seed: 0, log: (l) => logs.push(l) });
      expect(score).toBeGreaterThanOrEqual(0);
      expect(score).toBeLessThanOrEqual(1);
      expect(logs.some((l) => /lsr sample \(.*, interior\)/.test(l))).toBe(true);
    } finally {
      await predictor.dispose?.();
    }
    // the combined aggregate: both parts calibrated; its raw score is the larger calibrated part
    await run(['--set', 'sample=sum+interior']);
    const both = readLsrCalibration(dir);
    expect(Object.keys(both.sampleParts ?? {}).sort()).toEqual(['interior', 'sum']);
    expect(both.sampleParts!.interior!.normalScores).toEqual(cal.sampleCalibration.normalScores);
    for (const raw of both.sampleCalibration.normalScores) expect(raw).toBeGreaterThanOrEqual(0.25 - 1e-12);
    expect(combinedSampleRaw([['sum', 1e9], ['interior', -1e9]], both)).toBeGreaterThan(0.99);
    expect(() => combinedSampleRaw([['localmax', 1]], both)).toThrow(/no sampleParts.localmax/);
    const combined = lsrPredictor(await loadLsrModel(dir, { engine: 'tfjs' }), { workers: 0 });
    try {
      const score = await combined.sampleScore!(tinyBrain(shape, 200, true), { name: 'a.nii.gz', seed: 0, log: silent });
      expect(score).toBeGreaterThanOrEqual(0);
      expect(score).toBeLessThanOrEqual(1);
    } finally {
      await combined.dispose?.();
    }
    // another aggregate at predict time takes its part's calibration: the same score as the interior calibration gives
    const interiorOnly = lsrPredictor(await loadLsrModel(dir, { engine: 'tfjs' }), { workers: 0, settings: { sample: 'interior' } });
    const logs: string[] = [];
    try {
      const fromPart = await interiorOnly.sampleScore!(tinyBrain(shape, 200, true), { name: 'a.nii.gz', seed: 0, log: (l) => logs.push(l) });
      const rawLine = logs.find((l) => /interior\): raw/.test(l))!;
      const raw = Number(/raw (-?[0-9.]+)/.exec(rawLine)![1]);
      expect(fromPart).toBeCloseTo(applySampleCalibration(both.sampleParts!.interior!, raw), 2);
      expect(logs.some((l) => /warning/.test(l))).toBe(false);
    } finally {
      await interiorOnly.dispose?.();
    }
    // a combined calibration without its parts is refused when read
    const text = readFileSync(join(dir, 'lsr-calibration.json'), 'utf8');
    const { sampleParts: _dropped, ...withoutParts } = JSON.parse(text) as Record<string, unknown>;
    writeFileSync(join(dir, 'lsr-calibration.json'), JSON.stringify(withoutParts));
    await expect(loadLsrModel(dir, { engine: 'tfjs' })).rejects.toThrow(/needs sampleParts for sum and interior/);
    writeFileSync(join(dir, 'lsr-calibration.json'), text);
    // without the reference the predictor is refused when built, naming the file it needs
    unlinkSync(join(dir, 'lsr-nll-reference.json'));
    const model2 = await loadLsrModel(dir, { engine: 'tfjs' });
    try {
      expect(() => lsrPredictor(model2, { workers: 0 })).toThrow(/lsr-nll-reference\.json/);
    } finally {
      await model2.engine.dispose();
      disposeLsrNetworks(model2.nets);
    }
  });
});

describe('lsr normal residual reference', () => {
  it('calibrate lsr --set reference=on builds it, and the pixel map is the standardised excess over it', async () => {
    const dir = join(root, 'cli-residual');
    const nets = tinyNetworks(21);
    saveTinyNetworks(dir, nets);
    disposeLsrNetworks(nets);
    const refs = join(root, 'residual-normals');
    mkdirSync(refs);
    for (let i = 0; i < 2; i++) await writeNifti(join(refs, `ref_${i}.nii.gz`), tinyBrain(shape, 500 + i));
    const run = async (extra: string[]): Promise<void> => {
      const program = new Command().exitOverride();
      registerCalibrate(program);
      await program.parseAsync(['calibrate', 'lsr', '--weights', dir, '--data', normals, '--slices', 'every:6', '--copies', '2', '--pixel-volumes', '1', '--workers', '0', '--engine', 'tfjs', ...extra], { from: 'user' });
    };
    await expect(run(['--set', 'reference=on'])).rejects.toThrow(/reference=on needs the normal residual reference/);
    await expect(run(['--set', 'reference=maybe'])).rejects.toThrow(/expected on or off/);
    await run(['--set', 'reference=on', '--set', 'referenceFloor=0.05', '--reference-data', refs]);
    const record = readLsrResidualReference(dir)!;
    expect(record.files).toHaveLength(2);
    expect(record.networks).toBe(networksFingerprint(dir));
    const cal = readLsrCalibration(dir);
    expect(cal.scoring).toMatchObject({ reference: true, referenceFloor: 0.05 });
    expect(record.recipe).toMatchObject({ lambdaP: cal.lambdaP, copies: 2, weighting: cal.scoring!.weighting });
    const volume = tinyBrain(shape, 200, true);
    const ctx = { name: 'a.nii.gz', seed: 5, log: silent };
    const standardised = lsrPredictor(await loadLsrModel(dir, { engine: 'tfjs' }), { workers: 0 });
    const plain = lsrPredictor(await loadLsrModel(dir, { engine: 'tfjs' }), { workers: 0, settings: { reference: 'off' } });
    try {
      const z = await standardised.pixelScore!(volume, ctx);
      const raw = await plain.pixelScore!(volume, ctx);
      expect(z.every((v) => v >= 0 && v < 1)).toBe(true);
      // the same restorations: zero where the raw map is; places without excess keep the raw order below the band
      let inBand = 0;
      for (let i = 0; i < raw.length; i++) {
        if (raw[i] === 0) expect(z[i]).toBe(0);
        if (z[i]! > 0 && z[i]! < ZERO_EXCESS_BAND) {
          expect(raw[i]).toBeGreaterThan(0);
          inBand++;
        }
      }
      expect(inBand).toBeGreaterThan(0);
      expect(Array.from(z)).not.toEqual(Array.from(raw));
    } finally {
      await standardised.dispose?.();
      await plain.dispose?.();
    }
    await expect(run(['--set', 'reference=on', '--set', 'referenceFloor=inf'])).rejects.toThrow(/positive finite number/);
    unlinkSync(join(dir, 'lsr-residual-reference.json'));
    const model = await loadLsrModel(dir, { engine: 'tfjs' });
    try {
      expect(() => lsrPredictor(model, { workers: 0 })).toThrow(/lsr-residual-reference\.json/);
    } finally {
      await model.engine.dispose();
      disposeLsrNetworks(model.nets);
    }
  });
});

describe('lsr predictor through the MOOD contract', () => {
  it('writes valid sample and pixel outputs, identical for the same seed', async () => {
    const model = await loadLsrModel(weights);
    const predictor = lsrPredictor(model, { workers: 0 });
    try {
      const logs: string[] = [];
      for (const task of ['sample', 'pixel'] as const) {
        const out = join(root, `out-${task}`);
        const summary = await runPrediction({ task, inDir: cases, outDir: out, predictor, seed: 3, log: (l) => logs.push(l) });
        expect(summary.failed).toEqual([]);
        expect(summary.written).toEqual(['a.nii.gz', 'b.nii.gz']);
      }
      for (const name of ['a.nii.gz', 'b.nii.gz']) {
        const score = Number(readFileSync(join(root, 'out-sample', `${name}.txt`), 'utf8'));
        expect(score).toBeGreaterThanOrEqual(0);
        expect(score).toBeLessThanOrEqual(1);
        const { volume } = await readNifti(join(root, 'out-pixel', name));
        expect(volume.shape).toEqual(shape);
        expect(volume.data.every((v) => v >= 0 && v <= 1)).toBe(true);
      }
      expect(logs.some((l) => /prior passes/.test(l))).toBe(true);
      const again = join(root, 'out-pixel-again');
      await runPrediction({ task: 'pixel', inDir: cases, outDir: again, predictor, seed: 3, log: silent });
      const first = await readNifti(join(root, 'out-pixel', 'a.nii.gz'));
      const second = await readNifti(join(again, 'a.nii.gz'));
      expect(Array.from(second.volume.data)).toEqual(Array.from(first.volume.data));
    } finally {
      await predictor.dispose?.();
    }
  });

  it('workers give the same pixel map as the in-process run', async () => {
    const volume = tinyBrain(shape, 300, true);
    const ctx = { name: 'x.nii.gz', seed: 12, log: silent };
    const inProcess = lsrPredictor(await loadLsrModel(weights, { engine: 'tfjs' }), { workers: 0 });
    const pooled = lsrPredictor(await loadLsrModel(weights, { engine: 'tfjs' }), { workers: 2 });
    try {
      const a = await inProcess.pixelScore!(volume, ctx);
      const b = await pooled.pixelScore!(volume, ctx);
      expect(Array.from(b)).toEqual(Array.from(a));
    } finally {
      await inProcess.dispose?.();
      await pooled.dispose?.();
    }
  });
});

describe('lsr weights folder errors', () => {
  it('names the missing calibration, manifest or binary', async () => {
    const dir = join(root, 'broken');
    const nets = tinyNetworks(1);
    saveTinyNetworks(dir, nets);
    disposeLsrNetworks(nets);
    await expect(loadLsrModel(dir)).rejects.toThrow(/lsr-calibration\.json: missing/);
    writeFileSync(calibrationPath(dir), '{"format": "something-else"}');
    await expect(loadLsrModel(dir)).rejects.toThrow(InputFileError);
    await expect(loadLsrModel(dir)).rejects.toThrow(/lsr-calibration\.json: not a moodlsr-lsr-calibration file/);
    unlinkSync(join(dir, 'pixelsnail.bin'));
    expect(() => loadLsrNetworks(dir)).toThrow(/pixelsnail\.bin: missing/);
    await expect(loadLsrModel(join(root, 'nowhere'))).rejects.toThrow(/weights folder does not exist/);
  });
});
