/**
 * ONNX Runtime against TF.js for the LSGS transformer prior (src/methods/lsgs/emit-transformer.ts): logits and
 * per-code NLL on tiny random models (full and causal attention), on real code maps through trained
 * weights when weights/brain/training/lsgs holds them, and `predict --method lsgs`'s MOOD outputs with both
 * engines.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { readNifti, writeNifti } from '../src/io/nifti.js';
import { initTransformer, saveModel, transformerLogits, transformerNll, type TransformerConfig } from '../src/models/index.js';
import { disposeParams, type ParamMap } from '../src/models/params.js';
import { runPrediction } from '../src/mood/run.js';
import { hostParams } from '../src/onnx/emit-blocks.js';
import { emitTransformer } from '../src/methods/lsgs/emit-transformer.js';
import { createSession, requireOnnxRuntime } from '../src/onnx/runtime.js';
import { calibrateLsgs, writeLsgsCalibration } from '../src/methods/lsgs/calibrate.js';
import { createLsgsEngine } from '../src/methods/lsgs/engine.js';
import { loadLsgsModel, lsgsPredictor, readLsgsCalibration, type LsgsCalibration } from '../src/methods/lsgs/model.js';
import { disposeLsgsNetworks, loadLsgsNetworks, type LsgsNetworks, type TransformerNetwork } from '../src/methods/lsgs/networks.js';
import { disposeLsrNetworks } from '../src/methods/lsr/networks.js';
import { preprocessForModel } from '../src/volume/preprocess.js';
import type { SliceSelection } from '../src/volume/slices.js';
import { randomCodes, tinyBrain, tinyNetworks } from './helpers/score-fixtures.js';
import { subsample } from './helpers/subsample.js';

/** Trained LSGS weights (skipped when absent); MOODLSR_LSGS_WEIGHTS points elsewhere. */
const TRAINED_LSGS = process.env.MOODLSR_LSGS_WEIGHTS ?? 'weights/brain/training/lsgs';
const COLIN = 'data/mricron/ch2bet.nii.gz';
const TOLERANCE = 1e-4;
const silent = () => undefined;

const TINY: TransformerConfig = { codebookSize: 8, height: 4, width: 4, dim: 12, layers: 2, heads: 3, mlpDim: 20, dropout: 0.1, condChannels: 1, causal: false };

/** max |a − b| / max |b|. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / Math.max(scale, 1e-30);
}

/** Random values for every parameter (conditioning, norms, biases included), so every term matters. */
function randomTransformer(cfg: TransformerConfig, seed: number): TransformerNetwork {
  const params: ParamMap = initTransformer(cfg, seed);
  const rng = createRng(seed + 1);
  for (const [name, v] of Object.entries(params)) {
    const std = /\.g$/.test(name) ? 0.3 : /embed|\.b$|out\.head/.test(name) ? 0.8 : 0;
    if (std > 0) v.assign(tf.add(v, tf.tensor(Array.from({ length: v.size }, () => rng.normal() * std), v.shape)));
  }
  return { cfg, params };
}

async function onnxOutputs(net: TransformerNetwork, codes: Int32Array, positions: Float32Array): Promise<{ logits: Float32Array; nll: Float32Array }> {
  const ort = await requireOnnxRuntime();
  const host = hostParams(net.params);
  const out: Record<string, Float32Array> = {};
  for (const kind of ['logits', 'nll'] as const) {
    const session = await createSession(emitTransformer(host, net.cfg, kind).encode({ producerVersion: 'test' }), { threads: 1 });
    const feeds = { codes: new ort.Tensor('int32', codes, [positions.length, net.cfg.height, net.cfg.width]), position: new ort.Tensor('float32', positions, [positions.length]) };
    out[kind] = (await session.run(feeds))[kind]!.data as Float32Array;
    await session.release();
  }
  return { logits: out.logits!, nll: out.nll! };
}

function tfjsOutputs(net: TransformerNetwork, codes: Int32Array, positions: Float32Array): { logits: Float32Array; nll: Float32Array } {
  const [logits, nll] = tf.tidy(() => {
    const c = tf.tensor3d(codes, [positions.length, net.cfg.height, net.cfg.width], 'int32');
    const p = tf.tensor1d(positions);
    return [transformerLogits(net.params, net.cfg, c, p), transformerNll(net.params, net.cfg, c, p)];
  });
  const out = { logits: logits.dataSync() as Float32Array, nll: nll.dataSync() as Float32Array };
  tf.dispose([logits, nll]);
  return out;
}

async function expectTransformerParity(net: TransformerNetwork, codes: Int32Array, positions: Float32Array): Promise<{ logits: number; nll: number }> {
  const onnx = await onnxOutputs(net, codes, positions);
  const reference = tfjsOutputs(net, codes, positions);
  const errors = { logits: relativeError(onnx.logits, reference.logits), nll: relativeError(onnx.nll, reference.nll) };
  if (process.env.MOODLSR_PARITY_LOG) console.log(`transformer ${net.cfg.causal ? 'causal' : 'full'}: relative errors logits ${errors.logits.toExponential(2)}, nll ${errors.nll.toExponential(2)}`);
  expect(errors.logits).toBeLessThan(TOLERANCE);
  expect(errors.nll).toBeLessThan(TOLERANCE);
  return errors;
}

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: silent });
});

describe('ONNX export of the transformer prior', () => {
  for (const causal of [false, true]) {
    it(`agrees with tfjs on a tiny random model (${causal ? 'causal' : 'full'} attention)`, async () => {
      const net = randomTransformer({ ...TINY, causal }, causal ? 11 : 10);
      try {
        const positions = Float32Array.from([-0.45, -0.1, 0, 0.3, 0.45]);
        const codes = randomCodes(positions.length, TINY.height * TINY.width, TINY.codebookSize, 4);
        await expectTransformerParity(net, codes, positions);
        // The attention kind is honoured: with a causal mask, the last code cannot move the first logits.
        const changed = codes.slice();
        changed[15] = (changed[15]! + 1) % TINY.codebookSize;
        const [a, b] = [await onnxOutputs(net, codes, positions), await onnxOutputs(net, changed, positions)];
        const firstRowMoved = relativeError(a.logits.subarray(0, TINY.codebookSize), b.logits.subarray(0, TINY.codebookSize)) > 1e-6;
        expect(firstRowMoved).toBe(!causal);
      } finally {
        disposeParams(net.params);
      }
    });
  }

  it.skipIf(!existsSync(join(TRAINED_LSGS, 'transformer.json')))('agrees with tfjs on real Colin27 code maps through the trained LSGS weights', async () => {
    const nets = loadLsgsNetworks(TRAINED_LSGS);
    const engine = await createLsgsEngine('tfjs', nets);
    try {
      const { volume } = await readNifti(COLIN);
      const stack = preprocessForModel(volume, { region: 'brain', slices: { count: 4 }, size: nets.vqvae.cfg.inputSize });
      const codes = await engine.encodeSlices(stack.data, stack.positions);
      expect(new Set(codes).size).toBeGreaterThan(10);
      await expectTransformerParity(nets.transformer, codes, stack.positions);
    } finally {
      await engine.dispose();
      disposeLsgsNetworks(nets);
    }
  }, 120_000);
});

/** Saves a tiny random LSGS model (VQ-VAE + transformer) as a weights folder. */
function saveTinyLsgs(dir: string, seed: number): void {
  const nets = tinyNetworks(seed);
  const transformer = randomTransformer(TINY, seed + 3);
  saveModel(dir, 'vqvae', { kind: 'vqvae', config: nets.vqvae.cfg, params: nets.vqvae.params });
  saveModel(dir, 'transformer', { kind: 'transformer', config: transformer.cfg, params: transformer.params });
  disposeLsrNetworks(nets);
  disposeParams(transformer.params);
}

/** Sample score and pixel map of every case through `predict`'s MOOD outputs, per engine. */
async function moodOutputs(weights: string, cases: string, out: string, names: readonly string[], slices: SliceSelection): Promise<Record<string, Record<string, { sample: number; pixel: Float32Array }>>> {
  const outputs: Record<string, Record<string, { sample: number; pixel: Float32Array }>> = {};
  for (const engine of ['tfjs', 'onnx'] as const) {
    const model = await loadLsgsModel(weights, { engine, log: silent });
    expect(model.engine.name).toBe(engine);
    const predictor = lsgsPredictor(model, { workers: 0, copies: 3, rounds: 2, slices });
    try {
      for (const task of ['sample', 'pixel'] as const) {
        const summary = await runPrediction({ task, inDir: cases, outDir: join(out, `${engine}-${task}`), predictor, seed: 5, log: silent });
        expect(summary.failed).toEqual([]);
      }
    } finally {
      await predictor.dispose?.();
    }
    outputs[engine] = {};
    for (const name of names) {
      outputs[engine]![name] = {
        sample: Number(readFileSync(join(out, `${engine}-sample`, `${name}.txt`), 'utf8')),
        pixel: (await readNifti(join(out, `${engine}-pixel`, name))).volume.data,
      };
    }
  }
  return outputs;
}

function expectMoodOutputsAgree(outputs: Awaited<ReturnType<typeof moodOutputs>>, names: readonly string[]): void {
  for (const name of names) {
    const [a, b] = [outputs.tfjs![name]!, outputs.onnx![name]!];
    let maxDiff = 0;
    let maxScore = 0;
    a.pixel.forEach((v, i) => {
      maxDiff = Math.max(maxDiff, Math.abs(v - b.pixel[i]!));
      maxScore = Math.max(maxScore, v);
    });
    if (process.env.MOODLSR_PARITY_LOG) console.log(`lsgs ${name}: sample ${a.sample} vs ${b.sample}; pixel max |Δ| ${maxDiff} (max score ${maxScore})`);
    expect(Math.abs(a.sample - b.sample)).toBeLessThan(1e-3);
    expect(maxDiff).toBeLessThan(1e-3);
    expect(maxScore).toBeGreaterThan(0);
  }
}

describe('MOOD outputs of predict --method lsgs with both engines', () => {
  const root = mkdtempSync(join(tmpdir(), 'moodlsr-onnx-lsgs-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('calibration, sample scores and pixel maps agree to 1e-3 (tiny random model, tiny volumes)', async () => {
    const weights = join(root, 'weights');
    const normals = join(root, 'normals');
    const cases = join(root, 'cases');
    for (const dir of [normals, cases]) mkdirSync(dir, { recursive: true });
    saveTinyLsgs(weights, 31);
    const shape = [20, 18, 24] as const;
    for (let i = 0; i < 2; i++) await writeNifti(join(normals, `normal_${i}.nii.gz`), tinyBrain(shape, 100 + i));
    await writeNifti(join(cases, 'a.nii.gz'), tinyBrain(shape, 200, true));
    await writeNifti(join(cases, 'b.nii.gz'), tinyBrain(shape, 201));
    const calibrations: LsgsCalibration[] = [];
    for (const engine of ['tfjs', 'onnx'] as const) {
      const files = ['normal_0.nii.gz', 'normal_1.nii.gz'].map((f) => join(normals, f));
      calibrations.push((await calibrateLsgs({ weightsDir: weights, files, region: 'brain', slices: { every: 4 }, copies: 3, rounds: 2, pixelVolumes: 1, seed: 0, workers: 0, engine, log: silent })).calibration);
    }
    const [tfjsCal, onnxCal] = calibrations as [LsgsCalibration, LsgsCalibration];
    expect(Math.abs(onnxCal.lambdaS - tfjsCal.lambdaS)).toBeLessThan(1e-4 * Math.max(1, Math.abs(tfjsCal.lambdaS)));
    expect(Math.abs(onnxCal.lambdaP - tfjsCal.lambdaP)).toBeLessThan(1e-4 * Math.max(1, Math.abs(tfjsCal.lambdaP)));
    // λ below every NLL: every code is resampled, so every slice gets a residual.
    writeLsgsCalibration(weights, { ...tfjsCal, lambdaP: -1 });
    const names = ['a.nii.gz', 'b.nii.gz'];
    expectMoodOutputsAgree(await moodOutputs(weights, cases, join(root, 'out'), names, { every: 4 }), names);
  }, 120_000);

  it.skipIf(!existsSync(join(TRAINED_LSGS, 'lsgs-calibration.json')))('sample scores and pixel maps agree to 1e-3 (trained LSGS weights, small Colin27 volume)', async () => {
    const cases = join(root, 'colin');
    mkdirSync(cases, { recursive: true });
    const { volume } = await readNifti(COLIN);
    await writeNifti(join(cases, 'colin.nii.gz'), subsample(volume, 3));
    // A copy of the weights whose λ is below every NLL: every code is resampled.
    const weights = join(root, 'trained');
    mkdirSync(weights);
    for (const file of ['vqvae.json', 'vqvae.bin', 'transformer.json', 'transformer.bin']) copyFileSync(join(TRAINED_LSGS, file), join(weights, file));
    writeLsgsCalibration(weights, { ...readLsgsCalibration(TRAINED_LSGS), lambdaP: -1 });
    expectMoodOutputsAgree(await moodOutputs(weights, cases, join(root, 'out-colin'), ['colin.nii.gz'], { every: 8 }), ['colin.nii.gz']);
  }, 300_000);
});

describe('LSGS engine choice', () => {
  it("'auto' picks ONNX Runtime here, 'tfjs' stays on TF.js, and the exported graphs load standalone", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'moodlsr-onnx-lsgs-save-'));
    const nets: LsgsNetworks = { vqvae: tinyNetworks(1).vqvae, transformer: randomTransformer(TINY, 2) };
    try {
      const engines = [await createLsgsEngine('auto', nets, { log: silent, saveOnnxTo: dir }), await createLsgsEngine('tfjs', nets)];
      expect(engines.map((e) => [e.name, e.wantsWorkers])).toEqual([
        ['onnx', false],
        ['tfjs', true],
      ]);
      for (const e of engines) await e.dispose();
      const ort = await requireOnnxRuntime();
      const outputs: string[][] = [];
      for (const name of ['vqvae-encoder', 'vqvae-decoder', 'transformer-logits', 'transformer-nll']) {
        const session = await ort.InferenceSession.create(join(dir, `${name}.onnx`));
        outputs.push([...session.outputNames]);
        await session.release();
      }
      expect(outputs).toEqual([['z', 'codes'], ['image'], ['logits'], ['nll']]);
    } finally {
      disposeLsgsNetworks(nets);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
