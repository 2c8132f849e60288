/**
 * DISYRE's normal residual reference (src/methods/disyre/reference.ts): the per-place mean and
 * standard deviation of normal maps over a grid of in-plane cells and slice-position bins, read back at
 * any stack geometry, and the standardised map z = max(0, (m − μ) / (σ + floor)) mapped into [0, 1).
 */
import { describe, expect, it } from 'vitest';
import { ReferenceAccumulator, referenceOnStack, standardisedMap } from '../src/score/place-reference.js';

/** A stack geometry of `count` slices evenly spread over the depth (positions in [−0.5, 0.5]). */
function geometry(count: number, side: number) {
  return { count, height: side, width: side, positions: Float32Array.from({ length: count }, (_, i) => (i + 0.5) / count - 0.5) };
}

describe('normal residual reference', () => {
  it('holds the mean and standard deviation over volumes at every place, for any stack depth', () => {
    const g = geometry(12, 8);
    const acc = new ReferenceAccumulator(8, 8, [4, 4, 3]);
    acc.add(new Float32Array(12 * 64).fill(0.1), g).add(new Float32Array(12 * 64).fill(0.3), g);
    const ref = acc.result();
    expect(ref.volumes).toBe(2);
    expect(ref.mean.length).toBe(4 * 4 * 3);
    for (const v of ref.mean) expect(v).toBeCloseTo(0.2, 6);
    for (const v of ref.sd) expect(v).toBeCloseTo(0.1, 6);
    const other = geometry(5, 8);
    const at = referenceOnStack(ref, other);
    expect(at.mean.length).toBe(5 * 64);
    for (const v of at.mean) expect(v).toBeCloseTo(0.2, 6);
    for (const v of at.sd) expect(v).toBeCloseTo(0.1, 6);
  });

  it('follows the slice position and the in-plane place of the normal maps', () => {
    const g = geometry(16, 8);
    // value = slice position + 0.5 on the left half of the plane, 0 on the right
    const map = new Float32Array(16 * 64);
    for (let s = 0; s < 16; s++) for (let y = 0; y < 8; y++) for (let x = 0; x < 4; x++) map[s * 64 + y * 8 + x] = g.positions[s]! + 0.5;
    const ref = new ReferenceAccumulator(8, 8, [2, 2, 4]).add(map, g).result();
    const at = referenceOnStack(ref, geometry(4, 8));
    const px = (s: number, x: number) => at.mean[s * 64 + 3 * 8 + x]!;
    expect(px(0, 0)).toBeLessThan(px(3, 0));
    expect(px(3, 0)).toBeGreaterThan(0.6);
    expect(px(0, 7)).toBe(0);
    // one volume: σ is only the spread of the slices within a position bin (tent weights)
    expect(at.sd[3 * 64 + 3 * 8 + 7]).toBe(0);
    expect(at.sd[3 * 64 + 3 * 8 + 0]).toBeGreaterThan(0);
    expect(at.sd[3 * 64 + 3 * 8 + 0]).toBeLessThan(0.2);
  });

  it('standardises: zero at or below the normal mean, increasing above it, in [0, 1)', () => {
    const mean = new Float32Array([0.1, 0.1, 0.1, 0.1, 0.5]);
    const sd = new Float32Array([0.01, 0.01, 0.01, 0.01, 0.2]);
    const z = standardisedMap(new Float32Array([0.05, 0.1, 0.15, 0.5, 0.55]), mean, sd, 0.003, 10);
    expect(z[0]).toBe(0);
    expect(z[1]).toBe(0);
    const u = (0.05 / 0.013) / 10;
    expect(z[2]).toBeCloseTo(u / (1 + u), 6);
    expect(z[3]).toBeGreaterThan(z[2]!);
    expect(z[3]).toBeLessThan(1);
    // the same excess where normals vary more counts less
    expect(z[4]).toBeLessThan(z[2]!);
    expect(() => standardisedMap(new Float32Array(2), mean, sd, 0.003, 10)).toThrow(/map 2/);
  });

  it('refuses a plane the grid does not divide, and another plane than its own', () => {
    expect(() => new ReferenceAccumulator(8, 8, [3, 4, 2])).toThrow(/8×8 plane/);
    const acc = new ReferenceAccumulator(8, 8, [4, 4, 2]);
    expect(() => acc.add(new Float32Array(2 * 36), geometry(2, 6))).toThrow(/stack plane 6×6/);
    expect(() => acc.result()).toThrow(/at least one/);
  });
});
