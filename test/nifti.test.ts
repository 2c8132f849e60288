import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../src/engine/random.js';
import { InputFileError } from '../src/errors.js';
import { atomicWriteFile } from '../src/io/atomic.js';
import {
  countNonFinite,
  isNiftiFileName,
  niftiCaseName,
  readNifti,
  writeNifti,
  type NiftiDtype,
  type NiftiImage,
} from '../src/io/nifti.js';
import { DTYPES, VoxelDecoder } from '../src/io/nifti-dtypes.js';
import { qformAffine, sformAffine } from '../src/io/nifti-header.js';
import { makeVolume, type Affine, type Volume } from '../src/volume/volume.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DATA = join(ROOT, 'data', 'mricron');
const CH2 = join(DATA, 'ch2.nii.gz');
const SYSTEM_PYTHON = '/usr/bin/python3';

interface NibabelImage {
  file: string;
  shape: [number, number, number];
  dtype: string;
  zooms: [number, number, number];
  qform_code: number;
  sform_code: number;
  affine: number[][];
  sum: number;
  sum_x: number;
  sum_y: number;
  sum_z: number;
  points: { xyz: [number, number, number]; value: number }[];
}
/** Produced by nibabel via scripts/make-nifti-expected.py (see test/fixtures/README.md). */
const NIBABEL: { images: NibabelImage[] } = JSON.parse(
  readFileSync(join(ROOT, 'test', 'fixtures', 'nifti-nibabel-expected.json'), 'utf8'),
);

function ensureRealData(): void {
  const wanted = NIBABEL.images.map((im) => join(DATA, im.file));
  if (wanted.every(existsSync)) return;
  execFileSync('sh', [join(ROOT, 'scripts', 'fetch-data.sh')], { stdio: 'inherit' });
  const missing = wanted.filter((f) => !existsSync(f));
  if (missing.length > 0) {
    throw new Error(`real test images missing (${missing.join(', ')}); run "sh scripts/fetch-data.sh"`);
  }
}

let tmp: string;
let ch2: NiftiImage;

beforeAll(async () => {
  ensureRealData();
  await mkdir(join(ROOT, '.vitest-tmp'), { recursive: true });
  tmp = await mkdtemp(join(ROOT, '.vitest-tmp', 'nifti-'));
  ch2 = await readNifti(CH2);
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** Files left in a folder whose name marks them as temp files of an atomic write. */
async function tempFilesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith('.tmp'));
}

function expectAffineClose(actual: Affine, expected: readonly (readonly number[])[], digits = 5): void {
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(actual[r][c]).toBeCloseTo(expected[r][c], digits);
}

/** null when both arrays hold the same float32 bit patterns, else where they first differ. */
function firstMismatch(a: Float32Array, b: Float32Array): string | null {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  const bitsA = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const bitsB = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (bitsA[i] !== bitsB[i]) return `voxel ${i}: ${a[i]} vs ${b[i]}`;
  }
  return null;
}

async function isGzipFile(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const start = new Uint8Array(2);
    await handle.read(start, 0, 2, 0);
    return start[0] === 0x1f && start[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------
// A NIfTI-1 file built byte by byte, independently of the package's header serialiser.

interface CraftFields {
  littleEndian?: boolean;
  sizeofHdr?: number;
  magic?: string;
  dims: number[];
  datatype: number;
  bitpix: number;
  pixdim?: number[];
  voxOffset?: number;
  slope?: number;
  inter?: number;
  qformCode?: number;
  sformCode?: number;
  quatern?: [number, number, number];
  qoffset?: [number, number, number];
  srow?: number[];
}

function craftNifti(f: CraftFields, voxelBytes: Uint8Array = new Uint8Array(0)): Uint8Array {
  const voxOffset = f.voxOffset ?? 352;
  const headerSize = Math.max(352, Math.min(voxOffset, 4096));
  const out = new Uint8Array(headerSize + voxelBytes.length);
  const v = new DataView(out.buffer);
  const le = f.littleEndian ?? true;
  v.setInt32(0, f.sizeofHdr ?? 348, le);
  const dims = [...f.dims, 0, 0, 0, 0, 0, 0, 0, 0].slice(0, 8);
  dims.forEach((d, i) => v.setInt16(40 + 2 * i, d, le));
  v.setInt16(70, f.datatype, le);
  v.setInt16(72, f.bitpix, le);
  const pixdim = [...(f.pixdim ?? [1, 1, 1, 1]), 0, 0, 0, 0, 0, 0, 0, 0].slice(0, 8);
  pixdim.forEach((p, i) => v.setFloat32(76 + 4 * i, p, le));
  v.setFloat32(108, voxOffset, le);
  v.setFloat32(112, f.slope ?? 1, le);
  v.setFloat32(116, f.inter ?? 0, le);
  out[123] = 2;
  v.setInt16(252, f.qformCode ?? 0, le);
  v.setInt16(254, f.sformCode ?? 0, le);
  (f.quatern ?? [0, 0, 0]).forEach((q, i) => v.setFloat32(256 + 4 * i, q, le));
  (f.qoffset ?? [0, 0, 0]).forEach((q, i) => v.setFloat32(268 + 4 * i, q, le));
  (f.srow ?? [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]).forEach((s, i) => v.setFloat32(280 + 4 * i, s, le));
  const magic = f.magic ?? 'n+1';
  for (let i = 0; i < magic.length; i++) out[344 + i] = magic.charCodeAt(i);
  out.set(voxelBytes, headerSize);
  return out;
}

/** A tiny valid little-endian uint8 image, 3×4×5. */
function tinyValid(overrides: Partial<CraftFields> = {}, voxels = 60): Uint8Array {
  const data = Uint8Array.from({ length: voxels }, (_, i) => i);
  return craftNifti({ dims: [3, 3, 4, 5], datatype: 2, bitpix: 8, ...overrides }, data);
}

// ---------------------------------------------------------------------------------------------

describe('readNifti on the real MRIcron images, against nibabel', () => {
  for (const expected of NIBABEL.images) {
    it(`${expected.file}: shape, spacing, affine, sums and voxel values match nibabel`, async () => {
      const { volume, header } = expected.file === 'ch2.nii.gz' ? ch2 : await readNifti(join(DATA, expected.file));
      expect([...volume.shape]).toEqual(expected.shape);
      expect([...volume.spacing]).toEqual(expected.zooms);
      expect(header.qformCode).toBe(expected.qform_code);
      expect(header.sformCode).toBe(expected.sform_code);
      expectAffineClose(volume.affine, expected.affine, 6);
      const [nx, ny] = volume.shape;
      for (const { xyz, value } of expected.points) {
        expect(volume.data[xyz[0] + nx * (xyz[1] + ny * xyz[2])]).toBe(value);
      }
      let sum = 0, sx = 0, sy = 0, sz = 0;
      let i = 0;
      for (let z = 0; z < volume.shape[2]; z++) {
        for (let y = 0; y < ny; y++) {
          for (let x = 0; x < nx; x++, i++) {
            const v = volume.data[i];
            sum += v;
            sx += v * x;
            sy += v * y;
            sz += v * z;
          }
        }
      }
      expect(sum / expected.sum).toBeCloseTo(1, 9);
      expect(sx / expected.sum_x).toBeCloseTo(1, 9);
      expect(sy / expected.sum_y).toBeCloseTo(1, 9);
      expect(sz / expected.sum_z).toBeCloseTo(1, 9);
    });
  }

  it('ch2.nii.gz is the 181×217×181 1 mm Colin27 head with the file affine', () => {
    expect([...ch2.volume.shape]).toEqual([181, 217, 181]);
    expect([...ch2.volume.spacing]).toEqual([1, 1, 1]);
    expectAffineClose(ch2.volume.affine, [[1, 0, 0, -90], [0, 1, 0, -125], [0, 0, 1, -71], [0, 0, 0, 1]], 9);
    expect(countNonFinite(ch2.volume.data)).toBe(0);
  });

  it('reads an uncompressed copy identically (gzip decided by magic bytes, not the name)', async () => {
    const raw = join(tmp, 'ch2-plain.nii');
    await writeFile(raw, execFileSync('gzip', ['-dc', CH2], { maxBuffer: 64 << 20 }));
    const plain = await readNifti(raw);
    expect(firstMismatch(plain.volume.data, ch2.volume.data)).toBeNull();
    // a gzipped file under a misleading .nii name
    const misnamed = join(tmp, 'ch2-really-gzipped.nii');
    await writeFile(misnamed, await readFile(CH2));
    expect(firstMismatch((await readNifti(misnamed)).volume.data, ch2.volume.data)).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------

/** The central 100×120×100 block of a ch2-sized volume (1.2 M of its 7.1 M voxels). */
function centralBlock(volume: Volume): Volume {
  const [nx, ny] = volume.shape;
  const [bx, by, bz] = [100, 120, 100];
  const [ox, oy, oz] = [40, 50, 40];
  const out = new Float32Array(bx * by * bz);
  for (let z = 0; z < bz; z++) {
    for (let y = 0; y < by; y++) {
      const from = ox + nx * (oy + y + ny * (oz + z));
      out.set(volume.data.subarray(from, from + bx), bx * (y + by * z));
    }
  }
  return makeVolume([bx, by, bz], out);
}

const ALL_DTYPES: NiftiDtype[] = ['uint8', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'float32', 'float64'];

/**
 * The real head mapped onto values each dtype holds exactly, spread over its range so every
 * byte of the stored integers varies (a byte-order slip cannot go unnoticed).
 */
function fullRangeValues(dtype: NiftiDtype, v: number): number {
  switch (dtype) {
    case 'uint8': return v;
    case 'int8': return v - 128;
    case 'int16': return (v - 128) * 256 + (v & 15);
    case 'uint16': return v * 257;
    case 'int32': return (v - 128) * 2 ** 23 + (v & 7);
    case 'uint32': return v * 2 ** 24;
    case 'float32': return Math.fround(v / 7 - 3.3);
    case 'float64': return Math.fround(v / 7 - 3.3);
  }
}

describe('writeNifti → readNifti round trip of the real volume, every datatype', () => {
  const SLOPE = Math.fround(0.1);
  const INTER = -7.5;
  for (const dtype of ALL_DTYPES) {
    for (const scaled of [false, true]) {
      it(`${dtype}, ${scaled ? 'scl_slope 0.1, scl_inter -7.5' : 'unscaled'}: .nii and .nii.gz bit-exact`, async () => {
        const src = ch2.volume.data;
        const input = new Float32Array(src.length);
        if (!scaled) {
          for (let i = 0; i < src.length; i++) input[i] = fullRangeValues(dtype, src[i]);
        } else {
          // integers: a grid of raw values the scaling maps to exactly; floats: any values
          const offset = dtype === 'int8' ? 128 : 0;
          for (let i = 0; i < src.length; i++) input[i] = (src[i] - offset) * SLOPE + INTER;
        }
        const expected = new Float32Array(input.length);
        if (!scaled || dtype.startsWith('u') || dtype.startsWith('i')) {
          expected.set(input);
        } else {
          // floats store (x - inter) / slope; a reader computes raw * slope + inter
          for (let i = 0; i < input.length; i++) {
            const stored = (input[i] - INTER) / SLOPE;
            expected[i] = (dtype === 'float32' ? Math.fround(stored) : stored) * SLOPE + INTER;
          }
        }
        const options = scaled ? { dtype, slope: SLOPE, inter: INTER } : { dtype, slope: 1 };
        // The whole head uncompressed; a central block of it gzipped (gzip is dtype-blind, and slow).
        const trials = [
          { ext: '.nii', volume: makeVolume(ch2.volume.shape, input, ch2.volume.spacing, ch2.volume.affine), expected },
          { ext: '.nii.gz', volume: centralBlock(makeVolume(ch2.volume.shape, input)), expected: centralBlock(makeVolume(ch2.volume.shape, expected)).data },
        ];
        for (const { ext, volume, expected: want } of trials) {
          const path = join(tmp, `rt-${dtype}-${scaled ? 's' : 'u'}${ext}`);
          const reference = { ...ch2.header, dims: [3, ...volume.shape, 1, 1, 1, 1] };
          await writeNifti(path, volume, { ...options, reference });
          const back = await readNifti(path);
          expect(firstMismatch(back.volume.data, want)).toBeNull();
          expect(back.header.datatypeCode).toBe(
            { uint8: 2, int8: 256, int16: 4, uint16: 512, int32: 8, uint32: 768, float32: 16, float64: 64 }[dtype],
          );
          expect(back.header.sclSlope).toBe(scaled ? SLOPE : 1);
          expect(back.volume.affine).toEqual(ch2.volume.affine);
          expect(await isGzipFile(path)).toBe(ext === '.nii.gz');
        }
        if (scaled && dtype === 'float32') {
          for (let i = 0; i < input.length; i += 997) expect(expected[i]).toBeCloseTo(input[i], 4);
        }
      });
    }
  }

  it('big-endian output of the writer reads back identically', async () => {
    const input = new Float32Array(ch2.volume.data.length);
    for (let i = 0; i < input.length; i++) input[i] = fullRangeValues('int32', ch2.volume.data[i]);
    const volume = makeVolume(ch2.volume.shape, input, ch2.volume.spacing, ch2.volume.affine);
    for (const dtype of ['int32', 'float64'] as const) {
      const path = join(tmp, `be-${dtype}.nii`);
      await writeNifti(path, volume, { dtype, littleEndian: false, reference: ch2.header });
      const bytes = await readFile(path);
      expect(bytes.readInt32BE(0)).toBe(348);
      const back = await readNifti(path);
      expect(back.header.littleEndian).toBe(false);
      expect(firstMismatch(back.volume.data, input)).toBeNull();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('hand-made files', () => {
  it('a big-endian int16 file with scaling and a qform (qfac -1) reads right, gzipped or not', async () => {
    const [nx, ny, nz] = [3, 4, 5];
    const raw = Int16Array.from({ length: nx * ny * nz }, (_, i) => (i * 1237) % 40000 - 20000);
    const bytes = new Uint8Array(raw.length * 2);
    const dv = new DataView(bytes.buffer);
    raw.forEach((r, i) => dv.setInt16(2 * i, r, false));
    const half = Math.SQRT1_2; // 90° about z: a = d = sqrt(1/2)
    const file = craftNifti(
      {
        littleEndian: false,
        dims: [3, nx, ny, nz, 1, 1, 1, 1],
        datatype: 4,
        bitpix: 16,
        pixdim: [-1, 2, 3, 4],
        slope: 0.5,
        inter: -3,
        qformCode: 1,
        quatern: [0, 0, half],
        qoffset: [10, -20, 30],
      },
      bytes,
    );
    const plainPath = join(tmp, 'big-endian.nii');
    const gzPath = join(tmp, 'big-endian.nii.gz');
    await writeFile(plainPath, file);
    await writeFile(gzPath, gzipSync(file));
    for (const path of [plainPath, gzPath]) {
      const { volume, header } = await readNifti(path);
      expect(header.littleEndian).toBe(false);
      expect([...volume.shape]).toEqual([nx, ny, nz]);
      expect([...volume.spacing]).toEqual([2, 3, 4]);
      for (let i = 0; i < raw.length; i++) expect(volume.data[i]).toBe(raw[i] * 0.5 - 3);
      // R = rotation by 90° about z; columns scaled by 2, 3, 4·qfac
      expectAffineClose(volume.affine, [[0, -3, 0, 10], [2, 0, 0, -20], [0, 0, -4, 30], [0, 0, 0, 1]], 6);
    }
  });

  it('the sform wins over the qform whenever sform_code > 0; pixdim diagonal when both codes are 0', async () => {
    const srow = [0, 0, 1.5, 5, -2, 0, 0, 6, 0, 2.5, 0, 7];
    const both = join(tmp, 'sform-and-qform.nii');
    await writeFile(both, tinyValid({ qformCode: 2, sformCode: 1, quatern: [1, 0, 0], srow, pixdim: [1, 2, 2.5, 1.5] }));
    expectAffineClose((await readNifti(both)).volume.affine, [[0, 0, 1.5, 5], [-2, 0, 0, 6], [0, 2.5, 0, 7], [0, 0, 0, 1]]);
    const none = join(tmp, 'no-transform.nii');
    await writeFile(none, tinyValid({ pixdim: [1, 0.5, 0.75, 2] }));
    const read = await readNifti(none);
    expectAffineClose(read.volume.affine, [[0.5, 0, 0, 0], [0, 0.75, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]]);
  });

  it('big-endian float64 voxels at an odd vox_offset (behind extension bytes) read right', async () => {
    const values = Float64Array.from({ length: 60 }, (_, i) => Math.fround(i * 1.37 - 20));
    const bytes = new Uint8Array(values.length * 8);
    const dv = new DataView(bytes.buffer);
    values.forEach((v, i) => dv.setFloat64(8 * i, v, false));
    const path = join(tmp, 'odd-offset.nii.gz');
    await writeFile(path, gzipSync(craftNifti({ littleEndian: false, dims: [3, 3, 4, 5], datatype: 64, bitpix: 64, voxOffset: 357 }, bytes)));
    expect(Array.from((await readNifti(path)).volume.data)).toEqual(Array.from(values));
  });

  it('VoxelDecoder gives the same voxels for any chunking of the byte stream, either byte order', () => {
    const rng = createRng(5);
    for (const dtype of ALL_DTYPES) {
      for (const littleEndian of [true, false]) {
        const info = DTYPES[dtype];
        const n = 101;
        const bytes = Uint8Array.from({ length: n * info.bytes + 9 }, () => rng.int(256)); // + trailing bytes
        const whole = new VoxelDecoder(new Float32Array(n), info, littleEndian, { slope: 2, inter: 1 });
        expect(whole.push(bytes)).toBe(n * info.bytes);
        const pieces = new VoxelDecoder(new Float32Array(n), info, littleEndian, { slope: 2, inter: 1 });
        let used = 0;
        for (let pos = 0; pos < bytes.length; ) {
          const size = 1 + rng.int(13);
          used += pieces.push(bytes.subarray(pos, pos + size));
          pos += size;
        }
        expect(used).toBe(n * info.bytes);
        expect(pieces.complete).toBe(true);
        expect(firstMismatch(pieces.out, whole.out)).toBeNull();
        // and the decoded values are those a DataView reads
        const dv = new DataView(bytes.buffer);
        const getter = {
          uint8: (o: number) => dv.getUint8(o), int8: (o: number) => dv.getInt8(o),
          int16: (o: number) => dv.getInt16(o, littleEndian), uint16: (o: number) => dv.getUint16(o, littleEndian),
          int32: (o: number) => dv.getInt32(o, littleEndian), uint32: (o: number) => dv.getUint32(o, littleEndian),
          float32: (o: number) => dv.getFloat32(o, littleEndian), float64: (o: number) => dv.getFloat64(o, littleEndian),
        }[dtype];
        const expected = Float32Array.from({ length: n }, (_, i) => getter(i * info.bytes) * 2 + 1);
        expect(firstMismatch(whole.out, expected)).toBeNull();
      }
    }
  });

  it('a 4-D file with one volume and a 5-D file with trailing 1s are read as 3-D', async () => {
    for (const dims of [[4, 3, 4, 5, 1], [5, 3, 4, 5, 1, 1, 7]]) {
      const path = join(tmp, `dims-${dims[0]}.nii`);
      await writeFile(path, tinyValid({ dims }));
      const { volume } = await readNifti(path);
      expect([...volume.shape]).toEqual([3, 4, 5]);
      expect(Array.from(volume.data)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    }
  });

  it('a zero or NaN scl_slope means no scaling; NaN voxels are kept, not an error', async () => {
    const nanSlope = join(tmp, 'nan-slope.nii');
    await writeFile(nanSlope, tinyValid({ slope: NaN, inter: 100 }));
    expect((await readNifti(nanSlope)).volume.data[7]).toBe(7);
    const zeroSlope = join(tmp, 'zero-slope.nii');
    await writeFile(zeroSlope, tinyValid({ slope: 0, inter: 100 }));
    expect((await readNifti(zeroSlope)).volume.data[7]).toBe(7);

    const values = Float32Array.from({ length: 60 }, (_, i) => (i % 13 === 0 ? NaN : i === 5 ? -Infinity : i));
    const withNaN = join(tmp, 'with-nan.nii');
    await writeFile(withNaN, craftNifti({ dims: [3, 3, 4, 5], datatype: 16, bitpix: 32 }, new Uint8Array(values.buffer)));
    const read = await readNifti(withNaN);
    expect(countNonFinite(read.volume.data)).toBe(6);
    expect(read.volume.data[5]).toBe(-Infinity);
  });
});

// ---------------------------------------------------------------------------------------------

describe('bad input: one InputFileError naming the file and the reason', () => {
  async function expectRejected(name: string, content: Uint8Array | string | null, reason: RegExp): Promise<void> {
    const path = join(tmp, name);
    if (content !== null) await writeFile(path, content);
    let caught: unknown;
    try {
      await readNifti(path);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InputFileError);
    const error = caught as InputFileError;
    expect(error.file).toBe(path);
    expect(error.message).toContain(name);
    expect(error.reason).toMatch(reason);
  }

  const ch2Bytes = () => readFileSync(CH2);
  const ch2Plain = () => execFileSync('gzip', ['-dc', CH2], { maxBuffer: 64 << 20 });

  const cases: [string, () => Uint8Array | string | null, RegExp][] = [
    ['missing.nii.gz', () => null, /file not found/],
    ['text.nii', () => 'this is a text file, not an image\n'.repeat(40), /not a NIfTI-1 file/],
    ['random.nii', () => {
      const rng = createRng(42);
      return Uint8Array.from({ length: 4096 }, () => rng.int(256));
    }, /not a NIfTI-1 file/],
    ['empty.nii', () => new Uint8Array(0), /too short/],
    ['short.nii', () => tinyValid().subarray(0, 200), /too short/],
    ['truncated.nii.gz', () => ch2Bytes().subarray(0, 1_000_000), /truncated gzip/],
    ['corrupt.nii.gz', () => {
      const b = Uint8Array.from(ch2Bytes());
      for (let i = 5000; i < 5100; i++) b[i] ^= 0x5a;
      return b;
    }, /corrupt gzip/],
    ['gzipped-text.nii.gz', () => gzipSync('hello\n'.repeat(100)), /not a NIfTI-1 file/],
    ['wrong-magic.nii', () => tinyValid({ magic: 'abc' }), /wrong magic/],
    ['pair.nii', () => tinyValid({ magic: 'ni1' }), /header\/image pair/],
    ['nifti2.nii', () => tinyValid({ sizeofHdr: 540 }), /NIfTI-2/],
    ['complex.nii', () => tinyValid({ datatype: 32, bitpix: 64 }, 480), /unsupported datatype complex64/],
    ['rgb.nii', () => tinyValid({ datatype: 128, bitpix: 24 }, 180), /unsupported datatype RGB24/],
    ['int64.nii', () => tinyValid({ datatype: 1024, bitpix: 64 }, 480), /unsupported datatype int64/],
    ['dim0-zero.nii', () => tinyValid({ dims: [0, 3, 4, 5] }), /impossible header: dim\[0\] = 0/],
    ['dim0-eight.nii', () => tinyValid({ dims: [8, 3, 4, 5, 1, 1, 1, 1] }), /impossible header: dim\[0\] = 8/],
    ['dim-zero.nii', () => tinyValid({ dims: [3, 3, 0, 5] }), /impossible header: dim\[2\] = 0/],
    ['dim-negative.nii', () => tinyValid({ dims: [3, 3, 4, -5] }), /impossible header: dim\[3\] = -5/],
    ['two-d.nii', () => tinyValid({ dims: [2, 3, 4] }), /2-D image/],
    ['four-d.nii', () => tinyValid({ dims: [4, 3, 4, 5, 3] }, 180), /4-D image with 3 volumes/],
    ['five-d.nii', () => tinyValid({ dims: [5, 3, 4, 5, 1, 2] }, 120), /5-D image/],
    ['voxoffset-low.nii', () => tinyValid({ voxOffset: 100 }), /vox_offset = 100/],
    ['voxoffset-fraction.nii', () => tinyValid({ voxOffset: 352.5 }), /vox_offset = 352.5/],
    ['voxoffset-far.nii', () => tinyValid({ voxOffset: 1e6 }), /vox_offset 1000000 lies beyond the end/],
    ['voxoffset-far.nii.gz', () => gzipSync(tinyValid({ voxOffset: 1e5 })), /vox_offset 100000 lies beyond the end of the decompressed data/],
    ['voxoffset-very-far.nii.gz', () => gzipSync(tinyValid({ voxOffset: 1e7 })), /vox_offset 10000000 lies beyond the end/],
    ['short-data.nii', () => tinyValid({}, 59), /truncated: 3×4×5 uint8 voxels .* need 412 bytes, the file has 411/],
    ['huge-dims.nii.gz', () => gzipSync(tinyValid({ dims: [3, 30000, 30000, 30000], datatype: 64, bitpix: 64 })), /truncated: the header asks for/],
    ['short-data.nii.gz', () => gzipSync(ch2Plain().subarray(0, 5_000_000)), /truncated: 181×217×181 uint8/],
  ];
  for (const [name, make, reason] of cases) {
    it(`${name} → ${reason.source}`, async () => {
      await expectRejected(name, make(), reason);
    });
  }

  it('a folder → "not a regular file"', async () => {
    await mkdir(join(tmp, 'folder.nii.gz'));
    await expectRejected('folder.nii.gz', null, /not a regular file/);
  });

  it('reading leaves no temp files behind', async () => {
    expect(await tempFilesIn(tmp)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('writeNifti headers and encodings', () => {
  it('copies grid, pixdim, qform/sform and units from a reference header (ch2better: both codes 1)', async () => {
    const original = await readNifti(join(DATA, 'ch2better.nii.gz'));
    // Same grid origin, orientation and voxel size, smaller extent: keeps the test fast.
    const ref = { ...original, header: { ...original.header, dims: [3, 40, 50, 30, 1, 1, 1, 1] } };
    const [nx, ny, nz] = [40, 50, 30] as const;
    const rng = createRng(3);
    const data = Float32Array.from({ length: nx * ny * nz }, () => rng.next());
    // The volume carries a different affine on purpose: the reference must win.
    const volume = makeVolume([nx, ny, nz], data);
    const path = join(tmp, 'with-reference.nii.gz');
    await writeNifti(path, volume, { reference: ref.header });
    const back = await readNifti(path);
    for (const key of ['dims', 'pixDims', 'qformCode', 'sformCode', 'quatern', 'qoffset', 'srow', 'xyztUnits'] as const) {
      expect(back.header[key]).toEqual(ref.header[key]);
    }
    expect(back.header.voxOffset).toBe(352);
    expect(back.header.datatypeCode).toBe(16);
    expect(back.volume.affine).toEqual(original.volume.affine);
    expect([...back.volume.spacing]).toEqual([0.5, 0.5, 0.5]);
    expect(firstMismatch(back.volume.data, data)).toBeNull();
    const bytes = execFileSync('gzip', ['-dc', path], { maxBuffer: 256 << 20 });
    expect([...bytes.subarray(348, 352)]).toEqual([0, 0, 0, 0]);
    expect(bytes.length).toBe(352 + 4 * nx * ny * nz);
    await expect(writeNifti(join(tmp, 'bad-shape.nii.gz'), makeVolume([2, 2, 2]), { reference: ref.header })).rejects.toThrow(
      /differs from the reference/,
    );
  });

  it('without a reference: sform = the affine (code 2) and a matching qform for a rotation/flip grid', async () => {
    const c = Math.cos(0.3), s = Math.sin(0.3);
    const spacing = [1.5, 2, 0.8] as const;
    // rotation about y, then x flipped (left-handed grid → qfac -1)
    const affine: Affine = [
      [-c * spacing[0], 0, s * spacing[2], 12.5],
      [0, spacing[1], 0, -40],
      [s * spacing[0], 0, c * spacing[2], 7.25],
      [0, 0, 0, 1],
    ];
    const volume = makeVolume([4, 5, 6], Float32Array.from({ length: 120 }, (_, i) => i / 10), spacing, affine);
    const path = join(tmp, 'no-reference.nii');
    await writeNifti(path, volume);
    const back = await readNifti(path);
    expect(back.header.sformCode).toBe(2);
    expect(back.header.qformCode).toBe(2);
    expect(back.header.pixDims[0]).toBe(-1);
    expectAffineClose(back.volume.affine, affine, 5);
    expectAffineClose(sformAffine(back.header), affine, 5);
    expectAffineClose(qformAffine(back.header), affine, 5);
    expect([...back.volume.spacing].map((v) => Math.fround(v))).toEqual(spacing.map((v) => Math.fround(v)));

    const sheared: Affine = [[1, 0.4, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
    const shearPath = join(tmp, 'sheared.nii');
    await writeNifti(shearPath, makeVolume([4, 5, 6], undefined, [1, 1, 1], sheared));
    const shearBack = await readNifti(shearPath);
    expect(shearBack.header.qformCode).toBe(0);
    expectAffineClose(shearBack.volume.affine, sheared, 6);
  });

  it('uint16 with the default slope 1/65535 reads back within half a step, clamped, NaN → 0', async () => {
    const rng = createRng(11);
    const n = 40 * 40 * 40;
    const input = Float32Array.from({ length: n }, () => rng.uniform(-0.1, 1.1));
    input[0] = NaN;
    input[1] = 1;
    input[2] = 0;
    const path = join(tmp, 'probability.nii.gz');
    await writeNifti(path, makeVolume([40, 40, 40], input), { dtype: 'uint16' });
    const back = await readNifti(path);
    const slope = Math.fround(1 / 65535);
    expect(back.header.datatypeCode).toBe(512);
    expect(back.header.sclSlope).toBe(slope);
    expect(back.header.sclInter).toBe(0);
    // half a quantisation step, plus the float32 rounding of the stored result
    const tolerance = slope / 2 + 2 ** -24;
    let worst = 0;
    for (let i = 1; i < n; i++) worst = Math.max(worst, Math.abs(back.volume.data[i] - Math.min(1, Math.max(0, input[i]))));
    expect(worst).toBeLessThanOrEqual(tolerance);
    expect(worst).toBeGreaterThan(slope / 4); // the quantisation is really there
    expect(back.volume.data[0]).toBe(0);
    expect(back.volume.data[2]).toBe(0);
    expect(Math.abs(back.volume.data[1] - 1)).toBeLessThan(1e-6);
  });

  it('the write is atomic: a failing rename leaves the old target and no temp file', async () => {
    const dir = join(tmp, 'atomic');
    await mkdir(dir);
    // the target is an existing folder: the final rename must fail
    await mkdir(join(dir, 'blocked.nii.gz'));
    await expect(writeNifti(join(dir, 'blocked.nii.gz'), makeVolume([2, 2, 2]))).rejects.toThrow();
    await expect(writeNifti(join(dir, 'no-such-folder', 'x.nii.gz'), makeVolume([2, 2, 2]))).rejects.toThrow(/ENOENT/);
    expect(await tempFilesIn(dir)).toEqual([]);

    await writeNifti(join(dir, 'ok.nii'), makeVolume([2, 2, 2], new Float32Array(8).fill(3)));
    expect(await readdir(dir)).toEqual(['blocked.nii.gz', 'ok.nii']);
  });

  it('atomicWriteFile writes and replaces text and bytes, leaving no temp file', async () => {
    const dir = join(tmp, 'atomic-text');
    await mkdir(dir);
    const target = join(dir, 'toy_0.nii.gz.txt');
    await atomicWriteFile(target, '0.25\n');
    await atomicWriteFile(target, '0.75\n');
    expect(await readFile(target, 'utf8')).toBe('0.75\n');
    await atomicWriteFile(join(dir, 'bytes.bin'), Uint8Array.from([1, 2, 3]));
    expect([...(await readFile(join(dir, 'bytes.bin')))]).toEqual([1, 2, 3]);
    await expect(atomicWriteFile(join(dir, 'missing', 'x.txt'), 'x')).rejects.toThrow(/ENOENT/);
    expect((await readdir(dir)).sort()).toEqual(['bytes.bin', 'toy_0.nii.gz.txt']);
  });
});

// ---------------------------------------------------------------------------------------------

const hasNibabel =
  existsSync(SYSTEM_PYTHON) && spawnSync(SYSTEM_PYTHON, ['-c', 'import nibabel'], { stdio: 'ignore' }).status === 0;

describe.runIf(hasNibabel)('nibabel reads what writeNifti writes (needs /usr/bin/python3 with nibabel)', () => {
  it('float32 .nii.gz with a reference, uint16 probability map, big-endian int16', async () => {
    const ch2Volume: Volume = ch2.volume;
    const files = {
      f32: join(tmp, 'nib-f32.nii.gz'),
      u16: join(tmp, 'nib-u16.nii.gz'),
      be: join(tmp, 'nib-be.nii'),
    };
    const scaled = ch2Volume.data.map((v) => v / 255);
    await writeNifti(files.f32, { ...ch2Volume, data: scaled }, { reference: ch2.header });
    await writeNifti(files.u16, { ...ch2Volume, data: scaled }, { dtype: 'uint16', reference: ch2.header });
    await writeNifti(files.be, ch2Volume, { dtype: 'int16', littleEndian: false });
    const script = [
      'import json, sys, nibabel as nib, numpy as np',
      'out = {}',
      'for name, path in json.loads(sys.argv[1]).items():',
      '    im = nib.load(path); d = im.get_fdata(dtype=np.float64)',
      '    out[name] = {"shape": list(d.shape), "affine": im.affine.tolist(), "sum": float(d.sum()), "v": float(d[90, 108, 90])}',
      'print(json.dumps(out))',
    ].join('\n');
    const result = JSON.parse(execFileSync(SYSTEM_PYTHON, ['-c', script, JSON.stringify(files)], { encoding: 'utf8' }));
    const ch2Sum = ch2Volume.data.reduce((a, v) => a + v, 0);
    const centre = 90 + 181 * (108 + 217 * 90);
    for (const name of ['f32', 'u16', 'be'] as const) {
      expect(result[name].shape).toEqual([181, 217, 181]);
      expectAffineClose(result[name].affine as Affine, ch2Volume.affine, 5);
    }
    expect(result.f32.sum).toBeCloseTo(ch2Sum / 255, 0);
    expect(result.f32.v).toBeCloseTo(ch2Volume.data[centre] / 255, 6);
    expect(Math.abs(result.u16.sum - ch2Sum / 255) / (ch2Sum / 255)).toBeLessThan(1e-5);
    expect(result.u16.v).toBeCloseTo(ch2Volume.data[centre] / 255, 4);
    expect(result.be.sum).toBe(ch2Sum);
    expect(result.be.v).toBe(ch2Volume.data[centre]);
  });
});

describe('small helpers', () => {
  it('countNonFinite counts NaN and ±Infinity only', () => {
    expect(countNonFinite(Float32Array.from([0, NaN, 1, Infinity, -Infinity, -0, 3.4e38]))).toBe(3);
    expect(countNonFinite(new Float32Array(10))).toBe(0);
  });

  it('isNiftiFileName and niftiCaseName', () => {
    expect(['toy_0.nii.gz', 'a.nii', 'B.NII.GZ'].map(isNiftiFileName)).toEqual([true, true, true]);
    expect(['toy_0.nii.gz.txt', 'a.gz', 'nii', 'x.nii.gz.tmp'].map(isNiftiFileName)).toEqual([false, false, false, false]);
    expect(niftiCaseName('toy_0.nii.gz')).toBe('toy_0');
    expect(niftiCaseName('brain.nii')).toBe('brain');
    expect(niftiCaseName(basename('/x/notes.txt'))).toBe('notes.txt');
  });
});
