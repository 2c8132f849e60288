import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../src/engine/random.js';
import { readNifti, writeNifti } from '../src/io/nifti.js';
import type { Shape3, Volume } from '../src/volume/volume.js';
import {
  ANOMALY_KINDS,
  RADIUS_FRACTION,
  applyAnomaly,
  sampleAnomalyParams,
  sampleCentre,
  type AnomalyKind,
  type AnomalyParams,
} from '../eval/inject/anomalies.js';
import { syntheticHead } from '../eval/inject/synthetic-head.js';
import { buildToySet, type ToySetManifest } from '../eval/inject/toyset.js';
import { makeNormalVariant, prepareSource, type NormalVariant, type PreparedSource } from '../eval/inject/variants.js';

const CH2BET = 'data/mricron/ch2bet.nii.gz';
const SIZE = 40;

let sourcePath: string;
let work: string;
let prepared: PreparedSource;
let base: NormalVariant;
let foreign: Volume;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'moodlsr-inject-'));
  if (existsSync(CH2BET)) {
    sourcePath = CH2BET;
  } else {
    console.warn(`${CH2BET} missing (sh scripts/fetch-data.sh): using the synthetic head`);
    sourcePath = join(work, 'synthetic-head.nii.gz');
    await writeNifti(sourcePath, syntheticHead(), { dtype: 'float32' });
  }
  prepared = prepareSource((await readNifti(sourcePath)).volume);
  base = makeNormalVariant(prepared, { size: SIZE, seed: 5 });
  foreign = makeNormalVariant(prepared, { size: SIZE, seed: 6 }).volume;
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Sphere ∩ body computed the plain way, independently of eval/inject/sphere.ts. */
function expectedLabel(shape: Shape3, centre: readonly number[], radius: number, body: Uint8Array): Uint8Array {
  const [nx, ny, nz] = shape;
  const out = new Uint8Array(nx * ny * nz);
  for (let z = 0, i = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, i++) {
        const d2 = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2;
        out[i] = d2 <= radius * radius && body[i] ? 1 : 0;
      }
    }
  }
  return out;
}

function bytesOf(a: Float32Array | Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function inject(kind: AnomalyKind, seed: number): { params: AnomalyParams; volume: Volume; label: Uint8Array } {
  const params = sampleAnomalyParams(kind, base.volume.shape, base.body, createRng(seed));
  return { params, ...applyAnomaly(base.volume, base.body, params, foreign) };
}

function range(data: Float32Array): number {
  let min = Infinity;
  let max = -Infinity;
  for (const v of data) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  return max - min;
}

describe('anomaly placement', () => {
  it('puts the centre in the central half and inside the body, with the radius in the range of the kind', () => {
    for (const kind of ANOMALY_KINDS) {
      for (let seed = 0; seed < 40; seed++) {
        const p = sampleAnomalyParams(kind, base.volume.shape, base.body, createRng(seed));
        for (const c of p.centre) {
          expect(Number.isInteger(c)).toBe(true);
          expect(c).toBeGreaterThanOrEqual(SIZE / 4);
          expect(c).toBeLessThan((3 * SIZE) / 4);
        }
        expect(base.body[p.centre[0] + SIZE * (p.centre[1] + SIZE * p.centre[2])]).toBe(1);
        const [lo, hi] = RADIUS_FRACTION[kind];
        expect(p.radius).toBeGreaterThanOrEqual(lo * SIZE);
        expect(p.radius).toBeLessThanOrEqual(hi * SIZE);
      }
    }
  });

  it('covers the central half, not just one spot', () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 40; seed++) seen.add(sampleCentre(base.volume.shape, base.body, createRng(seed)).join(','));
    expect(seen.size).toBeGreaterThan(30);
  });

  it('finds the only body voxel of the central half, and refuses a body with none there', () => {
    const body = new Uint8Array(SIZE ** 3);
    body[13 + SIZE * (27 + SIZE * 11)] = 1;
    body[0] = 1; // outside the central half: never chosen
    expect(sampleCentre([SIZE, SIZE, SIZE], body, createRng(1))).toEqual([13, 27, 11]);
    body[13 + SIZE * (27 + SIZE * 11)] = 0;
    expect(() => sampleCentre([SIZE, SIZE, SIZE], body, createRng(1))).toThrow(/central half/);
  });
});

describe.each(ANOMALY_KINDS)('anomaly %s', (kind) => {
  it('labels exactly sphere ∩ body, stays in [0, 1], leaves every other voxel unchanged and changes the sphere', () => {
    for (const seed of [1, 2, 3]) {
      const { params, volume, label } = inject(kind, seed);
      const expected = expectedLabel(volume.shape, params.centre, params.radius, base.body);
      expect(bytesOf(label).equals(bytesOf(expected))).toBe(true);
      let outOfRange = 0;
      let changedOutside = 0;
      let labelled = 0;
      let changedInside = 0;
      let absDiff = 0;
      for (let i = 0; i < label.length; i++) {
        const v = volume.data[i];
        if (!(v >= 0 && v <= 1)) outOfRange++;
        if (!label[i]) {
          if (v !== base.volume.data[i]) changedOutside++;
          continue;
        }
        labelled++;
        const d = Math.abs(v - base.volume.data[i]);
        absDiff += d;
        if (d > 1e-6) changedInside++;
      }
      expect(outOfRange).toBe(0);
      expect(changedOutside).toBe(0);
      expect(labelled).toBeGreaterThan(0);
      expect(changedInside / labelled).toBeGreaterThan(0.5);
      expect(absDiff / labelled).toBeGreaterThan(0.005);
      expect(volume.shape).toEqual(base.volume.shape);
      expect(volume.affine).toEqual(base.volume.affine);
    }
  });

  it('is deterministic by seed and differs between seeds', () => {
    const a = inject(kind, 7);
    const b = inject(kind, 7);
    const c = inject(kind, 8);
    expect(a.params).toEqual(b.params);
    expect(bytesOf(a.volume.data).equals(bytesOf(b.volume.data))).toBe(true);
    expect(bytesOf(a.label).equals(bytesOf(b.label))).toBe(true);
    expect(bytesOf(a.volume.data).equals(bytesOf(c.volume.data))).toBe(false);
  });

  it('does not modify its input', () => {
    const before = Buffer.from(bytesOf(base.volume.data));
    inject(kind, 9);
    expect(bytesOf(base.volume.data).equals(before)).toBe(true);
  });
});

describe('anomaly formulas', () => {
  const sampleFor = <K extends AnomalyKind>(kind: K, seed: number) => {
    const r = inject(kind, seed);
    return { ...r, params: r.params as Extract<AnomalyParams, { kind: K }> };
  };
  const indices = (label: Uint8Array) => [...label.keys()].filter((i) => label[i]);
  const clip = (v: number) => Math.min(1, Math.max(0, v));

  it('uniform adds amount·(max − min), |amount| in [0.2, 0.3]', () => {
    const { params, volume, label } = sampleFor('uniform', 4);
    expect(Math.abs(params.amount)).toBeGreaterThanOrEqual(0.2);
    expect(Math.abs(params.amount)).toBeLessThanOrEqual(0.3);
    const delta = params.amount * range(base.volume.data);
    for (const i of indices(label)) expect(volume.data[i]).toBeCloseTo(clip(base.volume.data[i] + delta), 6);
  });

  it('noise adds per-voxel amounts in [0.05, 0.3]·range, all with the one sign of the sphere', () => {
    for (const seed of [4, 5, 6, 7]) {
      const { params, volume, label } = sampleFor('noise', seed);
      const r = range(base.volume.data);
      const amounts: number[] = [];
      for (const i of indices(label)) {
        const v = volume.data[i];
        if (v === 0 || v === 1) continue; // clipped
        const a = (v - base.volume.data[i]) * params.sign;
        expect(a).toBeGreaterThanOrEqual(0.05 * r - 1e-6);
        expect(a).toBeLessThanOrEqual(0.3 * r + 1e-6);
        amounts.push(a);
      }
      expect(new Set(amounts.map((a) => a.toFixed(4))).size).toBeGreaterThan(amounts.length / 2); // per voxel, not constant
    }
  });

  it('shift fills the sphere from the volume rolled by the offset (2–5 % of the side, random signs)', () => {
    const { params, volume, label } = sampleFor('shift', 4);
    for (const o of params.offset) {
      expect(Math.abs(o)).toBeGreaterThanOrEqual(1);
      expect(Math.abs(o)).toBeLessThanOrEqual(Math.round(0.05 * SIZE));
    }
    const m = (v: number) => ((v % SIZE) + SIZE) % SIZE;
    for (const i of indices(label)) {
      const x = i % SIZE;
      const y = Math.floor(i / SIZE) % SIZE;
      const z = Math.floor(i / SIZE / SIZE);
      const j = m(x - params.offset[0]) + SIZE * (m(y - params.offset[1]) + SIZE * m(z - params.offset[2]));
      expect(volume.data[i]).toBe(base.volume.data[j]);
    }
  });

  it('reflect fills the sphere from the volume mirrored along its axis', () => {
    for (const seed of [4, 5, 6]) {
      const { params, volume, label } = sampleFor('reflect', seed);
      for (const i of indices(label)) {
        const p = [i % SIZE, Math.floor(i / SIZE) % SIZE, Math.floor(i / SIZE / SIZE)];
        p[params.axis] = SIZE - 1 - p[params.axis];
        expect(volume.data[i]).toBe(base.volume.data[p[0] + SIZE * (p[1] + SIZE * p[2])]);
      }
    }
  });

  it('fpi blends the foreign variant with its alpha in [0.05, 0.95]', () => {
    const { params, volume, label } = sampleFor('fpi', 4);
    expect(params.alpha).toBeGreaterThanOrEqual(0.05);
    expect(params.alpha).toBeLessThanOrEqual(0.95);
    for (const i of indices(label)) {
      expect(volume.data[i]).toBeCloseTo((1 - params.alpha) * base.volume.data[i] + params.alpha * foreign.data[i], 6);
    }
    expect(() => applyAnomaly(base.volume, base.body, params)).toThrow(/foreign/);
  });

  it('deform keeps the centre voxel and samples its neighbour at c + (x − c)·d (source) or c + (x − c)(2 − d) (sink)', () => {
    for (const mode of ['source', 'sink'] as const) {
      // centre well inside the body, so the neighbours along +x are body voxels
      const c = sampleCentre(base.volume.shape, base.body, createRng(3));
      const params: AnomalyParams = { kind: 'deform', centre: c, radius: 4.5, mode };
      const { volume } = applyAnomaly(base.volume, base.body, params);
      const at = (dx: number) => c[0] + dx + SIZE * (c[1] + SIZE * c[2]);
      const v = (dx: number) => base.volume.data[at(dx)];
      expect(volume.data[at(0)]).toBe(base.volume.data[at(0)]);
      const d = 1 / (4.5 * 4.5);
      const expected = mode === 'source' ? v(0) * (1 - d) + v(1) * d : v(1) * d + v(2) * (1 - d);
      if (base.body[at(1)]) expect(volume.data[at(1)]).toBeCloseTo(clip(expected), 5);
    }
  });

  it('rejects a body mask of the wrong size', () => {
    const params = sampleAnomalyParams('uniform', base.volume.shape, base.body, createRng(1));
    expect(() => applyAnomaly(base.volume, new Uint8Array(10), params)).toThrow(/body mask/);
  });
});

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(relative(dir, join(entry.parentPath, entry.name)));
  }
  return out.sort();
}

async function hashes(dir: string): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  for (const f of await listFiles(dir)) map.set(f, createHash('sha256').update(await readFile(join(dir, f))).digest('hex'));
  return map;
}

describe('buildToySet', () => {
  const TOY = 24;
  let first: string;
  let manifest: ToySetManifest;

  beforeAll(async () => {
    first = join(work, 'set-a');
    manifest = await buildToySet({ sources: [sourcePath], outDir: first, normal: 2, perKind: 1, size: TOY, seed: 42 });
  });

  it('writes exactly the MOOD toy layout', async () => {
    const n = 2 + ANOMALY_KINDS.length;
    const names = Array.from({ length: n }, (_, i) => `toy_${i}.nii.gz`);
    const expected = [
      'manifest.json',
      ...names.map((f) => `toy/${f}`),
      ...names.map((f) => `toy_label/pixel/${f}`),
      ...names.map((f) => `toy_label/sample/${f}.txt`),
    ].sort();
    expect(await listFiles(first)).toEqual(expected);
    expect(manifest.cases.map((c) => c.name)).toEqual(names);
    expect(JSON.parse(await readFile(join(first, 'manifest.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(manifest)));
  });

  it('has labels consistent with the manifest: pixel labels are the recorded sphere, sample label 1 iff abnormal', async () => {
    const kinds = manifest.cases.map((c) => c.kind).sort();
    expect(kinds).toEqual(['normal', 'normal', ...ANOMALY_KINDS].sort());
    for (const record of manifest.cases) {
      const image = await readNifti(join(first, 'toy', record.name));
      const pixel = await readNifti(join(first, 'toy_label/pixel', record.name));
      const sample = await readFile(join(first, 'toy_label/sample', `${record.name}.txt`), 'utf8');
      expect(image.volume.shape).toEqual([TOY, TOY, TOY]);
      expect(pixel.volume.shape).toEqual([TOY, TOY, TOY]);
      expect(pixel.header.datatypeCode).toBe(2); // uint8
      expect(image.header.datatypeCode).toBe(16); // float32
      expect(image.volume.affine).toEqual(pixel.volume.affine);
      let count = 0;
      let outsideSphere = 0;
      let notBinary = 0;
      let outOfRange = 0;
      for (let i = 0; i < pixel.volume.data.length; i++) {
        const v = image.volume.data[i];
        if (!(v >= 0 && v <= 1)) outOfRange++;
        const l = pixel.volume.data[i];
        if (l !== 0 && l !== 1) notBinary++;
        if (l !== 1) continue;
        count++;
        const x = i % TOY;
        const y = Math.floor(i / TOY) % TOY;
        const z = Math.floor(i / TOY / TOY);
        const c = record.centre!;
        if ((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2 > record.radius! ** 2) outsideSphere++;
      }
      expect(outOfRange).toBe(0);
      expect(notBinary).toBe(0);
      expect(count).toBe(record.labelVoxels);
      expect(outsideSphere).toBe(0);
      if (record.kind === 'normal') {
        expect(sample).toBe('0');
        expect(count).toBe(0);
        expect(record.centre).toBeNull();
      } else {
        expect(sample).toBe('1');
        expect(count).toBeGreaterThan(0);
        expect(record.anomaly?.kind).toBe(record.kind);
      }
      expect(record.source).toBe(sourcePath);
    }
  });

  it('gives byte-identical files for the same seed and different ones for another seed', async () => {
    const again = join(work, 'set-b');
    await buildToySet({ sources: [sourcePath], outDir: again, normal: 2, perKind: 1, size: TOY, seed: 42 });
    expect(await hashes(again)).toEqual(await hashes(first));

    const other = join(work, 'set-c');
    await buildToySet({ sources: [sourcePath], outDir: other, normal: 2, perKind: 1, size: TOY, seed: 43 });
    const a = await hashes(first);
    const c = await hashes(other);
    expect(c.get('toy/toy_0.nii.gz')).not.toBe(a.get('toy/toy_0.nii.gz'));
  });

  it('makes each case from its own seed: a case does not change when the set gets other cases', async () => {
    const smaller = join(work, 'set-d');
    const m = await buildToySet({ sources: [sourcePath], outDir: smaller, normal: 3, perKind: 1, kinds: ['shift'], size: TOY, seed: 42 });
    for (const wanted of [{ kind: 'normal', slot: 1 }, { kind: 'shift', slot: 0 }]) {
      const inFirst = manifest.cases.find((c) => c.kind === wanted.kind && c.slot === wanted.slot)!;
      const inSmaller = m.cases.find((c) => c.kind === wanted.kind && c.slot === wanted.slot)!;
      expect({ ...inSmaller, name: '' }).toEqual({ ...inFirst, name: '' });
      const a = await readFile(join(first, 'toy', inFirst.name));
      const b = await readFile(join(smaller, 'toy', inSmaller.name));
      expect(a.equals(b)).toBe(true);
    }
  });

  it('leaves no stale cases when rebuilt smaller into the same folder, and rejects bad options', async () => {
    const dir = join(work, 'set-e');
    await buildToySet({ sources: [sourcePath], outDir: dir, normal: 3, perKind: 0, size: 12, seed: 1 });
    await writeFile(join(dir, 'toy', 'notes.txt'), 'kept');
    await buildToySet({ sources: [sourcePath], outDir: dir, normal: 1, perKind: 0, size: 12, seed: 1 });
    expect(await listFiles(join(dir, 'toy'))).toEqual(['notes.txt', 'toy_0.nii.gz']);
    expect(await listFiles(join(dir, 'toy_label'))).toEqual(['pixel/toy_0.nii.gz', 'sample/toy_0.nii.gz.txt']);
    const opts = { sources: [sourcePath], outDir: dir, normal: 1, perKind: 1, size: 12, seed: 1 };
    await expect(buildToySet({ ...opts, kinds: ['bogus' as AnomalyKind] })).rejects.toThrow(/unknown anomaly kind 'bogus'/);
    await expect(buildToySet({ ...opts, normal: -1 })).rejects.toThrow(/normal/);
    await expect(buildToySet({ ...opts, sources: [join(work, 'missing.nii.gz')] })).rejects.toThrow(/missing\.nii\.gz/);
  });
});
