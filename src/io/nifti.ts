/**
 * NIfTI-1 volumes in and out (`.nii` and `.nii.gz`).
 *
 *   readNifti(path): Promise<NiftiImage>
 *     Reads a single-file NIfTI-1 image, gzipped or not (decided by the gzip magic bytes, not
 *     the name), in either byte order, datatype uint8/int8/int16/uint16/int32/uint32/float32/
 *     float64, into a Float32Array with scl_slope/scl_inter applied (slope 0 or non-finite: no
 *     scaling). 3-D only; 4-D..7-D are accepted when every dim beyond the third is 1.
 *     volume.affine: sform if sform_code > 0, else qform if qform_code > 0, else diag(pixdim).
 *     volume.spacing: |pixdim[1..3]| (1 where 0). NaN voxels are kept (see countNonFinite).
 *     Anything unusable (missing, not NIfTI, wrong magic, truncated or corrupt gzip, unsupported
 *     datatype, impossible dims or vox_offset, too few voxel bytes, NIfTI-2, .hdr/.img pair)
 *     rejects with exactly one InputFileError naming the file and the reason.
 *     Memory: voxels are decoded chunk by chunk, straight from the (decompressing) file stream
 *     into the output Float32Array; the whole decompressed file is never held.
 *
 *   writeNifti(path, volume, options?): Promise<void>
 *     Atomic write (temp file in the same folder + rename). gzip unless the path ends in `.nii`.
 *     Little-endian unless options.littleEndian === false. vox_offset 352, no extensions.
 *     options.dtype (default 'float32'): raw = (value - inter) / slope; integer types round half
 *     up, clamp to their range and store NaN as 0.
 *     options.slope / options.inter: scl_slope / scl_inter. Default: none (slope 1, inter 0),
 *     except dtype 'uint16', whose default is slope = 1/65535 (as float32), inter 0: the MOOD
 *     probability-map encoding, values in [0, 1] clamped and rounded to 1/65535 steps.
 *     options.reference (a header from readNifti): dims must match volume.shape; pixdim,
 *     qform/sform (codes and parameters), xyzt_units, dim_info, slice fields, toffset, aux_file
 *     and descrip are copied from it, so the output sits exactly on the input's grid; intent,
 *     cal_min/cal_max are reset. Without a reference: pixdim = volume.spacing, sform = volume.affine
 *     with sform_code 2 (aligned), qform derived from the affine with qform_code 2 when the affine
 *     is a rotation/flip times diag(spacing) + offset, else qform_code 0; xyzt_units = mm.
 *     options.gzipLevel: 1..9, default DEFAULT_GZIP_LEVEL.
 *
 *   countNonFinite(data): number of NaN / ±Infinity values.
 *   isNiftiFileName(name): ends with .nii or .nii.gz (any case).
 *   niftiCaseName(name): the name without its .nii / .nii.gz ending ("toy_0.nii.gz" → "toy_0").
 *
 * Header helpers (sformAffine, qformAffine, bestAffine, serializeNiftiHeader…) live in
 * ./nifti-header.js, datatype tables and voxel codecs in ./nifti-dtypes.js.
 */
import { open } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { InputFileError } from '../errors.js';
import { makeVolume, type Volume } from '../volume/volume.js';
import { withAtomicFile } from './atomic.js';
import {
  DTYPES,
  HOST_LITTLE_ENDIAN,
  VoxelDecoder,
  effectiveScaling,
  encodeVoxels,
  type DtypeInfo,
  type NiftiDtype,
  type Scaling,
} from './nifti-dtypes.js';
import {
  NIFTI1_HEADER_BYTES,
  NIFTI1_VOX_OFFSET,
  NiftiFormatProblem,
  bestAffine,
  parseNiftiHeader,
  qformFromAffine,
  serializeNiftiHeader,
  spacingOf,
  type NiftiHeaderInfo,
} from './nifti-header.js';

export type { NiftiHeaderInfo } from './nifti-header.js';
export type { NiftiDtype } from './nifti-dtypes.js';

export interface NiftiImage {
  readonly volume: Volume;
  /** The parsed header, as found in the file: pass it as `reference` to write on the same grid. */
  readonly header: NiftiHeaderInfo;
}

export interface NiftiWriteOptions {
  readonly dtype?: NiftiDtype;
  readonly slope?: number;
  readonly inter?: number;
  readonly reference?: NiftiHeaderInfo;
  readonly littleEndian?: boolean;
  readonly gzipLevel?: number;
  /** descrip field (80 characters at most); default: the reference's, else "moodlsr". */
  readonly description?: string;
}

/** gzip level for writing: level 1 is ~3× faster than 6 for ~10–20 % larger files. */
export const DEFAULT_GZIP_LEVEL = 1;

const IO_CHUNK_BYTES = 1 << 20;
const ENCODE_CHUNK_VOXELS = 1 << 18;
/** deflate cannot expand data by more than ~1032:1. */
const MAX_DEFLATE_RATIO = 1032;

// ---------------------------------------------------------------------------------------------
// Reading

export async function readNifti(path: string): Promise<NiftiImage> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new InputFileError(path, fileSystemReason(err));
  }
  let failure: unknown;
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new NiftiFormatProblem('not a regular file');
    const start = new Uint8Array(2);
    const { bytesRead } = await handle.read(start, 0, 2, 0);
    const gzipped = bytesRead === 2 && start[0] === 0x1f && start[1] === 0x8b;
    const collector = new NiftiCollector(gzipped ? null : stats.size, gzipped ? stats.size : null);
    const file = handle.createReadStream({ start: 0, highWaterMark: IO_CHUNK_BYTES, autoClose: false });
    const consume = async (source: AsyncIterable<Uint8Array>) => {
      try {
        for await (const chunk of source) collector.push(chunk);
      } catch (err) {
        // pipeline() may reject with the AbortError of a stage it tore down: keep the real cause
        failure ??= err;
        throw err;
      }
    };
    if (gzipped) await pipeline(file, createGunzip({ chunkSize: IO_CHUNK_BYTES }), consume);
    else await pipeline(file, consume);
    return collector.finish();
  } catch (err) {
    throw new InputFileError(path, readFailureReason(failure ?? err));
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** Consumes the file's (decompressed) bytes: header first, then voxels straight into the output. */
class NiftiCollector {
  private headerBytes = new Uint8Array(NIFTI1_HEADER_BYTES);
  private headerFill = 0;
  private parsed: { header: NiftiHeaderInfo; dtype: DtypeInfo } | null = null;
  private decoder: VoxelDecoder | null = null;
  /** Bytes seen so far, header included. */
  private total = 0;

  /**
   * `fileSize`: the byte count when known up front (uncompressed files), to fail early;
   * `gzipSize`: the compressed size, which bounds what the header may ask for before allocating.
   */
  constructor(
    private readonly fileSize: number | null,
    private readonly gzipSize: number | null,
  ) {}

  push(chunk: Uint8Array): void {
    let pos = 0;
    if (!this.parsed) {
      const take = Math.min(NIFTI1_HEADER_BYTES - this.headerFill, chunk.length);
      this.headerBytes.set(chunk.subarray(0, take), this.headerFill);
      this.headerFill += take;
      this.total += take;
      pos = take;
      if (this.headerFill < NIFTI1_HEADER_BYTES) return;
      this.startImage();
    }
    const { header } = this.parsed!;
    const decoder = this.decoder!;
    // Skip what lies between the header and vox_offset (extensions), then decode voxels.
    const skip = Math.min(Math.max(header.voxOffset - this.total, 0), chunk.length - pos);
    pos += skip;
    this.total += skip;
    if (pos < chunk.length && !decoder.complete) {
      const used = decoder.push(chunk.subarray(pos));
      pos += used;
      this.total += used;
    }
    // Bytes after the image (if any) are ignored.
  }

  private startImage(): void {
    this.parsed = parseNiftiHeader(this.headerBytes);
    const { header, dtype } = this.parsed;
    const voxels = header.dims[1] * header.dims[2] * header.dims[3];
    if (this.fileSize !== null) this.checkLength(this.fileSize);
    if (this.gzipSize !== null) {
      const bound = this.gzipSize * MAX_DEFLATE_RATIO + 1024;
      const needed = header.voxOffset + voxels * dtype.bytes;
      const capacity = `what a ${this.gzipSize}-byte gzip file can hold`;
      if (header.voxOffset > bound) {
        throw new NiftiFormatProblem(`vox_offset ${header.voxOffset} lies beyond the end of ${capacity}`);
      }
      if (needed > bound) throw new NiftiFormatProblem(`truncated: the header asks for ${needed} bytes, more than ${capacity}`);
    }
    let out: Float32Array;
    try {
      out = new Float32Array(voxels);
    } catch {
      throw new NiftiFormatProblem(`image of ${voxels} voxels is too large to hold in memory`);
    }
    this.decoder = new VoxelDecoder(
      out,
      dtype,
      header.littleEndian,
      effectiveScaling(header.sclSlope, header.sclInter),
    );
  }

  private checkLength(available: number): void {
    const { header, dtype } = this.parsed!;
    const voxels = header.dims[1] * header.dims[2] * header.dims[3];
    const needed = header.voxOffset + voxels * dtype.bytes;
    const what = this.fileSize === null ? 'decompressed data' : 'file';
    if (available < header.voxOffset) {
      throw new NiftiFormatProblem(`vox_offset ${header.voxOffset} lies beyond the end of the ${what} (${available} bytes)`);
    }
    if (available < needed) {
      throw new NiftiFormatProblem(
        `truncated: ${header.dims.slice(1, 4).join('×')} ${dtype.name} voxels from vox_offset ${header.voxOffset} ` +
          `need ${needed} bytes, the ${what} has ${available}`,
      );
    }
  }

  finish(): NiftiImage {
    if (!this.parsed) {
      throw new NiftiFormatProblem(
        `too short to be a NIfTI-1 file (${this.headerFill} bytes; the header alone is ${NIFTI1_HEADER_BYTES})`,
      );
    }
    const decoder = this.decoder!;
    if (!decoder.complete) this.checkLength(this.total);
    if (!decoder.complete) throw new Error('voxel decoder incomplete although the length check passed');
    const { header } = this.parsed;
    const shape = [header.dims[1], header.dims[2], header.dims[3]] as const;
    return { volume: makeVolume(shape, decoder.out, spacingOf(header), bestAffine(header)), header };
  }
}

function fileSystemReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'not a regular file';
  return `cannot open: ${err instanceof Error ? err.message : String(err)}`;
}

function readFailureReason(err: unknown): string {
  if (err instanceof NiftiFormatProblem) return err.message;
  const e = err as NodeJS.ErrnoException | undefined;
  if (e?.code === 'Z_BUF_ERROR') return 'truncated gzip data (unexpected end of file)';
  if (typeof e?.code === 'string' && e.code.startsWith('Z_')) return `corrupt gzip data (${e.message})`;
  if (typeof e?.code === 'string' && e.code.startsWith('E')) return fileSystemReason(err);
  return `cannot read: ${err instanceof Error ? err.message : String(err)}`;
}

// ---------------------------------------------------------------------------------------------
// Writing

export async function writeNifti(path: string, volume: Volume, options: NiftiWriteOptions = {}): Promise<void> {
  const dtype = DTYPES[options.dtype ?? 'float32'];
  if (!dtype) throw new RangeError(`writeNifti: unknown dtype ${String(options.dtype)}`);
  const [nx, ny, nz] = volume.shape;
  if (volume.data.length !== nx * ny * nz) {
    throw new RangeError(`writeNifti: ${volume.data.length} voxels do not fill shape ${volume.shape.join('×')}`);
  }
  if (nx > 32767 || ny > 32767 || nz > 32767) {
    throw new RangeError(`writeNifti: shape ${volume.shape.join('×')} exceeds NIfTI-1's 32767 per dimension`);
  }
  const level = options.gzipLevel ?? DEFAULT_GZIP_LEVEL;
  if (!Number.isInteger(level) || level < 1 || level > 9) throw new RangeError(`writeNifti: gzipLevel ${level} not in 1..9`);
  const scaling = writeScaling(dtype, options);
  const header = buildHeader(volume, dtype, scaling, options);
  const gzip = !/\.nii$/i.test(path);

  await withAtomicFile(path, async (tmp) => {
    const body = Readable.from(niftiChunks(header, volume.data, dtype, scaling), { objectMode: false });
    const sink = createWriteStream(tmp, { flags: 'wx' });
    if (gzip) await pipeline(body, createGzip({ level, chunkSize: IO_CHUNK_BYTES }), sink);
    else await pipeline(body, sink);
  });
}

function writeScaling(dtype: DtypeInfo, options: NiftiWriteOptions): Scaling | null {
  const defaultSlope = dtype.name === 'uint16' ? Math.fround(1 / 65535) : 1;
  // The header stores float32: encode with exactly the slope/inter a reader will see.
  const slope = Math.fround(options.slope ?? defaultSlope);
  const inter = Math.fround(options.inter ?? 0);
  if (!Number.isFinite(slope) || slope === 0 || !Number.isFinite(inter)) {
    throw new RangeError(`writeNifti: slope ${options.slope} / inter ${options.inter} must be finite, slope non-zero`);
  }
  return effectiveScaling(slope, inter);
}

function buildHeader(
  volume: Volume,
  dtype: DtypeInfo,
  scaling: Scaling | null,
  options: NiftiWriteOptions,
): NiftiHeaderInfo {
  const [nx, ny, nz] = volume.shape;
  const ref = options.reference;
  if (ref && (ref.dims[1] !== nx || ref.dims[2] !== ny || ref.dims[3] !== nz)) {
    throw new RangeError(
      `writeNifti: volume shape ${volume.shape.join('×')} differs from the reference ${ref.dims.slice(1, 4).join('×')}`,
    );
  }
  const common = {
    littleEndian: options.littleEndian ?? true,
    dims: [3, nx, ny, nz, 1, 1, 1, 1],
    datatypeCode: dtype.code,
    bitpix: dtype.bytes * 8,
    voxOffset: NIFTI1_VOX_OFFSET,
    sclSlope: scaling?.slope ?? 1,
    sclInter: scaling?.inter ?? 0,
    intentCode: 0,
    intentP: [0, 0, 0] as const,
    intentName: '',
    calMax: 0,
    calMin: 0,
  };
  if (ref) {
    return {
      ...ref,
      ...common,
      pixDims: ref.pixDims.slice(0, 8),
      descrip: options.description ?? ref.descrip,
    };
  }
  const qform = qformFromAffine(volume.affine, volume.spacing);
  const [sx, sy, sz] = volume.spacing;
  return {
    ...common,
    pixDims: [qform?.qfac ?? 1, sx, sy, sz, 1, 1, 1, 1],
    dimInfo: 0,
    sliceStart: 0,
    sliceEnd: 0,
    sliceCode: 0,
    sliceDuration: 0,
    toffset: 0,
    xyztUnits: 2, // mm, no time unit
    descrip: options.description ?? 'moodlsr',
    auxFile: '',
    qformCode: qform ? 2 : 0,
    sformCode: 2,
    quatern: qform?.quatern ?? [0, 0, 0],
    qoffset: qform?.qoffset ?? [0, 0, 0],
    srow: [volume.affine[0].slice(), volume.affine[1].slice(), volume.affine[2].slice()],
  };
}

function* niftiChunks(
  header: NiftiHeaderInfo,
  data: Float32Array,
  dtype: DtypeInfo,
  scaling: Scaling | null,
): Generator<Uint8Array> {
  yield serializeNiftiHeader(header);
  const direct = dtype.name === 'float32' && scaling === null && header.littleEndian === HOST_LITTLE_ENDIAN;
  for (let start = 0; start < data.length; start += ENCODE_CHUNK_VOXELS) {
    const end = Math.min(start + ENCODE_CHUNK_VOXELS, data.length);
    yield direct
      ? new Uint8Array(data.buffer, data.byteOffset + start * 4, (end - start) * 4)
      : encodeVoxels(data, start, end, dtype, scaling, header.littleEndian);
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Number of NaN and ±Infinity values. */
export function countNonFinite(data: ArrayLike<number>): number {
  let count = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) count++;
  }
  return count;
}

/** True for names ending in `.nii` or `.nii.gz` (any case). */
export function isNiftiFileName(name: string): boolean {
  return /\.nii(\.gz)?$/i.test(name);
}

/** The file name without its `.nii` / `.nii.gz` ending; other names come back unchanged. */
export function niftiCaseName(name: string): string {
  return name.replace(/\.nii(\.gz)?$/i, '');
}
