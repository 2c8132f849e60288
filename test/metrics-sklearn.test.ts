import { beforeAll, describe, expect, it } from 'vitest';
import { createRng, type Rng } from '../src/engine/random.js';
import { apFromHistogram, aurocFromHistogram, sampleAp, sampleAuroc, ScoreHistogram } from '../eval/metrics/index.js';
import { assertSklearnAvailable, sklearnPixelMetrics, sklearnSampleMetrics, type ReferenceMetrics } from './helpers/sklearn-reference.js';

const TOLERANCE = 1e-12;

beforeAll(() => {
  assertSklearnAvailable();
});

function expectMatchesReference(ours: { ap: number; auroc: number }, reference: ReferenceMetrics): void {
  if (reference.ap === null) expect(ours.ap).toBeNaN();
  else expect(Math.abs(ours.ap - reference.ap)).toBeLessThanOrEqual(TOLERANCE);
  if (reference.auroc === null) expect(ours.auroc).toBeNaN();
  else expect(Math.abs(ours.auroc - reference.auroc)).toBeLessThanOrEqual(TOLERANCE);
}

function randomLabels(rng: Rng, count: number, prevalence: number): Uint8Array {
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = rng.next() < prevalence ? 1 : 0;
  return labels;
}

/** Scores that depend on the label a little (so AP is neither trivial nor chance) and spill outside [0, 1]. */
function informativeScores(rng: Rng, labels: Uint8Array, spread: number): Float64Array {
  const scores = new Float64Array(labels.length);
  for (let i = 0; i < labels.length; i++) scores[i] = 0.35 + 0.25 * labels[i] + spread * rng.normal();
  return scores;
}

function checkSample(scores: Float64Array, labels: Uint8Array): void {
  const ours = { ap: sampleAp(scores, labels), auroc: sampleAuroc(scores, labels) };
  expectMatchesReference(ours, sklearnSampleMetrics(scores, labels));
}

/** Feeds the predictions to a histogram in several unequal cases; sklearn sees them concatenated. */
function checkPixel(predictions: Float32Array, labels: Uint8Array, caseCount: number, rng: Rng): void {
  const histogram = new ScoreHistogram();
  const cuts = [0, ...Array.from({ length: caseCount - 1 }, () => rng.int(predictions.length)).sort((a, b) => a - b), predictions.length];
  for (let c = 0; c + 1 < cuts.length; c++) {
    histogram.add(predictions.subarray(cuts[c], cuts[c + 1]), labels.subarray(cuts[c], cuts[c + 1]));
  }
  const ours = { ap: apFromHistogram(histogram), auroc: aurocFromHistogram(histogram) };
  expectMatchesReference(ours, sklearnPixelMetrics(predictions, labels));
}

describe('sample-level AP and AUROC equal scikit-learn', () => {
  it('on random float64 scores, including scores outside [0, 1]', () => {
    const rng = createRng('sample-random');
    const labels = randomLabels(rng, 700, 0.3);
    checkSample(informativeScores(rng, labels, 0.3), labels);
  });

  it('on heavily tied scores (5 distinct values)', () => {
    const rng = createRng('sample-ties');
    const labels = randomLabels(rng, 600, 0.4);
    const levels = [0.1, 0.25, 0.5, 0.75, 0.9];
    const scores = Float64Array.from(labels, (label) => levels[Math.min(4, rng.int(4) + label)]);
    checkSample(scores, labels);
  });

  it('on float16-quantised scores', () => {
    const rng = createRng('sample-float16');
    const labels = randomLabels(rng, 800, 0.2);
    const scores = Float64Array.from(informativeScores(rng, labels, 0.2), (s) => Math.round(s * 2048) / 2048);
    checkSample(scores, labels);
  });

  it('with a single class present (AP undefined without positives, AUROC undefined)', () => {
    const rng = createRng('sample-one-class');
    const scores = Float64Array.from({ length: 50 }, () => rng.next());
    checkSample(scores, new Uint8Array(50));
    checkSample(scores, new Uint8Array(50).fill(1));
  });
});

describe('pooled pixel AP and AUROC (float16 histogram) equal scikit-learn on float16-read, clipped predictions', () => {
  it('on random float32 predictions over several cases, with values below 0, above 1 and in the subnormal range', () => {
    const rng = createRng('pixel-random');
    const count = 40_000;
    const labels = randomLabels(rng, count, 0.05);
    const predictions = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const kind = rng.int(10);
      if (kind === 0) predictions[i] = rng.next() * 1e-5; // float16 subnormals and underflow to zero
      else if (kind === 1) predictions[i] = -rng.next() * 0.1; // clipped to 0
      else if (kind === 2) predictions[i] = 1 + rng.next() * 1e5; // clipped to 1, some overflow to inf first
      else predictions[i] = 0.3 + 0.3 * labels[i] + 0.2 * rng.normal();
    }
    checkPixel(predictions, labels, 5, rng);
  });

  it('on heavily tied predictions (5 distinct values plus exact 0 and 1)', () => {
    const rng = createRng('pixel-ties');
    const count = 30_000;
    const labels = randomLabels(rng, count, 0.1);
    const levels = [0, 0.2, 0.4, 0.6, 0.8, 1];
    const predictions = Float32Array.from(labels, (label) => levels[rng.int(5) + label]);
    checkPixel(predictions, labels, 3, rng);
  });

  it('on predictions that collapse onto the same float16 values', () => {
    const rng = createRng('pixel-collapse');
    const count = 30_000;
    const labels = randomLabels(rng, count, 0.3);
    // Within ±2^-13 of a few centres: distinct in float32, only a handful of values after float16 rounding.
    const predictions = Float32Array.from(labels, (label) => 0.5 + 0.125 * (rng.int(3) + label) + (rng.next() - 0.5) * 2 ** -12);
    checkPixel(predictions, labels, 4, rng);
  });
});
