/**
 * The NIfTI-1 header: parsing (field decoding by nifti-reader-js, validation and the affine
 * here), building one for writing, and serialising it to 352 bytes with DataView.
 *
 * Why not nifti-reader-js for everything: its affine prefers the qform whenever
 * qform_code > sform_code (the standard and nibabel prefer any sform_code > 0), it keeps no srow
 * when it picks the qform, and its `toArrayBuffer()` writes its computed affine back as srow and
 * strings as UTF-8; so srow, the affine and serialisation are done here. Every float field
 * holds a float32 value, so parse → serialise reproduces the header fields bit for bit.
 */
import * as nifti from 'nifti-reader-js';
import type { Affine } from '../volume/volume.js';
import { describeDatatypeCode, dtypeForCode, type DtypeInfo } from './nifti-dtypes.js';

export const NIFTI1_HEADER_BYTES = 348;
/** Header + the 4-byte extension flag: where voxels start in files we write. */
export const NIFTI1_VOX_OFFSET = 352;

/** Every NIfTI-1 header field a reader needs or a writer must copy. */
export interface NiftiHeaderInfo {
  readonly littleEndian: boolean;
  /** dim[0..7]: dim[0] = number of dimensions, dim[1..3] = nx, ny, nz. */
  readonly dims: readonly number[];
  /** pixdim[0..7]: pixdim[0] = qfac (±1), pixdim[1..3] = voxel size. */
  readonly pixDims: readonly number[];
  readonly datatypeCode: number;
  readonly bitpix: number;
  readonly voxOffset: number;
  readonly sclSlope: number;
  readonly sclInter: number;
  readonly dimInfo: number;
  readonly intentCode: number;
  readonly intentP: readonly [number, number, number];
  readonly intentName: string;
  readonly sliceStart: number;
  readonly sliceEnd: number;
  readonly sliceCode: number;
  readonly sliceDuration: number;
  readonly toffset: number;
  readonly xyztUnits: number;
  readonly calMax: number;
  readonly calMin: number;
  readonly descrip: string;
  readonly auxFile: string;
  readonly qformCode: number;
  readonly sformCode: number;
  /** quatern_b, quatern_c, quatern_d. */
  readonly quatern: readonly [number, number, number];
  /** qoffset_x, qoffset_y, qoffset_z. */
  readonly qoffset: readonly [number, number, number];
  /** srow_x, srow_y, srow_z: rows 0..2 of the sform affine. */
  readonly srow: readonly [readonly number[], readonly number[], readonly number[]];
}

/** A header that cannot be used; the reader turns the reason into an InputFileError. */
export class NiftiFormatProblem extends Error {}

/**
 * Decodes and validates the first 348 bytes of a single-file NIfTI-1 image. Accepts 3-D images
 * and higher-dimensional ones whose dims beyond the third are all 1.
 */
export function parseNiftiHeader(bytes: Uint8Array): { header: NiftiHeaderInfo; dtype: DtypeInfo } {
  if (bytes.length < NIFTI1_HEADER_BYTES) {
    throw new NiftiFormatProblem(
      `too short to be a NIfTI-1 file (${bytes.length} bytes; the header alone is ${NIFTI1_HEADER_BYTES})`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, NIFTI1_HEADER_BYTES);
  const sizeLE = view.getInt32(0, true);
  const sizeBE = view.getInt32(0, false);
  if (sizeLE === 540 || sizeBE === 540) throw new NiftiFormatProblem('NIfTI-2 files are not supported');
  if (sizeLE !== NIFTI1_HEADER_BYTES && sizeBE !== NIFTI1_HEADER_BYTES) {
    throw new NiftiFormatProblem(
      `not a NIfTI-1 file (header size field is ${sizeLE}, expected ${NIFTI1_HEADER_BYTES} in either byte order)`,
    );
  }
  const magic = String.fromCharCode(bytes[344], bytes[345], bytes[346]);
  if (magic === 'ni1') {
    throw new NiftiFormatProblem('a separate header/image pair (.hdr/.img) is not supported; use a single .nii file');
  }
  if (magic !== 'n+1') {
    throw new NiftiFormatProblem(`wrong magic ${JSON.stringify(latin1(bytes, 344, 348))} (expected "n+1")`);
  }

  const parsed = new nifti.NIFTI1();
  parsed.readHeader(bytes.slice(0, NIFTI1_HEADER_BYTES).buffer);
  const le = parsed.littleEndian;
  if (le !== (sizeLE === NIFTI1_HEADER_BYTES)) throw new Error('nifti-reader-js disagrees on the byte order');

  const header: NiftiHeaderInfo = {
    littleEndian: le,
    dims: parsed.dims.slice(0, 8),
    pixDims: parsed.pixDims.slice(0, 8),
    datatypeCode: parsed.datatypeCode,
    bitpix: parsed.numBitsPerVoxel,
    voxOffset: parsed.vox_offset,
    sclSlope: parsed.scl_slope,
    sclInter: parsed.scl_inter,
    dimInfo: parsed.dim_info,
    intentCode: parsed.intent_code,
    intentP: [parsed.intent_p1, parsed.intent_p2, parsed.intent_p3],
    intentName: latin1(bytes, 328, 344),
    sliceStart: parsed.slice_start,
    sliceEnd: parsed.slice_end,
    sliceCode: parsed.slice_code,
    sliceDuration: parsed.slice_duration,
    toffset: parsed.toffset,
    xyztUnits: parsed.xyzt_units,
    calMax: parsed.cal_max,
    calMin: parsed.cal_min,
    descrip: latin1(bytes, 148, 228),
    auxFile: latin1(bytes, 228, 252),
    qformCode: parsed.qform_code,
    sformCode: parsed.sform_code,
    quatern: [parsed.quatern_b, parsed.quatern_c, parsed.quatern_d],
    qoffset: [parsed.qoffset_x, parsed.qoffset_y, parsed.qoffset_z],
    srow: [0, 1, 2].map((row) => [0, 1, 2, 3].map((col) => view.getFloat32(280 + 16 * row + 4 * col, le))) as [
      number[],
      number[],
      number[],
    ],
  };
  return { header, dtype: validateHeader(header) };
}

function validateHeader(h: NiftiHeaderInfo): DtypeInfo {
  const ndim = h.dims[0];
  if (!(ndim >= 1 && ndim <= 7)) throw new NiftiFormatProblem(`impossible header: dim[0] = ${ndim} is outside 1..7`);
  for (let i = 1; i <= ndim; i++) {
    if (h.dims[i] < 1) throw new NiftiFormatProblem(`impossible header: dim[${i}] = ${h.dims[i]} (must be positive)`);
  }
  if (ndim < 3) throw new NiftiFormatProblem(`${ndim}-D image (dim[0] = ${ndim}); a 3-D volume is required`);
  for (let i = 4; i <= ndim; i++) {
    if (h.dims[i] !== 1) {
      const what = i === 4 ? `4-D image with ${h.dims[4]} volumes` : `${ndim}-D image (dim[${i}] = ${h.dims[i]})`;
      throw new NiftiFormatProblem(`${what}; only a single 3-D volume is supported`);
    }
  }
  const dtype = dtypeForCode(h.datatypeCode);
  if (!dtype) {
    throw new NiftiFormatProblem(
      `unsupported datatype ${describeDatatypeCode(h.datatypeCode)} (code ${h.datatypeCode}); ` +
        'supported: uint8, int8, int16, uint16, int32, uint32, float32, float64',
    );
  }
  if (!Number.isInteger(h.voxOffset) || h.voxOffset < NIFTI1_VOX_OFFSET) {
    throw new NiftiFormatProblem(
      `impossible header: vox_offset = ${h.voxOffset} (a single-file NIfTI-1 needs an integer >= ${NIFTI1_VOX_OFFSET})`,
    );
  }
  return dtype;
}

/** Voxel size along x, y, z: |pixdim[1..3]|, with 1 standing in for 0 or non-finite entries. */
export function spacingOf(h: NiftiHeaderInfo): [number, number, number] {
  return [1, 2, 3].map((i) => {
    const d = Math.abs(h.pixDims[i]);
    return Number.isFinite(d) && d > 0 ? d : 1;
  }) as [number, number, number];
}

/** The sform affine (srow_x/y/z + [0 0 0 1]). */
export function sformAffine(h: NiftiHeaderInfo): Affine {
  const [x, y, z] = h.srow;
  return [[x[0], x[1], x[2], x[3]], [y[0], y[1], y[2], y[3]], [z[0], z[1], z[2], z[3]], [0, 0, 0, 1]];
}

/** The qform affine (NIfTI-1 "method 2"): rotation from the quaternion, qfac, pixdim, qoffset. */
export function qformAffine(h: NiftiHeaderInfo): Affine {
  let [b, c, d] = h.quatern;
  const squares = b * b + c * c + d * d;
  let a = 0;
  if (squares > 1) {
    // float32 rounding of a 180° rotation can push |(b,c,d)| just past 1: renormalise, a = 0.
    const norm = Math.sqrt(squares);
    b /= norm;
    c /= norm;
    d /= norm;
  } else {
    a = Math.sqrt(1 - squares);
  }
  const r = [
    [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
    [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
    [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - b * b - c * c],
  ];
  const [dx, dy, dz] = spacingOf(h);
  const qfac = h.pixDims[0] < 0 ? -1 : 1;
  const scale = [dx, dy, dz * qfac];
  const row = (i: number) =>
    [r[i][0] * scale[0], r[i][1] * scale[1], r[i][2] * scale[2], h.qoffset[i]] as const;
  return [row(0), row(1), row(2), [0, 0, 0, 1]];
}

/**
 * Voxel-to-world affine by the NIfTI-1 precedence: the sform when sform_code > 0, else the
 * qform when qform_code > 0, else diag(spacing) with zero offset ("method 1"; nibabel instead
 * centres and x-flips in that last case).
 */
export function bestAffine(h: NiftiHeaderInfo): Affine {
  if (h.sformCode > 0) return sformAffine(h);
  if (h.qformCode > 0) return qformAffine(h);
  const [dx, dy, dz] = spacingOf(h);
  return [
    [dx, 0, 0, 0],
    [0, dy, 0, 0],
    [0, 0, dz, 0],
    [0, 0, 0, 1],
  ];
}

/**
 * The qform (quaternion b, c, d, qfac, offset) that reproduces `affine`, or null when the affine
 * has no exact qform: its columns are not orthogonal, or their lengths are not `spacing`.
 */
export function qformFromAffine(
  affine: Affine,
  spacing: readonly [number, number, number],
): { quatern: [number, number, number]; qfac: 1 | -1; qoffset: [number, number, number] } | null {
  const cols = [0, 1, 2].map((j) => [affine[0][j], affine[1][j], affine[2][j]]);
  const tol = 1e-4;
  for (let j = 0; j < 3; j++) {
    const len = Math.hypot(cols[j][0], cols[j][1], cols[j][2]);
    if (!(spacing[j] > 0) || Math.abs(len - spacing[j]) > tol * spacing[j]) return null;
    cols[j] = cols[j].map((v) => v / len);
  }
  const dot = (u: number[], v: number[]) => u[0] * v[0] + u[1] * v[1] + u[2] * v[2];
  if (Math.abs(dot(cols[0], cols[1])) > tol || Math.abs(dot(cols[0], cols[2])) > tol || Math.abs(dot(cols[1], cols[2])) > tol) {
    return null;
  }
  // A left-handed grid becomes a proper rotation by flipping the third axis (qfac = -1).
  const [u, v, w] = cols;
  const det = u[0] * (v[1] * w[2] - v[2] * w[1]) - v[0] * (u[1] * w[2] - u[2] * w[1]) + w[0] * (u[1] * v[2] - u[2] * v[1]);
  const qfac: 1 | -1 = det < 0 ? -1 : 1;
  const R = [0, 1, 2].map((i) => [u[i], v[i], w[i] * qfac]);
  const trace = R[0][0] + R[1][1] + R[2][2];
  let a: number, b: number, c: number, d: number;
  if (trace > -0.5) {
    a = 0.5 * Math.sqrt(1 + trace);
    b = (R[2][1] - R[1][2]) / (4 * a);
    c = (R[0][2] - R[2][0]) / (4 * a);
    d = (R[1][0] - R[0][1]) / (4 * a);
  } else if (R[0][0] >= R[1][1] && R[0][0] >= R[2][2]) {
    b = 0.5 * Math.sqrt(1 + R[0][0] - R[1][1] - R[2][2]);
    a = (R[2][1] - R[1][2]) / (4 * b);
    c = (R[0][1] + R[1][0]) / (4 * b);
    d = (R[0][2] + R[2][0]) / (4 * b);
  } else if (R[1][1] >= R[2][2]) {
    c = 0.5 * Math.sqrt(1 - R[0][0] + R[1][1] - R[2][2]);
    a = (R[0][2] - R[2][0]) / (4 * c);
    b = (R[0][1] + R[1][0]) / (4 * c);
    d = (R[1][2] + R[2][1]) / (4 * c);
  } else {
    d = 0.5 * Math.sqrt(1 - R[0][0] - R[1][1] + R[2][2]);
    a = (R[1][0] - R[0][1]) / (4 * d);
    b = (R[0][2] + R[2][0]) / (4 * d);
    c = (R[1][2] + R[2][1]) / (4 * d);
  }
  // NIfTI stores only b, c, d and takes a >= 0.
  const sign = a < 0 ? -1 : 1;
  return {
    quatern: [b * sign, c * sign, d * sign],
    qfac,
    qoffset: [affine[0][3], affine[1][3], affine[2][3]],
  };
}

/** Serialises a header to `NIFTI1_VOX_OFFSET` bytes (348 + a zeroed extension flag). */
export function serializeNiftiHeader(h: NiftiHeaderInfo): Uint8Array {
  const bytes = new Uint8Array(NIFTI1_VOX_OFFSET);
  const view = new DataView(bytes.buffer);
  const le = h.littleEndian;
  const f32 = (offset: number, value: number) => view.setFloat32(offset, value, le);
  const i16 = (offset: number, value: number) => view.setInt16(offset, value, le);
  view.setInt32(0, NIFTI1_HEADER_BYTES, le);
  bytes[38] = 0x72; // 'regular' = 'r', as ANALYZE-era readers expect
  bytes[39] = h.dimInfo;
  for (let i = 0; i < 8; i++) i16(40 + 2 * i, h.dims[i] ?? 0);
  f32(56, h.intentP[0]);
  f32(60, h.intentP[1]);
  f32(64, h.intentP[2]);
  i16(68, h.intentCode);
  i16(70, h.datatypeCode);
  i16(72, h.bitpix);
  i16(74, h.sliceStart);
  for (let i = 0; i < 8; i++) f32(76 + 4 * i, h.pixDims[i] ?? 0);
  f32(108, h.voxOffset);
  f32(112, h.sclSlope);
  f32(116, h.sclInter);
  i16(120, h.sliceEnd);
  bytes[122] = h.sliceCode;
  bytes[123] = h.xyztUnits;
  f32(124, h.calMax);
  f32(128, h.calMin);
  f32(132, h.sliceDuration);
  f32(136, h.toffset);
  writeLatin1(bytes, 148, 80, h.descrip);
  writeLatin1(bytes, 228, 24, h.auxFile);
  i16(252, h.qformCode);
  i16(254, h.sformCode);
  for (let i = 0; i < 3; i++) f32(256 + 4 * i, h.quatern[i]);
  for (let i = 0; i < 3; i++) f32(268 + 4 * i, h.qoffset[i]);
  for (let row = 0; row < 3; row++) {
    for (let col = 0; col < 4; col++) f32(280 + 16 * row + 4 * col, h.srow[row][col]);
  }
  writeLatin1(bytes, 328, 16, h.intentName);
  writeLatin1(bytes, 344, 4, 'n+1');
  return bytes;
}

/** Characters of a fixed-size, NUL-padded text field (one byte per character). */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end && bytes[i] !== 0; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

function writeLatin1(bytes: Uint8Array, start: number, size: number, text: string): void {
  const n = Math.min(text.length, size);
  for (let i = 0; i < n; i++) {
    const code = text.charCodeAt(i);
    bytes[start + i] = code < 256 ? code : 0x3f; // '?'
  }
}
