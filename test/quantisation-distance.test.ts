import { describe, expect, it } from 'vitest';
import { quantisationDistances } from '../src/score/quantisation-distance.js';

describe('quantisationDistances', () => {
  const codebook = Float32Array.from([0, 0, 1, 0, 0, 2]); // three codes of dimension 2

  it('is the squared distance of each latent vector to its own code', () => {
    const z = Float32Array.from([0.5, 0, 1, 1, 3, 2]);
    const d = quantisationDistances(z, Int32Array.from([0, 1, 2]), codebook, 2);
    expect(Array.from(d)).toEqual([0.25, 1, 9]);
  });

  it('refuses a code outside the codebook and a latent array of the wrong length', () => {
    expect(() => quantisationDistances(new Float32Array(2), Int32Array.from([3]), codebook, 2)).toThrow(/code 3 at position 0/);
    expect(() => quantisationDistances(new Float32Array(3), Int32Array.from([0]), codebook, 2)).toThrow(/3 latent values for 1 codes/);
  });
});
