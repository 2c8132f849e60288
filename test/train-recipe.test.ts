/**
 * Issue 15's training recipe: foreground slice selection, learning-rate schedules, gradient
 * accumulation in the shared loop, foreground-only held-out L1, and dead codes coming back into use
 * after re-seeding.
 */
import { readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { readNifti } from '../src/io/nifti.js';
import { disposeParams } from '../src/models/params.js';
import { initVqvae } from '../src/models/vqvae.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import { capSlices, foregroundSliceIndices, openVolumeFolder } from '../src/train/dataset.js';
import { createTrainingEngine, type TrainingEngine } from '../src/train/engine.js';
import { deriveMetrics, runTrainingLoop, type EpochContext } from '../src/train/loop.js';
import { flattenParams, paramLayout, type CodeBatch, type ImageBatch, type TrainBatch } from '../src/train/loop-worker.js';
import { foregroundL1Parts } from '../src/train/onnx-engine.js';
import { scheduledLr, validateSchedule } from '../src/train/schedule.js';
import { recipeFingerprint, resolveSchedule } from '../src/train/trainer-run.js';
import { reseedDeadCodes, trainVqvae } from '../src/train/vqvae-trainer.js';
import { trainPrior } from '../src/train/prior-trainer.js';
import { TINY_PRIOR, TINY_VQVAE, capture, normalFolder, tempRoot } from './helpers/train-fixtures.js';

let root: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: () => undefined });
  ({ root, cleanup } = await tempRoot('moodlsr-train-recipe-'));
});
afterAll(async () => {
  await cleanup();
});

describe('foreground slice selection', () => {
  it('keeps exactly the planes whose foreground fraction reaches the minimum', () => {
    // 4 × 4 planes (16 voxels); foreground voxels per plane: 0, 1, 2, 16, 3.
    const shape: [number, number, number] = [4, 4, 5];
    const data = new Float32Array(80);
    const perPlane = [0, 1, 2, 16, 3];
    perPlane.forEach((n, z) => {
      for (let i = 0; i < n; i++) data[z * 16 + i] = 0.5;
    });
    data[0] = 0.04; // below the threshold: not foreground
    expect(foregroundSliceIndices(data, shape, 0.1)).toEqual([2, 3, 4]); // ≥ ceil(1.6) = 2 voxels
    expect(foregroundSliceIndices(data, shape, 0)).toEqual([1, 2, 3, 4]); // at least one voxel
    expect(foregroundSliceIndices(data, shape, 1)).toEqual([3]);
    expect(() => foregroundSliceIndices(data, [4, 4, 4], 0.1)).toThrow(RangeError);
  });

  it('capSlices subsamples evenly and keeps short lists whole', () => {
    expect(capSlices([3, 4, 5], 5)).toEqual([3, 4, 5]);
    expect(capSlices([10, 11, 12, 13, 14], 3)).toEqual([10, 12, 14]);
    expect(capSlices([10, 11, 12, 13], undefined)).toEqual([10, 11, 12, 13]);
  });

  it('openVolumeFolder with sliceRule foreground keeps every foreground plane and no empty one', async () => {
    const dir = await normalFolder(root, 'fg', 2);
    const even = await openVolumeFolder([dir], { region: 'brain', size: 16, log: () => undefined });
    const fg = await openVolumeFolder([dir], { region: 'brain', size: 16, sliceRule: 'foreground', minForegroundFraction: 0.05, log: () => undefined });
    for (const [i, entry] of fg.files.entries()) {
      const { volume } = await readNifti(entry.file);
      const zs = foregroundSliceIndices(volume.data, volume.shape, 0.05);
      expect(entry.stack.zs).toEqual(zs);
      expect(zs.length).toBeLessThan(volume.shape[2]);
      expect(even.files[i]!.stack.count).toBe(volume.shape[2]); // nz ≤ 64: the even rule keeps all, empty ones too
      const plane = 16 * 16;
      for (let s = 0; s < entry.stack.count; s++) {
        expect(entry.stack.data.subarray(s * plane, (s + 1) * plane).some((x) => x !== 0)).toBe(true);
      }
    }
  });
});

describe('stack cache', () => {
  it('a second open reads the cached stacks; a changed file is prepared again', async () => {
    const dir = await normalFolder(root, 'cached', 2, 4);
    const cacheDir = join(root, 'stack-cache');
    const opts = { region: 'brain' as const, size: 16, sliceRule: 'foreground' as const, cacheDir, log: () => undefined };
    const first = await openVolumeFolder([dir], opts);
    const bins = readdirSync(cacheDir).filter((f) => f.endsWith('.bin'));
    expect(bins).toHaveLength(2);
    const again = await openVolumeFolder([dir], opts);
    again.files.forEach((e, i) => {
      expect(Array.from(e.stack.data)).toEqual(Array.from(first.files[i]!.stack.data));
      expect(e.stack.zs).toEqual(first.files[i]!.stack.zs);
      expect(Array.from(e.stack.positions)).toEqual(Array.from(first.files[i]!.stack.positions));
      expect(e.shape).toEqual(first.files[i]!.shape);
    });
    // Tamper with every cached .bin (same length): the next open returns the tampered values, so it read the cache.
    for (const b of bins) writeFileSync(join(cacheDir, b), new Uint8Array(statSync(join(cacheDir, b)).size));
    const tampered = await openVolumeFolder([dir], opts);
    expect(tampered.files.every((e) => e.stack.data.every((x) => x === 0))).toBe(true);
    // Another option misses the cache; a touched volume is prepared again.
    const other = await openVolumeFolder([dir], { ...opts, minForegroundFraction: 0.2 });
    expect(other.files[0]!.stack.data.some((x) => x !== 0)).toBe(true);
    const file = first.files[0]!.file;
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const fresh = await openVolumeFolder([dir], opts);
    expect(Array.from(fresh.files[0]!.stack.data)).toEqual(Array.from(first.files[0]!.stack.data));
  });
});

describe('learning-rate schedule', () => {
  it('warms up linearly, then follows the cosine down to the minimum', () => {
    const s = { warmupSteps: 10, decay: 'cosine' as const, totalSteps: 110, minFraction: 0.1 };
    expect(scheduledLr(1, 1, s)).toBeCloseTo(0.1, 12);
    expect(scheduledLr(1, 10, s)).toBeCloseTo(1, 12);
    expect(scheduledLr(1, 60, s)).toBeCloseTo(0.55, 12); // half way: (1 + 0.1) / 2
    expect(scheduledLr(1, 110, s)).toBeCloseTo(0.1, 12);
    expect(scheduledLr(1, 500, s)).toBeCloseTo(0.1, 12);
    for (let t = 11; t < 110; t++) expect(scheduledLr(1, t + 1, s)).toBeLessThan(scheduledLr(1, t, s));
  });

  it('step decay halves every `every` steps after the warm-up; no schedule is the constant rate', () => {
    const s = { warmupSteps: 0, decay: 'step' as const, every: 5 };
    expect(scheduledLr(2, 4, s)).toBe(2);
    expect(scheduledLr(2, 5, s)).toBe(1);
    expect(scheduledLr(2, 12, s)).toBe(0.5);
    expect(scheduledLr(3e-4, 77, undefined)).toBe(3e-4);
  });

  it('a cosine without a length runs over the whole run; bad schedules are refused', () => {
    expect(resolveSchedule({ warmupSteps: 5, decay: 'cosine' }, 300)?.totalSteps).toBe(300);
    expect(() => validateSchedule({ warmupSteps: -1, decay: 'none' })).toThrow(/warm-up/);
    expect(() => validateSchedule({ warmupSteps: 0, decay: 'step' })).toThrow(/every/);
  });

  it('the recipe enters the fingerprint only when set, and never with the cosine length', () => {
    const base = { region: 'brain' as const, data: [], outDir: '' };
    expect(recipeFingerprint(base)).toEqual({});
    expect(recipeFingerprint({ ...base, sliceRule: 'even' })).toEqual({});
    const a = recipeFingerprint({ ...base, schedule: { warmupSteps: 5, decay: 'cosine', totalSteps: 100 } });
    const b = recipeFingerprint({ ...base, schedule: { warmupSteps: 5, decay: 'cosine', totalSteps: 900 } });
    expect(a).toEqual(b);
    expect(recipeFingerprint({ ...base, accumulate: 2 })).toEqual({ accumulate: 2 });
  });
});

/** An engine whose gradient is the batch's first position everywhere, so the loop's arithmetic is visible. */
function constantGradientEngine(n: number): TrainingEngine {
  return {
    workers: 0,
    async gradients(_w, _v, batch) {
      return { grads: new Float32Array(n).fill(batch.positions[0]!), stats: { count: batch.count, means: { loss: batch.positions[0]! } } };
    },
    async evaluate(_w, _v, batches) {
      return { count: batches.length, means: { loss: 1 } };
    },
    async encode() {
      return [];
    },
    async latents() {
      return new Float32Array(0);
    },
    async close() {},
  };
}

describe('gradient accumulation', () => {
  it('one optimiser step per `accumulate` batches, on their mean gradient, with the scheduled rate', async () => {
    const model = { kind: 'vqvae' as const, config: TINY_VQVAE };
    const layout = paramLayout(model);
    const values = [0.2, 0.6, 0.1, 0.3]; // gradients of four successive batches
    let drawn = 0;
    const nextBatch = (): TrainBatch => {
      const v = values[drawn++ % values.length]!;
      const b: CodeBatch = { kind: 'codes', codes: new Int32Array(1), positions: Float32Array.of(v), count: 1, height: 1, width: 1 };
      return b;
    };
    const c = capture();
    const outDir = join(root, 'accumulate');
    const result = await runTrainingLoop({
      model,
      name: 'vqvae',
      outDir,
      engine: constantGradientEngine(layout.total),
      layout,
      initialWeights: new Float32Array(layout.total),
      epochs: 1,
      stepsPerEpoch: 2,
      seed: 1,
      adam: { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
      schedule: { warmupSteps: 4, decay: 'none' },
      accumulate: 2,
      clip: 1,
      resume: false,
      fingerprint: 'test',
      nextBatch,
      holdout: [],
      record: {},
      log: c.log,
      sink: c.sink,
    });
    expect(drawn).toBe(4);
    expect(result.state.step).toBe(2);
    const saved = loadCheckpoint(outDir)!;
    // m after two steps on the mean gradients 0.4 and 0.2: 0.9 · (0.1 · 0.4) + 0.1 · 0.2.
    expect(saved.adamM[0]).toBeCloseTo(0.9 * 0.04 + 0.02, 6);
    expect(result.state.history[0]!.lr).toBeCloseTo(0.5e-3, 12); // step 2 of a 4-step warm-up
  });
});

describe('foreground L1', () => {
  it('combined over batches by the loop, it is the L1 over all foreground pixels of all batches', () => {
    const size = 2;
    const a = { x: Float32Array.of(0, 1, 2, 0), y: Float32Array.of(0.5, 1.5, 2, 0.25) }; // 2 fg pixels, errors 0.5 and 0
    const b = { x: Float32Array.of(3, 0, 0, 0, 1, 1, 1, 1), y: Float32Array.of(2, 9, 9, 9, 1, 1, 1, 2) }; // 5 fg, errors 1, 0, 0, 0, 1
    const pa = foregroundL1Parts(a.y, a.x, 0, 1);
    const pb = foregroundL1Parts(b.y, b.x, 0, 2);
    // The engine's count-weighted mean of the two batches' parts (counts 1 and 2).
    const mean = (k: 'recFgSum' | 'fgFraction') => (pa[k] * 1 + pb[k] * 2) / 3;
    const batches: ImageBatch[] = [{ kind: 'images', images: a.x, positions: Float32Array.of(0), count: 1, size }];
    const m = deriveMetrics({ loss: 1, recFgSum: mean('recFgSum'), fgFraction: mean('fgFraction') }, batches);
    expect(m.recFg).toBeCloseTo((0.5 + 1 + 1) / 7, 6);
    expect(m).not.toHaveProperty('recFgSum');
    expect(deriveMetrics({ loss: 2 }, batches)).toEqual({ loss: 2 });
  });
});

describe('dead codes', () => {
  it('a re-seeded dead code is chosen again by the batch it was seeded from', async () => {
    const model = { kind: 'vqvae' as const, config: TINY_VQVAE };
    const layout = paramLayout(model);
    const params = initVqvae(TINY_VQVAE, 2);
    const weights = flattenParams(params, layout);
    disposeParams(params);
    const engine = await createTrainingEngine(model, { workers: 0, backend: 'wasm' });
    try {
      const rng = createRng(9);
      const size = TINY_VQVAE.inputSize;
      const batch: ImageBatch = {
        kind: 'images',
        images: Float32Array.from({ length: 2 * size * size }, () => rng.normal()),
        positions: Float32Array.of(-0.2, 0.3),
        count: 2,
        size,
      };
      const countsOf = async (version: number) => {
        const [codes] = await engine.encode(weights, version, [batch]);
        const counts = new Int32Array(TINY_VQVAE.codebookSize);
        for (const c of codes!) counts[c]++;
        return counts;
      };
      const before = await countsOf(1);
      const dead = [...before.keys()].filter((k) => before[k] === 0);
      expect(dead.length).toBeGreaterThan(0); // a random codebook leaves codes unused
      let version = 1;
      const ctx: EpochContext = {
        epoch: 1,
        rng: createRng(4),
        weights,
        adamM: new Float32Array(layout.total),
        adamV: new Float32Array(layout.total),
        version,
        changed: () => {
          version++;
          ctx.version = version;
        },
        lastBatch: batch,
        trainStats: { count: 2, means: { loss: 1 }, codeCounts: before },
        engine,
      };
      expect(await reseedDeadCodes(ctx, TINY_VQVAE, layout)).toBe(dead.length);
      const after = await countsOf(version);
      for (const k of dead) expect(after[k]).toBeGreaterThan(0);
    } finally {
      await engine.close();
    }
  });
});

describe('brain-only held-out metrics and augmented codes (ONNX Runtime engine)', () => {
  it('the VQ-VAE reports the foreground L1, the prior the foreground NLL; a prior on augmented codes resumes bit for bit', async () => {
    const data = await normalFolder(root, 'normals-onnx', 4, 3);
    const common = { region: 'brain' as const, data: [data], holdout: 1, seed: 2, workers: 0, backend: 'wasm' as const, engine: 'onnx' as const, sliceRule: 'foreground' as const };
    const c = capture();
    const vq = await trainVqvae({ ...common, outDir: join(root, 'vq-onnx'), preset: 'compact', config: TINY_VQVAE, augment: 'none', batch: 4, stepsPerEpoch: 3, epochs: 1, lr: 3e-3, log: c.log, sink: c.sink });
    const h = vq.state.history[0]!.holdout;
    expect(h.recFg).toBeGreaterThan(h.rec!); // the background pixels, well reconstructed, dilute the plain L1
    const prior = (out: string, epochs: number, resume = false) =>
      trainPrior({ ...common, outDir: join(root, out), preset: 'compact', vqvaeDir: join(root, 'vq-onnx'), config: TINY_PRIOR, batch: 4, stepsPerEpoch: 3, epochs, lr: 1e-2, augmentedCodes: 0.5, resume, log: c.log, sink: c.sink });
    const whole = await prior('prior-aug', 2);
    const nll = whole.state.history[1]!.holdout;
    expect(nll.nllFg).toBeGreaterThan(0);
    expect(Number.isFinite(nll.nllFg)).toBe(true);
    await prior('prior-aug-resumed', 1);
    const resumed = await prior('prior-aug-resumed', 2, true);
    expect(Array.from(resumed.weights)).toEqual(Array.from(whole.weights));
    const plain = await trainPrior({ ...common, outDir: join(root, 'prior-plain'), preset: 'compact', vqvaeDir: join(root, 'vq-onnx'), config: TINY_PRIOR, batch: 4, stepsPerEpoch: 3, epochs: 2, lr: 1e-2, log: c.log, sink: c.sink });
    expect(Array.from(plain.weights)).not.toEqual(Array.from(whole.weights)); // the augmented maps were used
    const record = JSON.parse(readFileSync(join(root, 'prior-aug', 'training.json'), 'utf8'));
    expect(record.augmentedCodes).toMatchObject({ perBatch: 2, poolPerEpoch: 6 });
  }, 300_000);
});
