import { describe, expect, it } from 'vitest';
import { maxPool3d, relativeResidual, residualReference } from '../src/score/normal-residual.js';

describe('residual relative to normal anatomy', () => {
  it('maxPool3d takes the window maximum, cut at the border', () => {
    const data = Float32Array.from([0, 5, 0, 0, 0, 1]);
    expect(Array.from(maxPool3d(data, [6, 1, 1], [3, 1, 1]))).toEqual([5, 5, 5, 0, 1, 1]);
  });

  it('the reference is the mean of the normal maps, dilated in-plane', () => {
    const a = new Float32Array(25);
    const b = new Float32Array(25);
    a[12] = 2; // centre of a 5×5 slice
    b[12] = 4;
    const ref = residualReference([a, b], [5, 5, 1], [3, 3, 1]);
    expect(ref[12]).toBeCloseTo(3);
    expect(ref[6]).toBeCloseTo(3); // a diagonal neighbour
    expect(ref[0]).toBe(0); // two pixels away
    expect(() => residualReference([], [5, 5, 1], [3, 3, 1])).toThrow(/at least one/);
  });

  it('subtract keeps only the excess; divide scales by the reference plus the floor', () => {
    const residual = Float32Array.from([0.1, 0.5, 0.2]);
    const reference = Float32Array.from([0.3, 0.3, 0]);
    expect(Array.from(relativeResidual(residual, reference, 'subtract', 0.05)).map((v) => +v.toFixed(6))).toEqual([0, 0.2, 0.2]);
    expect(Array.from(relativeResidual(residual, reference, 'divide', 0.1)).map((v) => +v.toFixed(5))).toEqual([0.25, 1.25, 2]);
    expect(() => relativeResidual(residual, new Float32Array(2), 'divide', 0.1)).toThrow(/reference 2/);
  });
});
