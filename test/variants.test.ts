import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { readNifti } from '../src/io/nifti.js';
import type { Volume } from '../src/volume/volume.js';
import { syntheticHead } from '../eval/inject/synthetic-head.js';
import {
  DEFAULT_VARIATION,
  NO_VARIATION,
  makeNormalVariant,
  prepareSource,
  type PreparedSource,
} from '../eval/inject/variants.js';
import { deriveSeed } from '../eval/inject/seeds.js';
import { bsplineField } from '../eval/inject/smooth-field.js';

const CH2BET = 'data/mricron/ch2bet.nii.gz';
const SIZE = 40;

function bytesOf(a: Float32Array | Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Pearson correlation over the voxels where either image is non-zero (so the shared background does not count). */
function correlation(a: Float32Array, b: Float32Array): number {
  let ma = 0;
  let mb = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === 0 && b[i] === 0) continue;
    ma += a[i];
    mb += b[i];
    n++;
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === 0 && b[i] === 0) continue;
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

let source: Volume;
let prepared: PreparedSource;

beforeAll(async () => {
  if (existsSync(CH2BET)) {
    source = (await readNifti(CH2BET)).volume;
  } else {
    console.warn(`${CH2BET} missing (sh scripts/fetch-data.sh): using the synthetic head`);
    source = syntheticHead();
  }
  prepared = prepareSource(source);
});

describe('makeNormalVariant', () => {
  it('is deterministic: the same seed gives identical bytes, from a Volume or a PreparedSource', () => {
    const a = makeNormalVariant(prepared, { size: SIZE, seed: 11 });
    const b = makeNormalVariant(source, { size: SIZE, seed: 11 });
    expect(bytesOf(a.volume.data).equals(bytesOf(b.volume.data))).toBe(true);
    expect(bytesOf(a.body).equals(bytesOf(b.body))).toBe(true);
    expect(a.params).toEqual(b.params);
  });

  it('differs between seeds', () => {
    const a = makeNormalVariant(prepared, { size: SIZE, seed: 1 });
    const b = makeNormalVariant(prepared, { size: SIZE, seed: 2 });
    let changed = 0;
    for (let i = 0; i < a.volume.data.length; i++) if (a.volume.data[i] !== b.volume.data[i]) changed++;
    expect(changed).toBeGreaterThan(0.05 * a.volume.data.length);
  });

  it('has the requested size³ isotropic grid, values in [0, 1] and background exactly 0', () => {
    for (const seed of [3, 4, 5]) {
      const { volume, body } = makeNormalVariant(prepared, { size: SIZE, seed });
      expect(volume.shape).toEqual([SIZE, SIZE, SIZE]);
      expect(volume.spacing[0]).toBe(volume.spacing[1]);
      expect(volume.spacing[1]).toBe(volume.spacing[2]);
      let inBody = 0;
      let brightInBody = 0;
      let outOfRange = 0;
      let nonZeroBackground = 0;
      for (let i = 0; i < volume.data.length; i++) {
        const v = volume.data[i];
        if (!(v >= 0 && v <= 1)) outOfRange++;
        if (body[i]) {
          inBody++;
          if (v > 0.3) brightInBody++;
        } else if (v !== 0) {
          nonZeroBackground++;
        }
      }
      expect(outOfRange).toBe(0);
      expect(nonZeroBackground).toBe(0);
      // the head fills a good part of the box, and most of it is tissue, not noise around 0
      expect(inBody / volume.data.length).toBeGreaterThan(0.1);
      expect(inBody / volume.data.length).toBeLessThan(0.6);
      expect(brightInBody / inBody).toBeGreaterThan(0.7);
    }
  });

  it('keeps the head inside the box, centred, with its longest extent near the fill fraction', () => {
    const { body } = makeNormalVariant(prepared, { size: SIZE, seed: 0, variation: NO_VARIATION });
    const lo = [SIZE, SIZE, SIZE];
    const hi = [-1, -1, -1];
    for (let z = 0, i = 0; z < SIZE; z++) {
      for (let y = 0; y < SIZE; y++) {
        for (let x = 0; x < SIZE; x++, i++) {
          if (!body[i]) continue;
          [x, y, z].forEach((p, a) => {
            lo[a] = Math.min(lo[a], p);
            hi[a] = Math.max(hi[a], p);
          });
        }
      }
    }
    const extents = [0, 1, 2].map((a) => hi[a] - lo[a] + 1);
    expect(Math.max(...extents)).toBeGreaterThanOrEqual(Math.floor(0.85 * SIZE) - 2);
    expect(Math.max(...extents)).toBeLessThanOrEqual(Math.ceil(0.85 * SIZE) + 1);
    for (let a = 0; a < 3; a++) expect(Math.abs(lo[a] + hi[a] - (SIZE - 1))).toBeLessThanOrEqual(2);
  });

  it('maps the box centre to the world centre of the source foreground (affine consistent with the source)', () => {
    const { volume } = makeNormalVariant(prepared, { size: SIZE, seed: 0 });
    const half = (SIZE - 1) / 2;
    const world = volume.affine.slice(0, 3).map((row) => row[0] * half + row[1] * half + row[2] * half + row[3]);
    const c = prepared.centreVoxel;
    const expected = source.affine.slice(0, 3).map((row) => row[0] * c[0] + row[1] * c[1] + row[2] * c[2] + row[3]);
    for (let a = 0; a < 3; a++) expect(world[a]).toBeCloseTo(expected[a], 4);
    expect(volume.affine[0][0]).toBeCloseTo(volume.spacing[0], 6);
  });

  it('resembles the plainly resampled source but is not identical to it', () => {
    const plain = makeNormalVariant(prepared, { size: SIZE, seed: 0, variation: NO_VARIATION });
    // the same head misplaced by a quarter of the box: a wrong geometry the variant must be much closer than
    const misplaced = new Float32Array(plain.volume.data.length);
    const quarter = SIZE / 4;
    for (let z = 0, i = 0; z < SIZE; z++) {
      for (let y = 0; y < SIZE; y++) {
        for (let x = 0; x < SIZE; x++, i++) misplaced[i] = plain.volume.data[x + SIZE * (((y + quarter) % SIZE) + SIZE * z)];
      }
    }
    const noGeometry = { rotationDeg: 0, scale: 0, translationMm: 0, warpMm: 0 };
    for (const seed of [21, 22, 23]) {
      // intensity variation alone (gamma, bias, noise) keeps the anatomy voxel for voxel
      const intensityOnly = makeNormalVariant(prepared, { size: SIZE, seed, variation: noGeometry }).volume.data;
      const rIntensity = correlation(intensityOnly, plain.volume.data);
      expect(rIntensity).toBeGreaterThan(0.95);
      expect(rIntensity).toBeLessThan(0.9999);

      // the full variant moves tissue by millimetres (affine + warp), so voxel-wise agreement drops, but the
      // head keeps its shape and stays far closer to the source than a misplaced copy of it
      const full = makeNormalVariant(prepared, { size: SIZE, seed });
      let both = 0;
      let either = 0;
      for (let i = 0; i < full.body.length; i++) {
        both += full.body[i] & plain.body[i];
        either += full.body[i] + plain.body[i];
      }
      expect((2 * both) / either).toBeGreaterThan(0.85);
      expect((2 * both) / either).toBeLessThan(1);
      const rFull = correlation(full.volume.data, plain.volume.data);
      expect(rFull).toBeGreaterThan(correlation(full.volume.data, misplaced) + 0.2);
    }
  });

  it('draws its random parameters within the documented ranges', () => {
    for (let seed = 0; seed < 20; seed++) {
      const { params } = makeNormalVariant(prepared, { size: 8, seed });
      for (const angle of params.rotationDeg) expect(Math.abs(angle)).toBeLessThanOrEqual(DEFAULT_VARIATION.rotationDeg);
      for (const s of params.scale) expect(Math.abs(s - 1)).toBeLessThanOrEqual(DEFAULT_VARIATION.scale);
      for (const t of params.translationMm) expect(Math.abs(t)).toBeLessThanOrEqual(DEFAULT_VARIATION.translationMm);
      expect(params.gamma).toBeGreaterThanOrEqual(0.8);
      expect(params.gamma).toBeLessThanOrEqual(1.25);
      expect(params.noiseStd).toBeGreaterThanOrEqual(DEFAULT_VARIATION.noiseStd[0]);
      expect(params.noiseStd).toBeLessThanOrEqual(DEFAULT_VARIATION.noiseStd[1]);
    }
  });

  it('rejects a bad size and an empty source', () => {
    expect(() => makeNormalVariant(prepared, { size: 2, seed: 0 })).toThrow(/size/);
    expect(() => prepareSource({ ...source, data: new Float32Array(source.data.length) })).toThrow(/foreground/);
  });
});

describe('deriveSeed', () => {
  it('separates the evaluation and training seed spaces and is a pure function of its inputs', () => {
    expect(deriveSeed('eval', 7, 'normal', 0)).toBe(deriveSeed('eval', 7, 'normal', 0));
    expect(deriveSeed('eval', 7, 'normal', 0)).not.toBe(deriveSeed('train', 7, 'normal', 0));
    expect(deriveSeed('eval', 7, 'normal', 0)).not.toBe(deriveSeed('eval', 7, 'normal', 1));
    expect(deriveSeed('eval', 7, 'normal', 0)).not.toBe(deriveSeed('eval', 8, 'normal', 0));
  });
});

describe('bsplineField', () => {
  it('reproduces constant and linear control values exactly (so the warp has no spurious wiggles)', () => {
    const shape = [17, 9, 12] as const;
    const g = 5;
    const knots = shape.map((n) => (n - 1) / (g - 3));
    const values = new Float64Array(g ** 3);
    for (let k = 0, i = 0; k < g; k++) {
      for (let j = 0; j < g; j++) {
        for (let l = 0; l < g; l++, i++) values[i] = 2 + 0.5 * (l - 1) * knots[0] - 0.25 * (j - 1) * knots[1] + 0.1 * (k - 1) * knots[2];
      }
    }
    const field = bsplineField(shape, g, values);
    const row = new Float32Array(shape[0]);
    for (let z = 0; z < shape[2]; z++) {
      for (let y = 0; y < shape[1]; y++) {
        field.fillRow(y, z, row);
        for (let x = 0; x < shape[0]; x++) expect(row[x]).toBeCloseTo(2 + 0.5 * x - 0.25 * y + 0.1 * z, 4);
      }
    }
    expect(() => bsplineField(shape, 3, new Float64Array(27))).toThrow(/control/);
  });
});
