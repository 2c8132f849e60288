import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { readNifti, writeNifti } from '../src/io/nifti.js';
import { disposeParams, type ParamMap } from '../src/models/params.js';
import { initVae } from '../src/methods/vae/vae.js';
import { saveModel } from '../src/models/weights.js';
import { METHODS, methodNames } from '../src/methods/index.js';
import { PredictionSetupError, runPrediction } from '../src/mood/run.js';
import { registerCalibrate } from '../src/cli/calibrate.js';
import { calibrateVae } from '../src/methods/vae/calibrate.js';
import { loadVaeModel, readVaeCalibration, VAE_METHODS, vaePredictor, writeVaeCalibration } from '../src/methods/vae/model.js';
import {
  gaussianSmoothSlices,
  gaussianTaps,
  minMaxNormalise,
  vaeInputGradient,
  vaeSliceTerms,
  vaeStackScores,
  type VaeNetwork,
} from '../src/methods/vae/score.js';
import { makeVolume, type Affine, type Shape3, type Volume } from '../src/volume/volume.js';
import { TINY_VAE, tinyBrain } from './helpers/score-fixtures.js';
import { bodyMask } from '../src/volume/body-mask.js';
import { applySampleCalibration } from '../src/score/calibration.js';


const root = mkdtempSync(join(tmpdir(), 'moodlsr-score-vae-'));
const weights = join(root, 'weights');
const normals = join(root, 'normals');
const cases = join(root, 'cases');
const shape: Shape3 = [20, 18, 24];
const AFFINE: Affine = [
  [-1.2, 0, 0, 30.5],
  [0, 0.9, 0, -20.25],
  [0, 0, 1.5, 10],
  [0, 0, 0, 1],
];
const silent = () => undefined;

/** Random values for the zero-initialised conditioning weights and biases, so they matter. */
function tinyVae(seed: number): ParamMap {
  const params = initVae(TINY_VAE, seed);
  const rng = createRng(seed + 1);
  for (const [name, v] of Object.entries(params)) {
    if (/\.cond\.|\.b$/.test(name)) v.assign(tf.tensor(Array.from({ length: v.size }, () => 0.3 * rng.normal()), v.shape));
  }
  return params;
}

function withAffine(v: Volume): Volume {
  return makeVolume(v.shape, v.data, [1.2, 0.9, 1.5], AFFINE);
}

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: silent });
  const params = tinyVae(31);
  saveModel(weights, 'vae', { kind: 'vae', config: TINY_VAE, params });
  disposeParams(params);
  mkdirSync(normals);
  mkdirSync(cases);
  for (let i = 0; i < 3; i++) await writeNifti(join(normals, `normal_${i}.nii.gz`), tinyBrain(shape, 100 + i));
  await writeNifti(join(cases, 'a.nii.gz'), withAffine(tinyBrain(shape, 200, true)));
  await writeNifti(join(cases, 'b.nii.gz'), withAffine(tinyBrain(shape, 201)));
  const calibration = await calibrateVae({
    weightsDir: weights,
    files: readdirSync(normals).map((f) => join(normals, f)),
    region: 'brain',
    slices: { every: 4 },
    pixelVolumes: 1,
    workers: 0,
    log: silent,
  });
  writeVaeCalibration(weights, calibration);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('input-gradient maps', () => {
  for (const backend of ['wasm', 'cpu'] as const) {
    it(`∂KL/∂x and ∂rec/∂x equal central finite differences (${backend}); ∂ELBO/∂x is their sum`, async () => {
      await initEngine({ prefer: backend, log: silent });
      const params = tinyVae(41);
      const net: VaeNetwork = { cfg: { ...TINY_VAE, dropout: 0 }, params };
      try {
        const rng = createRng(42);
        const count = 2;
        const plane = 256;
        const images = Float32Array.from({ length: count * plane }, () => rng.normal());
        const positions = Float32Array.from([-0.3, 0.25]);
        const total = (x: Float32Array, term: 'kl' | 'rec'): number => {
          const t = vaeSliceTerms(net, x, positions);
          return Array.from(t[term]).reduce((a, v) => a + v, 0);
        };
        const grads = { kl: vaeInputGradient(net, images, positions, 'kl'), rec: vaeInputGradient(net, images, positions, 'rec') };
        const elbo = vaeInputGradient(net, images, positions, 'elbo');
        for (let i = 0; i < elbo.length; i++) expect(elbo[i]).toBeCloseTo(grads.kl[i]! + grads.rec[i]!, 4);
        for (const term of ['kl', 'rec'] as const) {
          const g = grads[term];
          const maxAbs = Math.max(...Array.from(g, Math.abs));
          expect(maxAbs).toBeGreaterThan(0);
          const byMagnitude = Array.from(g.keys()).sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!));
          const picks = [...byMagnitude.slice(0, 6), ...Array.from({ length: 6 }, () => rng.int(g.length))];
          const h = 1e-2;
          for (const i of picks) {
            const up = images.slice();
            const down = images.slice();
            up[i] += h;
            down[i] -= h;
            const fd = (total(up, term) - total(down, term)) / (2 * h);
            expect(Math.abs(fd - g[i]!), `${term} pixel ${i}: fd ${fd}, grad ${g[i]}`).toBeLessThan(0.02 * maxAbs + 0.05 * Math.abs(g[i]!));
          }
        }
      } finally {
        disposeParams(params);
        await initEngine({ prefer: 'wasm', log: silent });
      }
    });
  }

  it('a slice gets the same gradient whatever batch it is computed in', () => {
    const params = tinyVae(43);
    const net: VaeNetwork = { cfg: { ...TINY_VAE, dropout: 0 }, params };
    const rng = createRng(44);
    const images = Float32Array.from({ length: 3 * 256 }, () => rng.normal());
    const positions = Float32Array.from([-0.3, 0, 0.3]);
    const together = vaeInputGradient(net, images, positions, 'kl', 3);
    const alone = vaeInputGradient(net, images, positions, 'kl', 1);
    for (let i = 0; i < together.length; i++) expect(alone[i]).toBeCloseTo(together[i]!, 5);
    disposeParams(params);
  });
});

describe('smoothing and normalisation of the maps', () => {
  it('the separable Gaussian equals the normalised 7×7 σ = 3 kernel with zero padding', () => {
    const taps = gaussianTaps(3, 8);
    expect(taps.length).toBe(7);
    expect(taps.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 12);
    const rng = createRng(3);
    const h = 9;
    const w = 11;
    const data = Float32Array.from({ length: 2 * h * w }, () => rng.next());
    const fast = gaussianSmoothSlices(data, 2, h, w);
    let kernelSum = 0;
    const kernel: number[][] = [];
    for (let i = 0; i < 7; i++) {
      kernel.push([]);
      for (let j = 0; j < 7; j++) {
        const v = Math.exp(-((i - 3) ** 2 + (j - 3) ** 2) / 18);
        kernel[i]!.push(v);
        kernelSum += v;
      }
    }
    for (let s = 0; s < 2; s++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          let acc = 0;
          for (let i = 0; i < 7; i++) {
            for (let j = 0; j < 7; j++) {
              const yy = y + i - 3;
              const xx = x + j - 3;
              if (yy >= 0 && yy < h && xx >= 0 && xx < w) acc += (kernel[i]![j]! / kernelSum) * data[s * h * w + yy * w + xx]!;
            }
          }
          expect(fast[s * h * w + y * w + x]).toBeCloseTo(acc, 6);
        }
      }
    }
  });

  it('min–max normalisation spans [0, 1] and is all zeros for a constant map', () => {
    expect(Array.from(minMaxNormalise(Float32Array.from([2, 4, 3])))).toEqual([0, 1, 0.5]);
    expect(Array.from(minMaxNormalise(Float32Array.from([5, 5])))).toEqual([0, 0]);
  });

  it('combi is the smoothed normalised KL gradient times the per-pixel Gaussian NLL', () => {
    const params = tinyVae(45);
    const net: VaeNetwork = { cfg: { ...TINY_VAE, dropout: 0 }, params };
    const rng = createRng(46);
    const images = Float32Array.from({ length: 2 * 256 }, () => rng.normal());
    const positions = Float32Array.from([-0.2, 0.2]);
    const s = vaeStackScores(net, images, positions, ['combi', 'rec']);
    const g = vaeInputGradient(net, images, positions, 'kl');
    const weight = gaussianSmoothSlices(minMaxNormalise(g.map(Math.abs)), 2, 16, 16);
    const constant = Math.log(0.5) + 0.5 * Math.log(2 * Math.PI);
    for (let i = 0; i < images.length; i++) {
      const nll = (images[i]! - s.terms.xhat[i]!) ** 2 / (2 * 0.25) + constant;
      expect(s.maps.rec![i]).toBeCloseTo(nll - constant, 5);
      expect(s.maps.combi![i]).toBeCloseTo(weight[i]! * nll, 5);
    }
    disposeParams(params);
  });
});

describe('vae calibration', () => {
  it('stores one sample calibration per score and a positive pixel scale per map', () => {
    const cal = readVaeCalibration(weights);
    expect(cal.slices).toEqual({ every: 4 });
    for (const s of ['elbo', 'kl', 'rec'] as const) expect(cal.sample[s].normalScores).toHaveLength(3);
    for (const m of ['rec', 'elbograd', 'klgrad', 'recgrad', 'combi'] as const) expect(cal.pixelScale[m]).toBeGreaterThan(0);
    // ELBO = KL + rec for every held-out volume
    cal.sample.elbo.normalScores.forEach((e) => expect(e).toBeGreaterThan(0));
  });

  it('the calibrate vae command writes the file; a missing calibration is named', async () => {
    const dir = join(root, 'cli-weights');
    const params = tinyVae(31);
    saveModel(dir, 'vae', { kind: 'vae', config: TINY_VAE, params });
    disposeParams(params);
    await expect(loadVaeModel(dir)).rejects.toThrow(/vae-calibration\.json: missing/);
    const program = new Command().exitOverride();
    registerCalibrate(program);
    const stderr = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      await program.parseAsync(['calibrate', 'vae', '--weights', dir, '--data', normals, '--slices', 'every:6', '--pixel-volumes', '0'], { from: 'user' });
    } finally {
      process.stderr.write = stderr;
    }
    const cal = readVaeCalibration(dir);
    expect(cal.slices).toEqual({ every: 6 });
    expect(cal.pixelScale.combi).toBe(1);
    await expect(loadVaeModel(join(root, 'nowhere'))).rejects.toThrow(/weights folder does not exist/);
  });
});

describe('vae scoring chain', () => {
  it('calibrate vae --set stores the chain and fits the sample calibrations on its aggregate', async () => {
    const dir = join(root, 'chain-weights');
    const params = tinyVae(31);
    saveModel(dir, 'vae', { kind: 'vae', config: TINY_VAE, params });
    disposeParams(params);
    const calibrate = (argv: string[]) => {
      const program = new Command().exitOverride();
      registerCalibrate(program);
      return program.parseAsync(argv, { from: 'user' });
    };
    const stderr = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    const args = ['calibrate', 'vae', '--weights', dir, '--data', normals, '--slices', 'every:4', '--pixel-volumes', '1', '--workers', '0'];
    try {
      await calibrate([...args, '--set', 'sample=localmax', '--set', 'minPool=3,3,1', '--set', 'mask=body']);
      await expect(calibrate([...args, '--set', 'lambda=3'])).rejects.toThrow(/lambda: calibrate vae takes only the scoring keys/);
      await expect(calibrate([...args, '--set', 'sample=top'])).rejects.toThrow(/sample=top is not calibrated/);
    } finally {
      process.stderr.write = stderr;
    }
    const cal = readVaeCalibration(dir);
    const reference = readVaeCalibration(weights);
    expect(cal.scoring).toEqual({ smoothing: { min: [3, 3, 1], avg: [7, 7, 17] }, mask: 'body', sample: 'localmax', sampleTop: 0.0005 });
    expect(reference.scoring).toBeUndefined();
    for (const term of ['rec', 'kl', 'elbo'] as const) expect(cal.sample[term].normalScores).not.toEqual(reference.sample[term].normalScores);
    expect(cal.pixelScale.rec).not.toBe(reference.pixelScale.rec); // fitted on the in-plane min-pool
    // predict applies the stored aggregate: a held-out normal scores as its own calibration says
    const predictor = vaePredictor(await loadVaeModel(dir, { engine: 'tfjs' }), 'vae-kl', { workers: 0 });
    try {
      const { volume } = await readNifti(join(normals, 'normal_1.nii.gz'));
      const score = await predictor.sampleScore!(volume, { name: 'n', seed: 0, log: silent });
      expect(cal.sample.kl.normalScores.some((r) => Math.abs(applySampleCalibration(cal.sample.kl, r) - score) < 1e-9)).toBe(true);
    } finally {
      await predictor.dispose?.();
    }
  });

  it('--set at predict time: mask=body zeroes the map outside the body only; sample=localmax and sample=top change the score', async () => {
    const volume = withAffine(tinyBrain(shape, 300, true));
    const ctx = { name: 'x.nii.gz', seed: 12, log: silent };
    const make = async (settings: Record<string, string>) => vaePredictor(await loadVaeModel(weights, { engine: 'tfjs' }), 'vae-rec', { workers: 0, settings });
    const plain = await make({});
    const masked = await make({ mask: 'body' });
    const local = await make({ sample: 'localmax' });
    const top = await make({ sample: 'top', sampleTop: '0.01' });
    try {
      const a = await plain.pixelScore!(volume, ctx);
      const b = await masked.pixelScore!(volume, ctx);
      const body = bodyMask(volume.data, volume.shape);
      let wrong = 0;
      for (let i = 0; i < a.length; i++) if (b[i] !== (body[i] === 1 ? a[i] : 0)) wrong++;
      expect(wrong).toBe(0);
      const scores = [await plain.sampleScore!(volume, ctx), await local.sampleScore!(volume, ctx), await top.sampleScore!(volume, ctx)];
      for (const x of scores) expect(x).toBeGreaterThanOrEqual(0);
      expect(new Set(scores).size).toBe(3);
    } finally {
      for (const p of [plain, masked, local, top]) await p.dispose?.();
    }
  });
});

describe('vae-* methods through the MOOD contract', () => {
  it('are registered with the tasks they support', () => {
    for (const m of VAE_METHODS) expect(methodNames()).toContain(m.name);
    expect(VAE_METHODS.filter((m) => m.sample !== undefined).map((m) => m.name)).toEqual(['vae-rec', 'vae-elbo', 'vae-kl']);
    expect(VAE_METHODS.filter((m) => m.pixel !== undefined).map((m) => m.name)).toEqual(['vae-rec', 'vae-elbograd', 'vae-klgrad', 'vae-recgrad', 'vae-combi']);
  });

  it('the registry loads a vae-* predictor from a weights folder', async () => {
    const predictor = await METHODS['vae-klgrad']!(weights);
    try {
      expect(predictor.name).toBe('vae-klgrad');
      expect(predictor.tasks).toEqual(['pixel']);
    } finally {
      await predictor.dispose?.();
    }
    await expect(METHODS['vae-kl']!(join(root, 'nowhere'))).rejects.toThrow(/weights folder does not exist/);
  });

  it('every method writes valid outputs on the input grid, identical for the same seed; a task it lacks is refused', async () => {
    const input = await readNifti(join(cases, 'a.nii.gz'));
    for (const method of VAE_METHODS) {
      const predictor = vaePredictor(await loadVaeModel(weights), method.name, { workers: 0 });
      try {
        for (const task of ['sample', 'pixel'] as const) {
          const out = join(root, `out-${method.name}-${task}`);
          const supported = task === 'sample' ? method.sample !== undefined : method.pixel !== undefined;
          expect(predictor.tasks.includes(task)).toBe(supported);
          if (!supported) {
            await expect(runPrediction({ task, inDir: cases, outDir: out, predictor, seed: 3, log: silent })).rejects.toThrow(PredictionSetupError);
            continue;
          }
          const summary = await runPrediction({ task, inDir: cases, outDir: out, predictor, seed: 3, log: silent });
          expect(summary.failed).toEqual([]);
          expect(summary.written).toEqual(['a.nii.gz', 'b.nii.gz']);
          const again = join(root, `again-${method.name}-${task}`);
          await runPrediction({ task, inDir: cases, outDir: again, predictor, seed: 3, log: silent });
          for (const name of ['a.nii.gz', 'b.nii.gz']) {
            if (task === 'sample') {
              const text = readFileSync(join(out, `${name}.txt`), 'utf8');
              const score = Number(text);
              expect(score).toBeGreaterThanOrEqual(0);
              expect(score).toBeLessThanOrEqual(1);
              expect(readFileSync(join(again, `${name}.txt`), 'utf8')).toBe(text);
            } else {
              const first = readFileSync(join(out, name));
              expect(readFileSync(join(again, name)).equals(first)).toBe(true);
              const { volume, header } = await readNifti(join(out, name));
              expect(volume.shape).toEqual(shape);
              expect(volume.affine).toEqual(input.volume.affine);
              expect(header.srow).toEqual(input.header.srow);
              expect(volume.data.every((v) => v >= 0 && v <= 1)).toBe(true);
              expect(volume.data.some((v) => v > 0)).toBe(true);
            }
          }
        }
      } finally {
        await predictor.dispose?.();
      }
    }
  });

  it('workers give the same maps and sample terms as the in-process run (TF.js)', async () => {
    const volume = withAffine(tinyBrain(shape, 300, true));
    const ctx = { name: 'x.nii.gz', seed: 12, log: silent };
    for (const name of ['vae-combi', 'vae-elbograd', 'vae-rec']) {
      const inProcess = vaePredictor(await loadVaeModel(weights, { engine: 'tfjs' }), name, { workers: 0 });
      const pooled = vaePredictor(await loadVaeModel(weights, { engine: 'tfjs' }), name, { workers: 2 });
      try {
        const a = await inProcess.pixelScore!(volume, ctx);
        const b = await pooled.pixelScore!(volume, ctx);
        let worst = 0;
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
        expect(worst, name).toBeLessThan(1e-6);
        if (name === 'vae-rec') expect(await pooled.sampleScore!(volume, ctx)).toBeCloseTo(await inProcess.sampleScore!(volume, ctx), 6);
      } finally {
        await inProcess.dispose?.();
        await pooled.dispose?.();
      }
    }
  });

  it('the normal held-out volumes land in the calibrated middle of the sample scale', async () => {
    // The calibration ran on TF.js: the same engine reproduces its held-out scores exactly (ONNX Runtime
    // differs by ~1e-7, enough to move a score that sits exactly on an ECDF step).
    const model = await loadVaeModel(weights, { engine: 'tfjs' });
    const predictor = vaePredictor(model, 'vae-elbo');
    try {
      const { volume } = await readNifti(join(normals, 'normal_1.nii.gz'));
      const score = await predictor.sampleScore!(volume, { name: 'n', seed: 0, log: silent });
      expect(score).toBeGreaterThanOrEqual(0.25);
      expect(score).toBeLessThanOrEqual(0.5);
    } finally {
      await predictor.dispose?.();
    }
  });
});
