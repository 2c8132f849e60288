import { describe, it, expect } from 'vitest';
import { createRng } from '../src/engine/random.js';
import { halfPixelTaps, resizeBilinear, resizeStack, resizeStackToVolumePlane } from '../src/volume/resize.js';
import { extractAxialSlices } from '../src/volume/slices.js';
import { makeVolume } from '../src/volume/volume.js';

describe('halfPixelTaps', () => {
  it('upsampling 2 → 4 uses source coordinates −0.25, 0.25, 0.75, 1.25 clamped to [0, 1]', () => {
    const t = halfPixelTaps(2, 4);
    expect(Array.from(t.lo)).toEqual([0, 0, 0, 1]);
    expect(Array.from(t.hi)).toEqual([0, 1, 1, 1]);
    expect(Array.from(t.weightHi)).toEqual([0, 0.25, 0.75, 0]);
  });
});

describe('resizeBilinear', () => {
  it('matches a hand-computed 2×2 → 4×4 upsampling (align-corners = false, clamped edges)', () => {
    // [[0, 4], [8, 12]]; along each axis the weights are (1, 0), (0.75, 0.25), (0.25, 0.75), (0, 1).
    const out = resizeBilinear(Float32Array.from([0, 4, 8, 12]), 1, 2, 2, 4, 4);
    const row = [0, 1, 3, 4];
    const col = [0, 2, 6, 8];
    for (let h = 0; h < 4; h++) for (let w = 0; w < 4; w++) expect(out[h * 4 + w]).toBeCloseTo(row[w] + col[h], 6);
  });

  it('downsampling 4 → 2 averages pairs (source coordinates 0.5 and 2.5)', () => {
    const out = resizeBilinear(Float32Array.from([1, 3, 5, 7]), 1, 1, 4, 1, 2);
    expect(Array.from(out)).toEqual([2, 6]);
  });

  it('keeps a constant image exactly constant, for several slices and sizes', () => {
    const src = new Float32Array(3 * 7 * 5);
    for (let i = 0; i < 3; i++) src.fill(0.1 * (i + 1) + 1 / 3, i * 35, (i + 1) * 35);
    const out = resizeBilinear(src, 3, 7, 5, 16, 11);
    for (let i = 0; i < 3; i++) for (let p = 0; p < 16 * 11; p++) expect(out[i * 176 + p]).toBe(src[i * 35]);
  });

  it('keeps a linear ramp linear away from the clamped border', () => {
    const inW = 8;
    const outW = 20;
    const src = Float32Array.from({ length: inW }, (_, x) => 2 * x + 1);
    const out = resizeBilinear(src, 1, 1, inW, 1, outW);
    for (let o = 0; o < outW; o++) {
      const s = ((o + 0.5) * inW) / outW - 0.5;
      if (s < 0 || s > inW - 1) continue;
      expect(out[o]).toBeCloseTo(2 * s + 1, 5);
    }
  });

  it('same size is an exact copy', () => {
    const rng = createRng(3);
    const src = Float32Array.from({ length: 2 * 6 * 9 }, () => rng.normal());
    expect(resizeBilinear(src, 2, 6, 9, 6, 9)).toEqual(src);
  });

  it('checks the input size', () => {
    expect(() => resizeBilinear(new Float32Array(5), 1, 2, 2, 4, 4)).toThrow(/expected/);
  });
});

describe('resizeStack', () => {
  it('resizes to the model size and back to the volume plane, keeping zs and positions', () => {
    const volume = makeVolume([6, 4, 3], Float32Array.from({ length: 72 }, (_, i) => i % 7));
    const stack = extractAxialSlices(volume, [0, 2]);
    const model = resizeStack(stack, 10, 10);
    expect([model.count, model.height, model.width]).toEqual([2, 10, 10]);
    expect(model.zs).toEqual([0, 2]);
    const back = resizeStackToVolumePlane(model, volume.shape);
    expect([back.height, back.width]).toEqual([4, 6]);
    expect(back.positions).toBe(stack.positions);
  });
});
