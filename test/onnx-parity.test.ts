/**
 * ONNX Runtime against TF.js: the exported graphs (src/onnx) compute what the tfjs forward functions
 * compute, on tiny random models (both upsampling modes, attention on 1×1 and 2×2 blocks) and on
 * real Colin27 slices through the trained brain weights; and `predict`'s MOOD outputs agree.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { readNifti, writeNifti } from '../src/io/nifti.js';
import { initPixelSnail, initVqvae, param, priorLogits, vqvaeEncode, type PixelSnailConfig, type VqvaeConfig } from '../src/models/index.js';
import { runPrediction } from '../src/mood/run.js';
import { ProtoWriter } from '../src/onnx/protobuf.js';
import { requireOnnxRuntime } from '../src/onnx/runtime.js';
import { parseEngineChoice } from '../src/inference/engine-choice.js';
import { createLsrEngine, tfjsEngine, type LsrEngine } from '../src/methods/lsr/engine.js';
import { loadLsrModel, lsrPredictor } from '../src/methods/lsr/model.js';
import { disposeLsrNetworks, loadLsrNetworks, type LsrNetworks } from '../src/methods/lsr/networks.js';
import { preprocessForModel } from '../src/volume/preprocess.js';
import { TINY_PRIOR, TINY_VQVAE, randomCodes } from './helpers/score-fixtures.js';
import { subsample } from './helpers/subsample.js';
import { tempRoot } from './helpers/train-fixtures.js';

const TRAINED = 'weights/brain/training/lsr';
const COLIN = 'data/mricron/ch2bet.nii.gz';
const TOLERANCE = 1e-4;

/** max |a − b| / max |b|: the error relative to the reference's scale. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

/** Pre-quantisation encodings from tfjs, [count, h, w, D] flattened. */
function tfjsLatents(nets: LsrNetworks, images: Float32Array, positions: Float32Array): Float32Array {
  const s = nets.vqvae.cfg.inputSize;
  const z = tf.tidy(() => vqvaeEncode(nets.vqvae.params, nets.vqvae.cfg, tf.tensor4d(images, [positions.length, s, s, 1]), tf.tensor1d(positions)).z);
  const out = z.dataSync() as Float32Array;
  z.dispose();
  return out;
}

/**
 * Code maps must be identical, except where the two nearest codes of a latent vector are tied to
 * within float32 rounding: there either choice is correct. Distances are recomputed in float64.
 */
function expectSameCodesUpToTies(onnx: Int32Array, reference: Int32Array, latents: Float32Array, codebook: Float32Array, dim: number): number {
  let ties = 0;
  for (let i = 0; i < reference.length; i++) {
    if (onnx[i] === reference[i]) continue;
    const distance = (code: number) => {
      let sum = 0;
      for (let j = 0; j < dim; j++) sum += (latents[i * dim + j] - codebook[code * dim + j]) ** 2;
      return sum;
    };
    const a = distance(onnx[i]);
    const b = distance(reference[i]);
    expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-5 * Math.max(a, b, 1));
    ties++;
  }
  return ties;
}

/** The ONNX engine's distances are ‖z − e_code‖² of tfjs's latents, for its own codes, and no other code is nearer. */
function expectQuantisationDistances(result: { codes: Int32Array; distances: Float32Array }, codes: Int32Array, latents: Float32Array, codebook: Float32Array, dim: number): void {
  expect(Array.from(result.codes)).toEqual(Array.from(codes));
  const k = codebook.length / dim;
  let worst = 0;
  for (let i = 0; i < codes.length; i++) {
    const distance = (code: number) => {
      let sum = 0;
      for (let j = 0; j < dim; j++) sum += (latents[i * dim + j] - codebook[code * dim + j]) ** 2;
      return sum;
    };
    const own = distance(codes[i]);
    worst = Math.max(worst, Math.abs(result.distances[i] - own) / Math.max(own, 1e-3));
    for (let c = 0; c < k; c++) expect(distance(c)).toBeGreaterThanOrEqual(own - 1e-5 * Math.max(own, 1));
  }
  expect(worst).toBeLessThan(1e-3);
}

async function expectEnginesAgree(nets: LsrNetworks, images: Float32Array, positions: Float32Array): Promise<{ ties: number; codes: Int32Array }> {
  const reference = tfjsEngine(nets);
  const onnx = await createLsrEngine('onnx', nets, { log: () => undefined });
  try {
    const codes = await reference.encodeSlices(images, positions);
    const onnxCodes = await onnx.encodeSlices(images, positions);
    const latents = tfjsLatents(nets, images, positions);
    const codebook = param(nets.vqvae.params, 'codebook.E').dataSync() as Float32Array;
    const ties = expectSameCodesUpToTies(onnxCodes, codes, latents, codebook, nets.vqvae.cfg.codeDim);
    expect(ties).toBeLessThanOrEqual(Math.ceil(0.01 * codes.length));
    expectQuantisationDistances(await onnx.encodeWithDistances!(images, positions), onnxCodes, latents, codebook, nets.vqvae.cfg.codeDim);
    if (process.env.MOODLSR_PARITY_LOG) {
      const z = tfjsLatents(nets, images, positions);
      console.log(
        `codes ${codes.length}, ties ${ties}; relative errors: decoder ${relativeError(await onnx.decodeCodeMaps(codes, positions), await reference.decodeCodeMaps(codes, positions)).toExponential(2)}, ` +
          `logits ${relativeError(await onnx.priorLogitsFrom(codes, positions, 0), await reference.priorLogitsFrom(codes, positions, 0)).toExponential(2)}, ` +
          `nll ${relativeError(await onnx.codeNlls(codes, positions), await reference.codeNlls(codes, positions)).toExponential(2)} (latents ${z.length})`,
      );
    }

    // Decoder, prior logits and per-code NLL on the same code maps.
    expect(relativeError(await onnx.decodeCodeMaps(codes, positions), await reference.decodeCodeMaps(codes, positions))).toBeLessThan(TOLERANCE);
    expect(relativeError(await onnx.priorLogitsFrom(codes, positions, 0), await reference.priorLogitsFrom(codes, positions, 0))).toBeLessThan(TOLERANCE);
    expect(relativeError(await onnx.priorLogitsFrom(codes, positions, 5), await reference.priorLogitsFrom(codes, positions, 5))).toBeLessThan(TOLERANCE);
    expect(relativeError(await onnx.codeNlls(codes, positions), await reference.codeNlls(codes, positions))).toBeLessThan(TOLERANCE);
    return { ties, codes };
  } finally {
    await onnx.dispose();
  }
}

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: () => undefined });
});

describe('protobuf writer', () => {
  it('writes varints, negative int64 and nested lengths as protobuf does', () => {
    const w = new ProtoWriter();
    w.int(1, 300);
    w.int(2, -1);
    w.message(3, (m) => m.string(1, 'ab'));
    expect(Array.from(w.finish())).toEqual([0x08, 0xac, 0x02, 0x10, ...Array(9).fill(0xff), 0x01, 0x1a, 0x04, 0x0a, 0x02, 0x61, 0x62]);
  });
});

describe('ONNX export of tiny random models', () => {
  const variants: Array<{ name: string; vqvae: VqvaeConfig; prior: PixelSnailConfig }> = [
    { name: 'nearest-conv decoder, attention on single codes', vqvae: TINY_VQVAE, prior: TINY_PRIOR },
    {
      name: 'transposed-conv decoder, attention on 2×2 blocks, 3 levels',
      vqvae: { ...TINY_VQVAE, channels: [4, 8, 8, 12], inputSize: 32, upsample: 'transposed', blocksPerLevel: 2, normGroups: 4 },
      prior: { ...TINY_PRIOR, blocks: 2, resBlocksPerBlock: 2, attention: { keyChannels: 4, valueChannels: 6, downsample: 2 } },
    },
  ];
  for (const [i, v] of variants.entries()) {
    it(`agrees with tfjs: ${v.name}`, async () => {
      const nets: LsrNetworks = { vqvae: { cfg: v.vqvae, params: initVqvae(v.vqvae, 40 + i) }, prior: { cfg: v.prior, params: initPixelSnail(v.prior, 50 + i) } };
      try {
        // Random conditioning weights and a spread codebook, so every input matters.
        tf.tidy(() => {
          for (const [name, p] of [...Object.entries(nets.vqvae.params), ...Object.entries(nets.prior.params)]) {
            if (/\.cond\.|codebook|\.b$|\.g$/.test(name)) p.assign(tf.add(p, tf.randomNormal(p.shape, 0, 0.5, 'float32', 7 + name.length)));
          }
        });
        const count = 5;
        const s = v.vqvae.inputSize;
        const images = Float32Array.from({ length: count * s * s }, (_, j) => Math.sin(j * 0.37) + 0.3 * Math.cos(j * 0.011));
        const positions = Float32Array.from([-0.45, -0.2, 0, 0.2, 0.45]);
        await expectEnginesAgree(nets, images, positions);
        // The prior on codes the encoder would not produce.
        const cells = v.prior.height * v.prior.width;
        const codes = randomCodes(count, cells, v.prior.codebookSize, 3);
        const onnx = await createLsrEngine('onnx', nets, { log: () => undefined });
        const logits = tf.tidy(() => priorLogits(nets.prior.params, v.prior, tf.tensor3d(codes, [count, v.prior.height, v.prior.width], 'int32'), tf.tensor1d(positions)));
        expect(relativeError(await onnx.priorLogitsFrom(codes, positions, 0), logits.dataSync())).toBeLessThan(TOLERANCE);
        logits.dispose();
        await onnx.dispose();
      } finally {
        disposeLsrNetworks(nets);
      }
    });
  }
});

describe('ONNX export of the trained brain weights on real Colin27 slices', () => {
  let nets: LsrNetworks;
  beforeAll(() => {
    nets = loadLsrNetworks(TRAINED);
  });
  afterAll(() => disposeLsrNetworks(nets));

  it('encoder codes (up to ties), decoder images, prior logits and NLL agree', async () => {
    const { volume } = await readNifti(COLIN);
    const stack = preprocessForModel(volume, { region: 'brain', slices: { count: 6 }, size: nets.vqvae.cfg.inputSize });
    const { codes } = await expectEnginesAgree(nets, stack.data, stack.positions);
    expect(new Set(codes).size).toBeGreaterThan(10);
  }, 120_000);
});

describe('MOOD outputs of predict with both engines', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ root, cleanup } = await tempRoot('onnx-parity-'));
  });
  afterAll(async () => cleanup());

  it('sample scores and pixel maps agree to 1e-3 (trained weights, small Colin27 volume)', async () => {
    const cases = join(root, 'in');
    mkdirSync(cases, { recursive: true });
    const { volume } = await readNifti(COLIN);
    await writeNifti(join(cases, 'colin.nii.gz'), subsample(volume, 3));
    const outputs: Record<string, { sample: number; pixel: Float32Array }> = {};
    for (const engine of ['tfjs', 'onnx'] as const) {
      const model = await loadLsrModel(TRAINED, { engine, log: () => undefined });
      expect(model.engine.name).toBe(engine);
      const predictor = lsrPredictor(model, { workers: 0, copies: 3, slices: { count: 3 } });
      try {
        for (const task of ['sample', 'pixel'] as const) {
          const summary = await runPrediction({ task, inDir: cases, outDir: join(root, `${engine}-${task}`), predictor, seed: 5, log: () => undefined });
          expect(summary.failed).toEqual([]);
        }
      } finally {
        await predictor.dispose?.();
      }
      outputs[engine] = {
        sample: Number(readFileSync(join(root, `${engine}-sample`, 'colin.nii.gz.txt'), 'utf8')),
        pixel: (await readNifti(join(root, `${engine}-pixel`, 'colin.nii.gz'))).volume.data,
      };
    }
    expect(Math.abs(outputs.onnx.sample - outputs.tfjs.sample)).toBeLessThan(1e-3);
    let maxDiff = 0;
    let maxScore = 0;
    outputs.tfjs.pixel.forEach((v, i) => {
      maxDiff = Math.max(maxDiff, Math.abs(v - outputs.onnx.pixel[i]));
      maxScore = Math.max(maxScore, v);
    });
    if (process.env.MOODLSR_PARITY_LOG) console.log(`sample ${outputs.tfjs.sample} vs ${outputs.onnx.sample}; pixel max |Δ| ${maxDiff} (max score ${maxScore})`);
    expect(maxDiff).toBeLessThan(1e-3);
    expect(maxScore).toBeGreaterThan(0);
  }, 300_000);
});

describe('engine choice', () => {
  it('--engine accepts auto, onnx and tfjs only', () => {
    expect(['auto', 'onnx', 'tfjs'].map(parseEngineChoice)).toEqual(['auto', 'onnx', 'tfjs']);
    expect(() => parseEngineChoice('gpu')).toThrow(/--engine must be one of auto, onnx, tfjs/);
  });

  it('writes the exported graphs as standalone .onnx files when asked', async () => {
    const nets: LsrNetworks = { vqvae: { cfg: TINY_VQVAE, params: initVqvae(TINY_VQVAE, 1) }, prior: { cfg: TINY_PRIOR, params: initPixelSnail(TINY_PRIOR, 2) } };
    const { root, cleanup } = await tempRoot('onnx-save-');
    try {
      const engine = await createLsrEngine('onnx', nets, { saveOnnxTo: root, log: () => undefined });
      await engine.dispose();
      const ort = await requireOnnxRuntime();
      const names = ['vqvae-encoder', 'vqvae-decoder', 'pixelsnail-logits', 'pixelsnail-nll'];
      const outputs: string[][] = [];
      for (const name of names) {
        const session = await ort.InferenceSession.create(join(root, `${name}.onnx`));
        outputs.push([...session.outputNames]);
        await session.release();
      }
      expect(outputs).toEqual([['z', 'codes'], ['image'], ['logits'], ['nll']]);
    } finally {
      disposeLsrNetworks(nets);
      await cleanup();
    }
  });

  it("'auto' keeps TF.js when tfjs-node-gpu is active", async () => {
    const nets: LsrNetworks = { vqvae: { cfg: TINY_VQVAE, params: initVqvae(TINY_VQVAE, 1) }, prior: { cfg: TINY_PRIOR, params: initPixelSnail(TINY_PRIOR, 2) } };
    try {
      const engine = await createLsrEngine('auto', nets, { tfjsBackend: 'tensorflow', log: () => undefined });
      expect(engine.name).toBe('tfjs');
      expect(engine.wantsWorkers).toBe(false);
    } finally {
      disposeLsrNetworks(nets);
    }
  });

  it("'auto' picks ONNX Runtime here; 'tfjs' stays on TF.js", async () => {
    const nets: LsrNetworks = { vqvae: { cfg: TINY_VQVAE, params: initVqvae(TINY_VQVAE, 1) }, prior: { cfg: TINY_PRIOR, params: initPixelSnail(TINY_PRIOR, 2) } };
    try {
      const engines: LsrEngine[] = [await createLsrEngine('auto', nets, { log: () => undefined }), await createLsrEngine('tfjs', nets)];
      expect(engines.map((e) => e.name)).toEqual(['onnx', 'tfjs']);
      expect(engines.map((e) => e.wantsWorkers)).toEqual([false, true]);
      for (const e of engines) await e.dispose();
    } finally {
      disposeLsrNetworks(nets);
    }
  });
});

