import { describe, expect, it } from 'vitest';
import { createRng } from '../src/engine/random.js';
import {
  apFromHistogram,
  aurocFromHistogram,
  bestDice,
  bestDiceFromHistogram,
  bootstrapCi,
  bootstrapMeanCi,
  bootstrapPooledCi,
  bootstrapSampleCi,
  clippedFloat16Bin,
  diceAtThreshold,
  diceAtThresholdFromHistogram,
  float16BitsToNumber,
  float32ArrayToFloat16Bits,
  float32ToFloat16Bits,
  FLOAT16_UNIT_BIN_COUNT,
  percentile,
  rankedCountsFromScores,
  rocAuc,
  roundHalfEven,
  sampleAp,
  sampleAuroc,
  sampleBestDice,
  ScoreHistogram,
} from '../eval/metrics/index.js';
import { numpyFloat16Bits } from './helpers/sklearn-reference.js';

describe('float32 → float16 (IEEE binary16, round to nearest even)', () => {
  it('gives the standard bit patterns', () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.1, 0x2e66],
      [1 / 3, 0x3555],
      [65504, 0x7bff], // largest finite
      [65519, 0x7bff], // just below the half-ulp boundary
      [65520, 0x7c00], // tie, rounds to even = infinity
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [1023 * 2 ** -24, 0x03ff], // largest subnormal
      [1023.5 * 2 ** -24, 0x0400], // tie between 1023 (odd) and 1024 → 1024, the smallest normal
      [1.5 * 2 ** -24, 0x0002], // tie → even
      [2.5 * 2 ** -24, 0x0002], // tie → even
      [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal → 0
      [0.75 * 2 ** -24, 0x0001],
      [1 + 2 ** -11, 0x3c00], // tie between mantissa 0 and 1 → 0
      [1 + 3 * 2 ** -11, 0x3c02], // tie between mantissa 1 and 2 → 2
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
    ];
    for (const [value, bits] of cases) expect([value, float32ToFloat16Bits(value)]).toEqual([value, bits]);
    expect(float32ToFloat16Bits(NaN) & 0x7fff).toBe(0x7e00);
  });

  it('inverts exactly on every non-NaN float16 pattern', () => {
    for (let bits = 0; bits <= 0xffff; bits++) {
      const value = float16BitsToNumber(bits);
      if (Number.isNaN(value)) continue;
      if (float32ToFloat16Bits(value) !== bits) throw new Error(`pattern ${bits.toString(16)} does not round-trip`);
    }
    expect(float16BitsToNumber(0x3c00)).toBe(1);
    expect(float16BitsToNumber(0x7e00)).toBeNaN();
  });

  it("matches numpy's astype(np.float16) on random and rounding-boundary float32 patterns", () => {
    const rng = createRng('float16-vs-numpy');
    const patterns: number[] = [];
    for (let i = 0; i < 100_000; i++) patterns.push(rng.seed());
    // For every exponent that matters, mantissas at, just below and just above each float16 rounding boundary
    // (multiples of 2^12 cover the ties of the normal range and of every subnormal shift).
    for (let exponent = 95; exponent <= 145; exponent++) {
      for (let kept = 0; kept < 2048; kept += 3) {
        for (const offset of [-1, 0, 1]) {
          const mantissa = (kept * 0x1000 + offset) & 0x7fffff;
          patterns.push(((exponent << 23) | mantissa) >>> 0, (0x80000000 | (exponent << 23) | mantissa) >>> 0);
        }
      }
    }
    const values = new Float32Array(Uint32Array.from(patterns).buffer);
    const finiteOrInfinite = values.filter((v) => !Number.isNaN(v));
    const ours = float32ArrayToFloat16Bits(finiteOrInfinite);
    const reference = numpyFloat16Bits(finiteOrInfinite);
    let mismatches = 0;
    for (let i = 0; i < ours.length; i++) if (ours[i] !== reference[i]) mismatches++;
    expect(reference.length).toBe(finiteOrInfinite.length);
    expect(mismatches).toBe(0);
  });

  it('bins by float16 then clips: negatives and −0 at 0, above 1 at 0x3C00, NaN rejected', () => {
    const binOf = (value: number): number => clippedFloat16Bin(new Int32Array(Float32Array.of(value).buffer)[0]);
    expect(binOf(-0)).toBe(0);
    expect(binOf(-1e-3)).toBe(0);
    expect(binOf(-Infinity)).toBe(0);
    expect(binOf(0.5)).toBe(0x3800);
    expect(binOf(1)).toBe(0x3c00);
    expect(binOf(0.99999)).toBe(0x3c00); // rounds to 1 in float16
    expect(binOf(1.5)).toBe(0x3c00);
    expect(binOf(Infinity)).toBe(0x3c00);
    expect(binOf(NaN)).toBe(-1);
    expect(FLOAT16_UNIT_BIN_COUNT).toBe(0x3c00 + 1);
  });
});

describe('labels follow np.rint', () => {
  it('rounds half to even', () => {
    expect([0.5, 1.5, 2.5, 3.5, 0.49, 0.51, -0.6].map(roundHalfEven)).toEqual([0, 2, 2, 4, 0, 1, -1]);
  });

  it('reads 0.5 as negative, 0.6 and 1.4 as positive, rejects labels that round to 2 or are not 0/1 bytes', () => {
    const histogram = new ScoreHistogram().add(Float32Array.of(0.1, 0.2, 0.3), Float32Array.of(0.5, 0.6, 1.4));
    expect([histogram.totalPositives(), histogram.totalNegatives()]).toEqual([2, 1]);
    expect(() => new ScoreHistogram().add(Float32Array.of(0.1), Float32Array.of(1.5))).toThrow(/label/);
    expect(() => new ScoreHistogram().add(Float32Array.of(0.1), Uint8Array.of(2))).toThrow(/label/);
    expect(() => new ScoreHistogram().add(Float32Array.of(NaN), Uint8Array.of(0))).toThrow(/NaN/);
    expect(() => new ScoreHistogram().add(Float32Array.of(0.1, 0.2), Uint8Array.of(0))).toThrow(/length/);
    expect(() => sampleAp([NaN], [1])).toThrow(/NaN/);
  });
});

function randomCase(seed: string, count: number): { predictions: Float32Array; labels: Uint8Array } {
  const rng = createRng(seed);
  const labels = Uint8Array.from({ length: count }, () => (rng.next() < 0.2 ? 1 : 0));
  const predictions = Float32Array.from(labels, (label) => 0.3 * label + rng.uniform(-0.1, 1.1));
  return { predictions, labels };
}

/** The score the evaluator ranks by: float16 value, clipped. */
function quantisedScore(prediction: number): number {
  return Math.min(1, Math.max(0, float16BitsToNumber(float32ToFloat16Bits(prediction))));
}

function bruteForceDice(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold: number): number {
  let truePositives = 0;
  let falsePositives = 0;
  let falseNegatives = 0;
  for (let i = 0; i < scores.length; i++) {
    const predicted = scores[i] >= threshold;
    if (predicted && labels[i]) truePositives++;
    else if (predicted) falsePositives++;
    else if (labels[i]) falseNegatives++;
  }
  return (2 * truePositives) / (2 * truePositives + falsePositives + falseNegatives);
}

describe('ScoreHistogram', () => {
  it('accumulated case by case equals one pass over the concatenation', () => {
    const cases = [randomCase('a', 1000), randomCase('b', 1), randomCase('c', 2500), randomCase('d', 0)];
    const byCase = new ScoreHistogram();
    for (const c of cases) byCase.add(c.predictions, c.labels);
    const concatenated = new ScoreHistogram().add(
      Float32Array.from(cases.flatMap((c) => Array.from(c.predictions))),
      Uint8Array.from(cases.flatMap((c) => Array.from(c.labels))),
    );
    expect(Array.from(byCase.positives)).toEqual(Array.from(concatenated.positives));
    expect(Array.from(byCase.negatives)).toEqual(Array.from(concatenated.negatives));
    expect(byCase.totalPositives() + byCase.totalNegatives()).toBe(3501);
    const weighted = new ScoreHistogram().addHistogram(byCase, 3);
    expect(weighted.totalNegatives()).toBe(3 * byCase.totalNegatives());
  });

  it('gives the brute-force best Dice over every threshold, and Dice at each threshold', () => {
    const { predictions, labels } = randomCase('dice', 300);
    for (let i = 0; i < predictions.length; i += 7) predictions[i] = predictions[(i * 13) % predictions.length]; // ties
    const histogram = new ScoreHistogram().add(predictions, labels);
    const scores = Array.from(predictions, quantisedScore);
    let bruteBest = 0;
    for (const threshold of new Set(scores)) {
      const brute = bruteForceDice(scores, labels, threshold);
      bruteBest = Math.max(bruteBest, brute);
      expect(diceAtThresholdFromHistogram(histogram, threshold).dice).toBeCloseTo(brute, 14);
    }
    const best = bestDiceFromHistogram(histogram);
    expect(best.dice).toBeCloseTo(bruteBest, 14);
    expect(bruteForceDice(scores, labels, best.threshold)).toBeCloseTo(best.dice, 14);
    expect(best.truePositives + best.falseNegatives).toBe(histogram.totalPositives());
  });

  it('gives the pairwise Mann–Whitney AUROC (ties count one half)', () => {
    const { predictions, labels } = randomCase('auroc', 400);
    for (let i = 0; i < predictions.length; i += 3) predictions[i] = Math.round(predictions[i] * 4) / 4;
    const scores = Array.from(predictions, quantisedScore);
    let wins = 0;
    let pairs = 0;
    for (let i = 0; i < scores.length; i++) {
      if (!labels[i]) continue;
      for (let j = 0; j < scores.length; j++) {
        if (labels[j]) continue;
        pairs++;
        wins += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
      }
    }
    expect(aurocFromHistogram(new ScoreHistogram().add(predictions, labels))).toBeCloseTo(wins / pairs, 13);
  });

  it('returns NaN for metrics that are undefined for the classes present', () => {
    const onlyNegatives = new ScoreHistogram().add(Float32Array.of(0.1, 0.9), Uint8Array.of(0, 0));
    expect(apFromHistogram(onlyNegatives)).toBeNaN();
    expect(aurocFromHistogram(onlyNegatives)).toBeNaN();
    expect(bestDiceFromHistogram(onlyNegatives).dice).toBeNaN();
    expect(diceAtThresholdFromHistogram(onlyNegatives, 0.5).dice).toBe(0);
    expect(diceAtThresholdFromHistogram(onlyNegatives, 0.95).dice).toBeNaN(); // empty label, empty prediction
    const onlyPositives = new ScoreHistogram().add(Float32Array.of(0.1, 0.9), Uint8Array.of(1, 1));
    expect(apFromHistogram(onlyPositives)).toBe(1);
    expect(aurocFromHistogram(onlyPositives)).toBeNaN();
  });
});

describe('sample-level metrics', () => {
  it('share the sweep with the histogram path: float16-representable scores give identical results', () => {
    const { predictions, labels } = randomCase('shared', 500);
    const scores = Float64Array.from(predictions, quantisedScore);
    const histogram = new ScoreHistogram().add(predictions, labels);
    expect(sampleAp(scores, labels)).toBe(apFromHistogram(histogram));
    expect(sampleAuroc(scores, labels)).toBe(aurocFromHistogram(histogram));
    expect(sampleBestDice(scores, labels).dice).toBe(bestDiceFromHistogram(histogram).dice);
  });

  it('do not quantise: scores closer than a float16 step stay distinct', () => {
    const scores = [0.5, 0.5 + 1e-9, 0.5 + 2e-9];
    const counts = rankedCountsFromScores(scores, [0, 1, 0]);
    expect(Array.from(counts.thresholds)).toEqual([0.5 + 2e-9, 0.5 + 1e-9, 0.5]);
    expect(sampleAp(scores, [0, 1, 0])).toBeCloseTo(0.5, 15);
    expect(sampleAuroc([-3, 0, 7, 1], [0, 1, 1, 0])).toBe(0.5); // 0.75 unclipped; clipped, -3 ties with 0 and 7 with 1
  });

  it('weights act as repeated cases', () => {
    const rng = createRng('weights');
    const scores = Array.from({ length: 60 }, () => Math.round(rng.next() * 10) / 10);
    const labels = scores.map((s) => (rng.next() < s ? 1 : 0));
    const weights = scores.map(() => rng.int(4));
    const repeatedScores = scores.flatMap((s, i) => Array<number>(weights[i]).fill(s));
    const repeatedLabels = labels.flatMap((l, i) => Array<number>(weights[i]).fill(l));
    expect(sampleAp(scores, labels, weights)).toBeCloseTo(sampleAp(repeatedScores, repeatedLabels), 14);
    expect(sampleAuroc(scores, labels, weights)).toBeCloseTo(sampleAuroc(repeatedScores, repeatedLabels), 14);
  });

  it('best Dice equals brute force; fixed-threshold Dice counts score ≥ threshold', () => {
    const rng = createRng('sample-dice');
    const scores = Array.from({ length: 80 }, () => Math.round(rng.next() * 20) / 20);
    const labels = scores.map((s) => (rng.next() < s ? 1 : 0));
    const counts = rankedCountsFromScores(scores, labels);
    const bruteBest = Math.max(...[...new Set(scores)].map((t) => bruteForceDice(scores, labels, t)));
    expect(bestDice(counts).dice).toBeCloseTo(bruteBest, 14);
    expect(diceAtThreshold(counts, 0.5).dice).toBeCloseTo(bruteForceDice(scores, labels, 0.5), 14);
    expect(rocAuc(counts)).toBe(sampleAuroc(scores, labels));
  });
});

describe('bootstrap confidence intervals', () => {
  const cases = Array.from({ length: 12 }, (_, i) => randomCase(`boot-${i}`, 200 + 10 * i));
  const caseHistograms = cases.map((c) => new ScoreHistogram().add(c.predictions, c.labels));

  it('are deterministic for a seed and change with the seed', () => {
    const first = bootstrapPooledCi(caseHistograms, apFromHistogram, { seed: 7, resamples: 200 });
    const again = bootstrapPooledCi(caseHistograms, apFromHistogram, { seed: 7, resamples: 200 });
    const other = bootstrapPooledCi(caseHistograms, apFromHistogram, { seed: 8, resamples: 200 });
    expect(again).toEqual(first);
    expect([other.lower, other.upper]).not.toEqual([first.lower, first.upper]);
    expect(first.lower).toBeLessThanOrEqual(first.upper);
    expect(first.validResamples).toBe(200);
  });

  it('pool each resample exactly as re-adding the drawn cases voxel by voxel', () => {
    const options = { seed: 'pool', resamples: 30 };
    const viaHistograms = bootstrapPooledCi(caseHistograms, apFromHistogram, options);
    const viaVoxels = bootstrapCi(
      cases.length,
      (weights) => {
        const histogram = new ScoreHistogram();
        weights.forEach((w, i) => {
          for (let k = 0; k < w; k++) histogram.add(cases[i].predictions, cases[i].labels);
        });
        return apFromHistogram(histogram);
      },
      options,
    );
    expect(viaHistograms).toEqual(viaVoxels);
    const pooled = new ScoreHistogram();
    for (const c of cases) pooled.add(c.predictions, c.labels);
    expect(viaHistograms.estimate).toBe(apFromHistogram(pooled));
  });

  it('collapse to the value for a constant statistic and drop undefined resamples', () => {
    const constant = bootstrapMeanCi([0.25, 0.25, 0.25], { seed: 1, resamples: 50 });
    expect([constant.lower, constant.estimate, constant.upper]).toEqual([0.25, 0.25, 0.25]);
    // One positive among 10 cases: resamples that miss it have no AP and are dropped.
    const scores = Array.from({ length: 10 }, (_, i) => i / 10);
    const labels = scores.map((_, i) => (i === 9 ? 1 : 0));
    const sparse = bootstrapSampleCi(scores, labels, sampleAp, { seed: 3, resamples: 300 });
    expect(sparse.validResamples).toBeGreaterThan(0);
    expect(sparse.validResamples).toBeLessThan(300);
    expect([sparse.lower, sparse.upper, sparse.estimate]).toEqual([1, 1, 1]);
    expect(() => bootstrapMeanCi([0.5, NaN], { seed: 1 })).toThrow(/NaN/);
  });

  it('use linear-interpolation percentiles', () => {
    expect(percentile(Float64Array.of(1, 2, 3, 4), 0.25)).toBeCloseTo(1.75, 15);
    expect(percentile(Float64Array.of(5), 0.975)).toBe(5);
    expect(percentile(new Float64Array(0), 0.5)).toBeNaN();
  });
});
