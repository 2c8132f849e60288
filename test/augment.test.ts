import { describe, expect, it } from 'vitest';
import { createRng } from '../src/engine/random.js';
import {
  type AugmentOptions,
  NO_AUGMENTATION,
  PAPER_AUGMENTATION,
  augmentOptions,
  augmentOptionsFor,
  augmentSlice,
} from '../src/train/augment.js';

const H = 32;
const W = 40;

/** A z-scored-looking "brain": an ellipse of varied values on an exact-zero background. */
function brainSlice(h = H, w = W): Float32Array {
  const img = new Float32Array(h * w);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const y = (r - (h - 1) / 2) / (h * 0.3);
      const x = (c - (w - 1) / 2) / (w * 0.3);
      if (x * x + y * y < 1) img[r * w + c] = Math.sin(0.7 * r) + Math.cos(0.4 * c) + 0.1 * c - 1.5;
    }
  }
  return img;
}

function only(changes: Partial<AugmentOptions>): AugmentOptions {
  return { ...NO_AUGMENTATION, ...changes };
}

const ALWAYS_ALL: AugmentOptions = {
  ...PAPER_AUGMENTATION,
  elastic: { ...PAPER_AUGMENTATION.elastic, p: 1 },
  scale: { ...PAPER_AUGMENTATION.scale, p: 1 },
  rotation: { ...PAPER_AUGMENTATION.rotation, p: 1 },
  flip: { p: 1 },
  brightness: { ...PAPER_AUGMENTATION.brightness, p: 1 },
  contrast: { ...PAPER_AUGMENTATION.contrast, p: 1 },
  blur: { ...PAPER_AUGMENTATION.blur, p: 1 },
  noise: { ...PAPER_AUGMENTATION.noise, p: 1 },
};

describe('augmentSlice', () => {
  it('is deterministic given the seed, and another seed gives another result', () => {
    const img = brainSlice();
    const a = augmentSlice(img, H, W, createRng(11), ALWAYS_ALL);
    const b = augmentSlice(img, H, W, createRng(11), ALWAYS_ALL);
    const c = augmentSlice(img, H, W, createRng(12), ALWAYS_ALL);
    expect(Buffer.from(a.buffer)).toEqual(Buffer.from(b.buffer));
    expect(Buffer.from(a.buffer)).not.toEqual(Buffer.from(c.buffer));
    expect(Buffer.from(a.buffer)).not.toEqual(Buffer.from(img.buffer));
  });

  it("'none' returns an exact copy and draws nothing from the rng", () => {
    const img = brainSlice();
    const rng = createRng(3);
    const out = augmentSlice(img, H, W, rng, augmentOptions('none'));
    expect(out).not.toBe(img);
    expect(out).toEqual(img);
    expect(rng.next()).toBe(createRng(3).next());
  });

  it('a flip mirrors the columns, and two flips give the input back exactly', () => {
    const img = brainSlice();
    const flip = only({ flip: { p: 1 } });
    const once = augmentSlice(img, H, W, createRng(1), flip);
    for (let r = 0; r < H; r++) {
      for (let c = 0; c < W; c++) expect(once[r * W + c]).toBe(img[r * W + (W - 1 - c)]);
    }
    expect(augmentSlice(once, H, W, createRng(2), flip)).toEqual(img);
  });

  it('rotation by 0° and zoom by 0 % are exact copies', () => {
    const img = brainSlice();
    const out = augmentSlice(
      img,
      H,
      W,
      createRng(5),
      only({ rotation: { p: 1, min: 0, max: 0 }, scale: { p: 1, min: 0, max: 0 } }),
    );
    expect(out).toEqual(img);
  });

  it('rotation by 90° on a square slice moves pixel (r, c) to the rotated place', () => {
    const n = 17;
    const img = Float32Array.from({ length: n * n }, (_, i) => (i * 7919) % 101);
    const out = augmentSlice(img, n, n, createRng(1), only({ rotation: { p: 1, min: 90, max: 90 } }));
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) expect(out[r * n + c]).toBeCloseTo(img[(n - 1 - c) * n + r], 4);
    }
  });

  it('zoom by +100 % halves the slope of a horizontal ramp about the centre', () => {
    const img = new Float32Array(H * W);
    for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) img[r * W + c] = c;
    const out = augmentSlice(img, H, W, createRng(1), only({ scale: { p: 1, min: 1, max: 1 } }));
    const cx = (W - 1) / 2;
    for (let r = 4; r < H - 4; r++) {
      for (let c = 0; c < W; c++) expect(out[r * W + c]).toBeCloseTo(cx + (c - cx) / 2, 4);
    }
  });

  it('keeps every output finite and the background exactly at its value under all ops', () => {
    const img = brainSlice();
    const isBackground = img.map((v) => (v === 0 ? 1 : 0));
    for (let seed = 0; seed < 20; seed++) {
      const out = augmentSlice(img, H, W, createRng(seed), ALWAYS_ALL);
      expect(out.every(Number.isFinite)).toBe(true);
      // The corners are far outside the ellipse whatever the (small) warp: still exactly background.
      for (const i of [0, W - 1, (H - 1) * W, H * W - 1]) expect(out[i]).toBe(0);
      // Background stays a large, exact-zero area (no noise, no brightness shift leaked into it).
      const zeros = out.reduce((n, v) => n + (v === 0 ? 1 : 0), 0);
      const before = isBackground.reduce((n, v) => n + v, 0);
      expect(zeros).toBeGreaterThan(before * 0.6);
    }
  });

  it('fills outside the slice with the given background (abdomen: −1)', () => {
    const img = new Float32Array(H * W).fill(0.25);
    const options = { ...only({ scale: { p: 1, min: -0.15, max: -0.15 } }), background: -1 };
    const out = augmentSlice(img, H, W, createRng(1), options);
    expect(out[0]).toBe(-1);
    expect(out[Math.floor(H / 2) * W + Math.floor(W / 2)]).toBeCloseTo(0.25, 6);
  });

  it('brightness shifts every foreground pixel by the same amount within ±15 % of the spread', () => {
    const img = brainSlice();
    const out = augmentSlice(img, H, W, createRng(9), only({ brightness: { p: 1, min: -0.15, max: 0.15 } }));
    const fg = [...img.keys()].filter((i) => img[i] !== 0);
    const shift = out[fg[0]] - img[fg[0]];
    expect(shift).not.toBe(0);
    const values = fg.map((i) => img[i]);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
    expect(Math.abs(shift)).toBeLessThanOrEqual(0.15 * std + 1e-6);
    for (const i of fg) expect(out[i] - img[i]).toBeCloseTo(shift, 5);
    for (let i = 0; i < img.length; i++) if (img[i] === 0) expect(out[i]).toBe(0);
  });

  it('contrast keeps the foreground mean and scales deviations by at most ±15 %', () => {
    const img = brainSlice();
    const out = augmentSlice(img, H, W, createRng(4), only({ contrast: { p: 1, min: -0.15, max: 0.15 } }));
    const fg = [...img.keys()].filter((i) => img[i] !== 0);
    const meanOf = (a: Float32Array) => fg.reduce((s, i) => s + a[i], 0) / fg.length;
    const mean = meanOf(img);
    expect(meanOf(out)).toBeCloseTo(mean, 4);
    const far = fg.reduce((best, i) => (Math.abs(img[i] - mean) > Math.abs(img[best] - mean) ? i : best), fg[0]);
    const gain = (out[far] - mean) / (img[far] - mean);
    expect(gain).toBeGreaterThanOrEqual(0.85 - 1e-4);
    expect(gain).toBeLessThanOrEqual(1.15 + 1e-4);
    expect(gain).not.toBeCloseTo(1, 6);
  });

  it('blur and noise change the foreground only', () => {
    const img = brainSlice();
    for (const op of [{ blur: { p: 1, min: 1, max: 1 } }, { noise: { p: 1, min: 0.1, max: 0.1 } }]) {
      const out = augmentSlice(img, H, W, createRng(2), only(op));
      let changed = 0;
      for (let i = 0; i < img.length; i++) {
        if (img[i] === 0) expect(out[i]).toBe(0);
        else if (out[i] !== img[i]) changed++;
      }
      expect(changed).toBeGreaterThan(0);
    }
  });

  it('an elastic warp is smooth: neighbouring pixels of a ramp stay close to one step apart', () => {
    const n = 64;
    const img = new Float32Array(n * n);
    for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) img[r * n + c] = c;
    const out = augmentSlice(img, n, n, createRng(21), only({ elastic: { p: 1, min: 3, max: 3, gridSpacing: 16 } }));
    expect(out).not.toEqual(img);
    let maxStepError = 0;
    let maxDisplacement = 0;
    for (let r = 8; r < n - 8; r++) {
      for (let c = 8; c < n - 9; c++) {
        maxStepError = Math.max(maxStepError, Math.abs(out[r * n + c + 1] - out[r * n + c] - 1));
        maxDisplacement = Math.max(maxDisplacement, Math.abs(out[r * n + c] - c));
      }
    }
    expect(maxDisplacement).toBeGreaterThan(0.1);
    expect(maxStepError).toBeLessThan(0.5);
  });

  it('rejects a buffer that does not match the size', () => {
    expect(() => augmentSlice(new Float32Array(10), 3, 4, createRng(1), PAPER_AUGMENTATION)).toThrow(/3×4/);
  });
});

describe('augmentOptionsFor', () => {
  it('uses the background value normalisation gives each region', () => {
    expect(augmentOptionsFor('paper', 'brain').background).toBe(0);
    expect(augmentOptionsFor('paper', 'abdomen').background).toBe(-1);
    expect(augmentOptionsFor('none', 'abdomen').rotation.p).toBe(0);
  });
});
