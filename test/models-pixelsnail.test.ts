import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { createRng } from '../src/engine/random.js';
import { pixelsnailPreset, type PixelSnailConfig } from '../src/models/config.js';
import { pixelsnailFlops } from '../src/models/flops.js';
import { disposeParams, type ParamMap } from '../src/models/params.js';
import {
  attentionMask,
  initPixelSnail,
  pixelsnailParamSpecs,
  priorLogits,
  priorLoss,
  priorNll,
} from '../src/methods/lsr/pixelsnail.js';

const tiny: PixelSnailConfig = {
  codebookSize: 5,
  height: 6,
  width: 6,
  channels: 8,
  blocks: 2,
  resBlocksPerBlock: 1,
  attention: { keyChannels: 4, valueChannels: 8, downsample: 1 },
  dropout: 0.1,
  condChannels: 1,
};

function randomCodes(n: number, cfg: PixelSnailConfig, seed: number): Int32Array {
  const rng = createRng(seed);
  return Int32Array.from({ length: n * cfg.height * cfg.width }, () => rng.int(cfg.codebookSize));
}

/** Gives the zero-initialised conditioning weights random values, so the position matters. */
function randomiseConditioning(params: ParamMap, seed: number): void {
  const rng = createRng(seed);
  for (const [name, v] of Object.entries(params)) {
    if (name.includes('.cond.')) v.assign(tf.tensor(Array.from({ length: v.size }, () => rng.normal()), v.shape));
  }
}

/**
 * For every position p of one random map, a copy with the code at p changed; returns, per p, the
 * largest |Δ logit| at positions ≤ p and at positions > p (raster order).
 */
function influence(params: ParamMap, cfg: PixelSnailConfig, seed: number): { upTo: number[]; after: number[] } {
  const n = cfg.height * cfg.width;
  const k = cfg.codebookSize;
  const base = randomCodes(1, cfg, seed);
  const batch = new Int32Array((n + 1) * n);
  batch.set(base, 0);
  for (let p = 0; p < n; p++) {
    const changed = base.slice();
    changed[p] = (changed[p]! + 1) % k;
    batch.set(changed, (p + 1) * n);
  }
  const logits = tf.tidy(() => {
    const codes = tf.tensor3d(batch, [n + 1, cfg.height, cfg.width], 'int32');
    const pos = tf.fill([n + 1], 0.25);
    return priorLogits(params, cfg, codes, pos as tf.Tensor1D).dataSync() as Float32Array;
  });
  const upTo: number[] = [];
  const after: number[] = [];
  for (let p = 0; p < n; p++) {
    let before = 0;
    let later = 0;
    for (let q = 0; q < n; q++) {
      for (let c = 0; c < k; c++) {
        const d = Math.abs(logits[((p + 1) * n + q) * k + c]! - logits[q * k + c]!);
        if (q <= p) before = Math.max(before, d);
        else later = Math.max(later, d);
      }
    }
    upTo.push(before);
    after.push(later);
  }
  return { upTo, after };
}

describe('PixelSNAIL structure', () => {
  beforeAll(async () => {
    await initEngine({ prefer: 'cpu', log: () => {} });
  });

  it('the attention mask lets a query see only key blocks that end strictly before it', () => {
    const m = attentionMask(4, 4, 2); // 16 queries × 4 blocks; block (0,0) ends at position 5
    expect(m[5 * 4 + 0]).toBe(0);
    expect(m[6 * 4 + 0]).toBe(1);
    expect(m[0]).toBe(0);
    const full = attentionMask(3, 3, 1);
    for (let p = 0; p < 9; p++) for (let q = 0; q < 9; q++) expect(full[p * 9 + q]).toBe(q < p ? 1 : 0);
  });

  it('FLOP counts: compact preset far cheaper than reference', () => {
    for (const region of ['brain', 'abdomen'] as const) {
      const ref = pixelsnailFlops(pixelsnailPreset('reference', region));
      const compact = pixelsnailFlops(pixelsnailPreset('compact', region));
      expect(compact).toBeGreaterThan(0);
      expect(compact).toBeLessThan(ref / 10);
    }
  });

  it('parameter names are unique and the same seed gives the same bytes', () => {
    const specs = pixelsnailParamSpecs(tiny);
    expect(new Set(specs.map((s) => s.name)).size).toBe(specs.length);
    const a = initPixelSnail(tiny, 9);
    const b = initPixelSnail(tiny, 9);
    for (const name of Object.keys(a)) expect(Array.from(b[name]!.dataSync())).toEqual(Array.from(a[name]!.dataSync()));
    disposeParams(a);
    disposeParams(b);
  });
});

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`PixelSNAIL on ${backend}`, () => {
    beforeAll(async () => {
      await initEngine({ prefer: backend, log: () => {} });
    });

    const variants: Array<[string, PixelSnailConfig]> = [
      ['attention on every code', tiny],
      ['attention on 2×2 blocks', { ...tiny, attention: { keyChannels: 4, valueChannels: 8, downsample: 2 } }],
      ['no attention', { ...tiny, attention: null }],
    ];
    for (const [label, cfg] of variants) {
      it(`is causal (${label}): changing code p changes no logit at positions ≤ p, and some after p`, () => {
        const params = initPixelSnail(cfg, 3);
        randomiseConditioning(params, 3);
        const { upTo, after } = influence(params, cfg, 4);
        const n = cfg.height * cfg.width;
        for (let p = 0; p < n; p++) {
          expect(upTo[p], `position ${p}`).toBe(0);
          if (p < n - 1) expect(after[p], `position ${p}`).toBeGreaterThan(0);
        }
        disposeParams(params);
      });
    }

    it('NLL is −log softmax at the given codes, per position, in nats', () => {
      const params = initPixelSnail(tiny, 5);
      const codes = tf.tensor3d(randomCodes(2, tiny, 5), [2, 6, 6], 'int32');
      const pos = tf.tensor1d([-0.5, 0.5]);
      const nll = priorNll(params, tiny, codes, pos);
      expect(nll.shape).toEqual([2, 6, 6]);
      const logits = priorLogits(params, tiny, codes, pos).arraySync() as number[][][][];
      const c = codes.arraySync() as number[][][];
      const got = nll.arraySync() as number[][][];
      for (const [b, i, j] of [[0, 0, 0], [1, 3, 4], [1, 5, 5]] as const) {
        const row = logits[b]![i]![j]!;
        const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
        expect(got[b]![i]![j]).toBeCloseTo(lse - row[c[b]![i]![j]!]!, 4);
      }
      // Position 0 sees nothing but the slice position; at init every code is about equally likely.
      expect(Math.abs(got[0]![0]![0]! - Math.log(tiny.codebookSize))).toBeLessThan(0.5);
      tf.dispose([codes, pos, nll]);
      disposeParams(params);
    });

    it('conditioning on the slice position changes the logits', () => {
      const params = initPixelSnail(tiny, 6);
      randomiseConditioning(params, 6);
      const out = tf.tidy(() => {
        const codes = tf.tensor3d(randomCodes(1, tiny, 6), [1, 6, 6], 'int32');
        const a = priorLogits(params, tiny, codes, tf.tensor1d([-0.4]));
        const b = priorLogits(params, tiny, codes, tf.tensor1d([0.4]));
        return tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
      });
      expect(out).toBeGreaterThan(1e-4);
      disposeParams(params);
    });

    // Training is checked on wasm only, to keep the suite fast (the cpu backend gives the same numbers, slower).
    it.runIf(backend === 'wasm')('the loss falls within a few dozen clipped Adam steps on structured code maps', () => {
      const cfg = tiny;
      // Each map repeats a random first row shifted by one code per row: predictable from the prefix.
      const rng = createRng(8);
      const n = 8;
      const data = new Int32Array(n * 36);
      for (let b = 0; b < n; b++) {
        const first = Array.from({ length: 6 }, () => rng.int(cfg.codebookSize));
        for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) data[b * 36 + i * 6 + j] = (first[j]! + i) % cfg.codebookSize;
      }
      const codes = tf.tensor3d(data, [n, 6, 6], 'int32');
      const pos = tf.linspace(-0.5, 0.5, n) as tf.Tensor1D;
      const params = initPixelSnail(cfg, 7);
      const opt = tf.train.adam(1e-2);
      const losses: number[] = [];
      for (let step = 0; step < 30; step++) {
        const { value, grads } = tf.variableGrads(
          () => priorLoss(params, cfg, codes, pos, { training: true, seed: step }),
          Object.values(params),
        );
        const clipped = Object.entries(grads).map(([name, g]) => ({ name, tensor: tf.clipByValue(g, -1, 1) }));
        opt.applyGradients(clipped);
        losses.push(value.dataSync()[0]!);
        tf.dispose([value, grads, clipped.map((c) => c.tensor)]);
      }
      if (process.env.MOODLSR_TEST_VERBOSE) console.log('prior losses', losses.map((l) => l.toFixed(3)).join(' '));
      expect(losses.every(Number.isFinite)).toBe(true);
      const first = losses.slice(0, 3).reduce((a, b) => a + b) / 3;
      const last = losses.slice(-3).reduce((a, b) => a + b) / 3;
      expect(last).toBeLessThan(0.7 * first);
      // And the NLL of the training maps fell below that of a uniform guess.
      const nllAfter = tf.tidy(() => tf.mean(priorNll(params, cfg, codes, pos)).dataSync()[0]!);
      expect(nllAfter).toBeLessThan(Math.log(cfg.codebookSize));
      opt.dispose();
      tf.dispose([codes, pos]);
      disposeParams(params);
    });
  });
}

describe('PixelSNAIL preset geometry', () => {
  beforeAll(async () => {
    await initEngine({ prefer: 'wasm', log: () => {} });
  });

  for (const preset of ['reference', 'compact'] as const) {
    for (const region of ['brain', 'abdomen'] as const) {
      it(`${preset} ${region}: logits for every position of the latent grid`, () => {
        const full = pixelsnailPreset(preset, region);
        // Reference widths shrunk for speed; grid, codebook and attention downsampling kept.
        const cfg: PixelSnailConfig = preset === 'reference' ? { ...full, channels: 8, blocks: 1, resBlocksPerBlock: 1 } : full;
        const params = initPixelSnail(cfg, 1);
        const out = tf.tidy(() => {
          const codes = tf.tensor3d(randomCodes(2, cfg, 1), [2, cfg.height, cfg.width], 'int32');
          return priorNll(params, cfg, codes, tf.tensor1d([0, 0.1])).shape;
        });
        const grid = region === 'abdomen' ? 10 : preset === 'reference' ? 20 : 16;
        expect([cfg.height, cfg.width]).toEqual([grid, grid]);
        expect(out).toEqual([2, grid, grid]);
        disposeParams(params);
      });
    }
  }
});
