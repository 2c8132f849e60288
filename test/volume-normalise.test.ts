import { describe, it, expect } from 'vitest';
import { createRng } from '../src/engine/random.js';
import {
  ABDOMEN_NORMALISATION,
  BRAIN_NORMALISATION,
  foregroundMask,
  foregroundStatistics,
  normalise,
  normaliseAbdomen,
  normaliseBrain,
  normalisationFor,
} from '../src/volume/normalise.js';

/** A brain-like array: background 0 and tiny noise below the threshold, foreground in [0.2, 1). */
function brainLike(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? rng.uniform(0, 0.04) : rng.uniform(0.2, 1)));
}

describe('brain normalisation', () => {
  it('z-scores the foreground (> 0.05) to mean 0, std ≈ 1 and leaves the background at exactly 0', () => {
    const data = brainLike(3000, 1);
    const out = normaliseBrain(data);
    let count = 0;
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < data.length; i++) {
      if (data[i] > 0.05) {
        count++;
        sum += out[i];
        squares += out[i] * out[i];
      } else {
        expect(out[i]).toBe(0);
      }
    }
    expect(count).toBe(2000);
    expect(sum / count).toBeCloseTo(0, 5);
    // std / (std + 1e-5) with std ≈ 0.23
    expect(Math.sqrt(squares / count)).toBeCloseTo(1, 3);
  });

  it('matches the formula (v − mean) / (std + 1e-5) with population statistics', () => {
    const data = Float32Array.from([0, 0.01, 0.2, 0.4, 0.6, 0.04]);
    const mean = 0.4;
    const std = Math.sqrt((0.04 + 0 + 0.04) / 3);
    const out = normaliseBrain(data);
    expect(Array.from(out.subarray(0, 2))).toEqual([0, 0]);
    expect(out[5]).toBe(0);
    expect(out[2]).toBeCloseTo((0.2 - mean) / (std + 1e-5), 5);
    expect(out[4]).toBeCloseTo((0.6 - mean) / (std + 1e-5), 5);
    const stats = foregroundStatistics(data, 0.05);
    expect(stats.count).toBe(3);
    expect(stats.mean).toBeCloseTo(mean, 7);
    expect(stats.std).toBeCloseTo(std, 7);
  });

  it('uses given (whole-volume) statistics instead of the data’s own', () => {
    const data = Float32Array.from([0.5, 0.7]);
    const out = normaliseBrain(data, 0.05, 1e-5, { mean: 0.5, std: 0.1, count: 10 });
    expect(out[0]).toBeCloseTo(0, 7);
    expect(out[1]).toBeCloseTo(0.2 / (0.1 + 1e-5), 5);
  });

  it('an empty foreground gives all zeros, not NaN', () => {
    const out = normaliseBrain(new Float32Array([0, 0.01, NaN]));
    expect(Array.from(out)).toEqual([0, 0, 0]);
  });

  it('foregroundMask marks voxels above the threshold', () => {
    expect(Array.from(foregroundMask(Float32Array.from([0, 0.049, 0.051, 1, NaN])))).toEqual([0, 0, 1, 1, 0]);
    // exactly at the threshold is background, for the mask and for the z-score alike
    expect(Array.from(foregroundMask(Float32Array.from([0.25, 0.5, 0.75]), 0.5))).toEqual([0, 0, 1]);
    expect(normaliseBrain(Float32Array.from([0.25, 0.5, 0.75, 1]), 0.5)[1]).toBe(0);
  });
});

describe('abdomen normalisation', () => {
  it('maps x to 2x − 1', () => {
    expect(Array.from(normaliseAbdomen(Float32Array.from([0, 0.25, 1])))).toEqual([-1, -0.5, 1]);
  });
});

describe('Normalisation descriptors', () => {
  it('normalise(data, descriptor) is the same code path as the region functions, and JSON round-trips', () => {
    const data = brainLike(500, 2);
    expect(normalise(data, BRAIN_NORMALISATION)).toEqual(normaliseBrain(data));
    expect(normalise(data, ABDOMEN_NORMALISATION)).toEqual(normaliseAbdomen(data));
    const stored = JSON.parse(JSON.stringify(normalisationFor('brain')));
    expect(normalise(data, stored)).toEqual(normaliseBrain(data));
    expect(normalisationFor('abdomen')).toBe(ABDOMEN_NORMALISATION);
  });

  it('does not modify its input', () => {
    const data = brainLike(30, 3);
    const copy = data.slice();
    normalise(data, BRAIN_NORMALISATION);
    normalise(data, ABDOMEN_NORMALISATION);
    expect(data).toEqual(copy);
  });
});
