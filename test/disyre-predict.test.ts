/**
 * The `disyre` method end to end on small volumes: a tiny random network, `calibrateDisyre` on two
 * held-out normals, then the MOOD outputs of both tasks through `runPrediction` (the predict
 * contract: one score in [0, 1] per case, pixel maps of the input's shape in [0, 1], zero outside the
 * body), the same outputs on ONNX Runtime and TF.js, the scoring settings, and clear errors.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { readNifti, writeNifti } from '../src/io/nifti.js';
import { calibrateDisyre } from '../src/methods/disyre/calibrate.js';
import { DISYRE_PRESETS } from '../src/methods/disyre/config.js';
import { createDisyrePredictor, readDisyreCalibration, readDisyreReference, writeDisyreCalibration, writeDisyreReference } from '../src/methods/disyre/model.js';
import { cpSync, writeFileSync } from 'node:fs';
import { DEFAULT_DISYRE_SCORING, disyreScoring } from '../src/methods/disyre/settings.js';
import { initDisyre } from '../src/methods/disyre/unet.js';
import { requireScore } from '../src/methods/index.js';
import { disposeParams } from '../src/models/params.js';
import { saveModel } from '../src/models/weights.js';
import { runPrediction } from '../src/mood/run.js';
import { tinyBrain } from './helpers/score-fixtures.js';

const silent = () => undefined;
const CFG = DISYRE_PRESETS.tiny;
const SHAPE = [20, 18, 24] as const;

describe('disyre predict contract', () => {
  const root = mkdtempSync(join(tmpdir(), 'moodlsr-disyre-'));
  const weights = join(root, 'weights');
  const cases = join(root, 'cases');
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  beforeAll(async () => {
    await initEngine({ prefer: 'cpu', log: silent });
    const params = initDisyre(CFG, 5);
    const rng = createRng(6);
    for (const [name, v] of Object.entries(params)) if (/\.b$|^out\./.test(name)) v.assign(tf.add(v, tf.tensor(Array.from({ length: v.size }, () => 0.2 * rng.normal()), v.shape)));
    saveModel(weights, 'disyre', { kind: 'disyre', config: CFG, params });
    disposeParams(params);
    const normals = join(root, 'normals');
    for (const dir of [normals, cases]) mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 2; i++) await writeNifti(join(normals, `normal_${i}.nii.gz`), tinyBrain(SHAPE, 100 + i));
    await writeNifti(join(cases, 'a.nii.gz'), tinyBrain(SHAPE, 200, true));
    await writeNifti(join(cases, 'b.nii.gz'), tinyBrain(SHAPE, 201));
    const files = readdirSync(normals).map((f) => join(normals, f));
    const scoring = disyreScoring(DEFAULT_DISYRE_SCORING, { every: '2', levels: '0.5;1' });
    writeDisyreCalibration(weights, (await calibrateDisyre({ weightsDir: weights, files, region: "brain", scoring, engine: "onnx", log: silent })).calibration);
  });

  it('stores the calibration with its scoring', () => {
    const cal = readDisyreCalibration(weights);
    expect(cal.scoring.every).toBe(2);
    expect(cal.scoring.levels).toEqual([0.5, 1]);
    expect(cal.sample.normalScores).toHaveLength(2);
  });

  it('writes sample scores in [0, 1] and pixel maps of the input shape in [0, 1], zero outside the body; ONNX Runtime = TF.js', async () => {
    const outputs: Record<string, { sample: number[]; pixel: Float32Array[] }> = {};
    for (const engine of ['onnx', 'tfjs'] as const) {
      const predictor = await createDisyrePredictor(weights, { engine, log: silent });
      const result: { sample: number[]; pixel: Float32Array[] } = { sample: [], pixel: [] };
      try {
        for (const task of ['sample', 'pixel'] as const) {
          const out = join(root, `${engine}-${task}`);
          const summary = await runPrediction({ task, inDir: cases, outDir: out, predictor, seed: 1, log: silent });
          expect(summary.failed).toEqual([]);
          for (const name of ['a.nii.gz', 'b.nii.gz']) {
            if (task === 'sample') result.sample.push(Number(readFileSync(join(out, `${name}.txt`), 'utf8')));
            else {
              const input = (await readNifti(join(cases, name))).volume;
              const { volume } = await readNifti(join(out, name));
              expect(volume.shape).toEqual(input.shape);
              expect(volume.data.every((v) => v >= 0 && v <= 1)).toBe(true);
              // Empty space far from the body (the volume's corners) scores 0.
              expect(volume.data[0]).toBe(0);
              expect(volume.data[volume.data.length - 1]).toBe(0);
              expect(volume.data.some((v) => v > 0)).toBe(true);
              result.pixel.push(volume.data);
            }
          }
        }
      } finally {
        await predictor.dispose?.();
      }
      for (const s of result.sample) expect(s >= 0 && s <= 1).toBe(true);
      outputs[engine] = result;
    }
    const [a, b] = [outputs.onnx!, outputs.tfjs!];
    a.sample.forEach((s, i) => expect(Math.abs(s - b.sample[i]!)).toBeLessThan(1e-3));
    a.pixel.forEach((p, i) => {
      let diff = 0;
      for (let k = 0; k < p.length; k++) diff = Math.max(diff, Math.abs(p[k]! - b.pixel[i]![k]!));
      expect(diff).toBeLessThan(1e-3);
    });
  });

  it('takes scoring settings, refusing bad values by key', async () => {
    expect(requireScore('disyre').method.settings!.map((s) => s.key)).toEqual(['levels', 'every', 'min', 'avg', 'mask', 'fraction', 'reference', 'referenceFloor', 'zScale', 'map']);
    await expect(createDisyrePredictor(weights, { settings: { map: 'segmentation' }, log: silent })).rejects.toThrow(/disyre\.json.*segmentation head/);
    await expect(createDisyrePredictor(weights, { settings: { map: 'both' }, log: silent })).rejects.toThrow(/--set map/);
    await expect(createDisyrePredictor(weights, { settings: { every: 'x' }, log: silent })).rejects.toThrow(/--set every/);
    await expect(createDisyrePredictor(weights, { settings: { levels: '0;1' }, log: silent })).rejects.toThrow(/--set levels/);
    expect(() => disyreScoring(DEFAULT_DISYRE_SCORING, { foo: '1' })).toThrow(/no such setting/);
    const unmasked = await createDisyrePredictor(weights, { engine: 'onnx', settings: { mask: 'off', every: '3' }, log: silent });
    try {
      const { volume } = await readNifti(join(cases, 'b.nii.gz'));
      const map = await unmasked.pixelScore!(volume, { name: 'b.nii.gz', seed: 0, log: silent });
      expect(map.length).toBe(volume.data.length);
      expect(map[0]).toBeGreaterThan(0); // no mask: the corner keeps the network's residual
    } finally {
      await unmasked.dispose?.();
    }
  });

  it('standardises the map by a normal residual reference built from other normals; reference=off is the raw map; an older calibration reads as no reference', async () => {
    const withRef = join(root, 'weights-ref');
    cpSync(weights, withRef, { recursive: true });
    const others = join(root, 'other-normals');
    mkdirSync(others, { recursive: true });
    for (let i = 0; i < 3; i++) await writeNifti(join(others, `normal_${i}.nii.gz`), tinyBrain(SHAPE, 300 + i));
    const scoring = disyreScoring(DEFAULT_DISYRE_SCORING, { every: '2', levels: '0.5;1' });
    const held = readdirSync(join(root, 'normals')).map((f) => join(root, 'normals', f));
    const { calibration, builtReference } = await calibrateDisyre({
      weightsDir: withRef, files: held, region: 'brain', scoring, engine: 'onnx', log: silent,
      referenceFiles: readdirSync(others).map((f) => join(others, f)),
    });
    expect(builtReference!.reference.volumes).toBe(3);
    await writeDisyreReference(withRef, builtReference!);
    writeDisyreCalibration(withRef, calibration);
    const back = readDisyreReference(withRef)!;
    expect(back.reference.grid).toEqual([...builtReference!.reference.grid]);
    expect(back.scoring.levels).toEqual([0.5, 1]);
    // float16 on disk
    back.reference.mean.forEach((v, i) => expect(Math.abs(v - builtReference!.reference.mean[i]!)).toBeLessThanOrEqual(1e-3 * Math.abs(v) + 1e-7));
    const { volume } = await readNifti(join(cases, 'a.nii.gz'));
    const ctx = { name: 'a.nii.gz', seed: 0, log: silent };
    const mapOf = async (dir: string, settings: Record<string, string> = {}) => {
      const p = await createDisyrePredictor(dir, { engine: 'onnx', settings, log: silent });
      try {
        return await p.pixelScore!(volume, ctx);
      } finally {
        await p.dispose?.();
      }
    };
    const standardised = await mapOf(withRef);
    const raw = await mapOf(withRef, { reference: 'off' });
    expect(raw).toEqual(await mapOf(weights));
    expect(standardised).not.toEqual(raw);
    expect(standardised.every((v) => v >= 0 && v < 1)).toBe(true);
    expect(standardised[0]).toBe(0);
    expect(standardised.some((v, i) => v === 0 && raw[i]! > 0)).toBe(true); // at or below the normal mean
    // a calibration file written before the reference existed: its scoring reads as reference off
    const old = JSON.parse(readFileSync(join(withRef, 'disyre-calibration.json'), 'utf8')) as { scoring: Record<string, unknown> };
    for (const k of ['reference', 'referenceFloor', 'zScale']) delete old.scoring[k];
    writeFileSync(join(withRef, 'disyre-calibration.json'), JSON.stringify(old));
    expect(readDisyreCalibration(withRef).scoring.reference).toBe(false);
    expect(await mapOf(withRef)).toEqual(raw);
  });

  it('with the segmentation head: map=segmentation, mean and max score from its probabilities (ONNX Runtime = TF.js), mean and max combine it with the residual map', async () => {
    const segWeights = join(root, 'weights-seg');
    const segCfg = { ...CFG, segmentationWeight: 0.1 };
    const params = initDisyre(segCfg, 5);
    const rng = createRng(6);
    for (const [name, v] of Object.entries(params)) if (/\.b$|^out\.|^seg\./.test(name)) v.assign(tf.add(v, tf.tensor(Array.from({ length: v.size }, () => 0.2 * rng.normal()), v.shape)));
    saveModel(segWeights, 'disyre', { kind: 'disyre', config: segCfg, params });
    disposeParams(params);
    const held = readdirSync(join(root, 'normals')).map((f) => join(root, 'normals', f));
    const scoring = disyreScoring(DEFAULT_DISYRE_SCORING, { every: '2', levels: '0.5;1', map: 'segmentation' });
    const { calibration } = await calibrateDisyre({ weightsDir: segWeights, files: held, region: 'brain', scoring, engine: 'onnx', log: silent });
    writeDisyreCalibration(segWeights, calibration);
    const { volume } = await readNifti(join(cases, 'a.nii.gz'));
    const maps: Record<string, Float32Array> = {};
    for (const [key, engine, map] of [['seg-onnx', 'onnx', 'segmentation'], ['seg-tfjs', 'tfjs', 'segmentation'], ['mean', 'onnx', 'mean'], ['max', 'onnx', 'max'], ['residual', 'onnx', 'residual']] as const) {
      const predictor = await createDisyrePredictor(segWeights, { engine, settings: { map }, log: silent });
      try {
        maps[key] = await predictor.pixelScore!(volume, { name: 'a.nii.gz', seed: 0, log: silent });
        const sample = await predictor.sampleScore!(volume, { name: 'a.nii.gz', seed: 0, log: silent });
        expect(sample >= 0 && sample <= 1).toBe(true);
      } finally {
        await predictor.dispose?.();
      }
    }
    const seg = maps['seg-onnx']!;
    expect(seg.every((v) => v >= 0 && v < 1)).toBe(true);
    expect(seg.some((v) => v > 0)).toBe(true);
    for (let i = 0; i < seg.length; i++) {
      expect(Math.abs(seg[i]! - maps['seg-tfjs']![i]!)).toBeLessThan(1e-3);
      // max is taken on the slice stack, then interpolated between slices: at least the larger of the two maps.
      expect(maps.max![i]!).toBeGreaterThanOrEqual(Math.max(seg[i]!, maps.residual![i]!) - 1e-5);
      expect(maps.mean![i]!).toBeCloseTo(0.5 * (seg[i]! + maps.residual![i]!), 5);
    }
    expect(seg.some((v, i) => Math.abs(v - maps.residual![i]!) > 1e-3)).toBe(true);
  });

  it('names the missing file', async () => {
    const empty = join(root, 'empty');
    mkdirSync(empty, { recursive: true });
    await expect(createDisyrePredictor(empty, { log: silent })).rejects.toThrow(/disyre-calibration\.json/);
  });
});
