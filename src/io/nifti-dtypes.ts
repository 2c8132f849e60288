/**
 * NIfTI-1 voxel datatypes this package reads and writes, and the conversions between their raw
 * bytes and Float32Array voxels.
 *
 * Supported: uint8, int8, int16, uint16, int32, uint32, float32, float64 (both byte orders).
 * Refused (the reader gives an InputFileError naming the type): binary, complex64/128/256,
 * RGB24, RGBA32, int64, uint64, float128 — none of them is a scalar intensity image that fits a
 * Float32Array without a policy choice, and none occurs in MOOD data.
 */

export type NiftiDtype = 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';

type TypedArrayCtor =
  | Uint8ArrayConstructor
  | Int8ArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor;

export interface DtypeInfo {
  readonly name: NiftiDtype;
  /** NIfTI-1 `datatype` code. */
  readonly code: number;
  readonly bytes: 1 | 2 | 4 | 8;
  readonly array: TypedArrayCtor;
  /** Integer types round and clamp to [min, max] on writing. */
  readonly integer: boolean;
  readonly min: number;
  readonly max: number;
}

export const DTYPES: Readonly<Record<NiftiDtype, DtypeInfo>> = {
  uint8: { name: 'uint8', code: 2, bytes: 1, array: Uint8Array, integer: true, min: 0, max: 255 },
  int8: { name: 'int8', code: 256, bytes: 1, array: Int8Array, integer: true, min: -128, max: 127 },
  int16: { name: 'int16', code: 4, bytes: 2, array: Int16Array, integer: true, min: -32768, max: 32767 },
  uint16: { name: 'uint16', code: 512, bytes: 2, array: Uint16Array, integer: true, min: 0, max: 65535 },
  int32: { name: 'int32', code: 8, bytes: 4, array: Int32Array, integer: true, min: -2147483648, max: 2147483647 },
  uint32: { name: 'uint32', code: 768, bytes: 4, array: Uint32Array, integer: true, min: 0, max: 4294967295 },
  float32: { name: 'float32', code: 16, bytes: 4, array: Float32Array, integer: false, min: -Infinity, max: Infinity },
  float64: { name: 'float64', code: 64, bytes: 8, array: Float64Array, integer: false, min: -Infinity, max: Infinity },
};

const UNSUPPORTED_NAMES: Readonly<Record<number, string>> = {
  0: 'unknown (0)',
  1: 'binary',
  32: 'complex64',
  128: 'RGB24',
  1024: 'int64',
  1280: 'uint64',
  1536: 'float128',
  1792: 'complex128',
  2048: 'complex256',
  2304: 'RGBA32',
};

export function dtypeForCode(code: number): DtypeInfo | undefined {
  return Object.values(DTYPES).find((d) => d.code === code);
}

/** A readable name for a datatype code, supported or not. */
export function describeDatatypeCode(code: number): string {
  return dtypeForCode(code)?.name ?? UNSUPPORTED_NAMES[code] ?? `unknown code ${code}`;
}

export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses the byte order of every `width`-byte element of `bytes` in place. */
export function swapBytes(bytes: Uint8Array, width: 1 | 2 | 4 | 8): void {
  if (width === 1) return;
  const half = width >> 1;
  for (let start = 0; start + width <= bytes.length; start += width) {
    for (let k = 0; k < half; k++) {
      const a = start + k;
      const b = start + width - 1 - k;
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

/** Raw → value scaling of the NIfTI standard: value = raw * slope + inter. */
export interface Scaling {
  readonly slope: number;
  readonly inter: number;
}

/**
 * The scaling a header asks for, or null for none. Per the standard a slope of 0 means "no
 * scaling"; a non-finite slope is treated the same (as nibabel does), and a non-finite
 * intercept with a valid slope as 0.
 */
export function effectiveScaling(slope: number, inter: number): Scaling | null {
  if (!Number.isFinite(slope) || slope === 0) return null;
  const i = Number.isFinite(inter) ? inter : 0;
  if (slope === 1 && i === 0) return null;
  return { slope, inter: i };
}

/**
 * Streams raw voxel bytes (in any chunking) into a Float32Array, applying byte order and
 * scaling on the way, so no intermediate copy of the whole image is ever held.
 */
export class VoxelDecoder {
  private filled = 0;
  private readonly carry: Uint8Array;
  private carryLength = 0;
  private scratch = new ArrayBuffer(0);

  constructor(
    readonly out: Float32Array,
    private readonly dtype: DtypeInfo,
    private readonly littleEndian: boolean,
    private readonly scaling: Scaling | null,
  ) {
    this.carry = new Uint8Array(dtype.bytes);
  }

  get voxelsDone(): number {
    return this.filled;
  }

  get complete(): boolean {
    return this.filled === this.out.length;
  }

  /** Consumes as many bytes of `chunk` as still needed; returns how many it used. */
  push(chunk: Uint8Array): number {
    const width = this.dtype.bytes;
    let pos = 0;
    if (this.carryLength > 0) {
      const take = Math.min(width - this.carryLength, chunk.length);
      this.carry.set(chunk.subarray(0, take), this.carryLength);
      this.carryLength += take;
      pos = take;
      if (this.carryLength < width) return pos;
      this.decode(this.carry, 1);
      this.carryLength = 0;
    }
    const wanted = this.out.length - this.filled;
    const whole = Math.min(Math.floor((chunk.length - pos) / width), wanted);
    if (whole > 0) {
      this.decode(chunk.subarray(pos, pos + whole * width), whole);
      pos += whole * width;
    }
    if (this.filled < this.out.length) {
      const rest = Math.min(chunk.length - pos, width - 1);
      this.carry.set(chunk.subarray(pos, pos + rest), 0);
      this.carryLength = rest;
      pos += rest;
    }
    return pos;
  }

  private decode(bytes: Uint8Array, count: number): void {
    // Copy into an aligned scratch buffer: chunk offsets are arbitrary, typed views need alignment.
    const byteLength = count * this.dtype.bytes;
    if (this.scratch.byteLength < byteLength) this.scratch = new ArrayBuffer(byteLength);
    const aligned = new Uint8Array(this.scratch, 0, byteLength);
    aligned.set(bytes.subarray(0, byteLength));
    if (this.littleEndian !== HOST_LITTLE_ENDIAN) swapBytes(aligned, this.dtype.bytes);
    const raw = new this.dtype.array(this.scratch, 0, count);
    const out = this.out;
    const base = this.filled;
    if (this.scaling === null) {
      out.set(raw, base);
    } else {
      const { slope, inter } = this.scaling;
      for (let i = 0; i < count; i++) out[base + i] = raw[i] * slope + inter;
    }
    this.filled += count;
  }
}

/**
 * Encodes `values[start, end)` as raw bytes of `dtype` in the given byte order:
 * raw = (value - inter) / slope; integer types round half up, clamp to their range and store
 * NaN as 0; float types store the quotient as is.
 */
export function encodeVoxels(
  values: Float32Array,
  start: number,
  end: number,
  dtype: DtypeInfo,
  scaling: Scaling | null,
  littleEndian: boolean,
): Uint8Array {
  const count = end - start;
  const buffer = new ArrayBuffer(count * dtype.bytes);
  const raw = new dtype.array(buffer);
  const source = values.subarray(start, end);
  if (!dtype.integer) {
    if (scaling === null) {
      raw.set(source);
    } else {
      const { slope, inter } = scaling;
      for (let i = 0; i < count; i++) raw[i] = (source[i] - inter) / slope;
    }
  } else {
    const slope = scaling?.slope ?? 1;
    const inter = scaling?.inter ?? 0;
    const { min, max } = dtype;
    for (let i = 0; i < count; i++) {
      const r = Math.round((source[i] - inter) / slope);
      raw[i] = r > max ? max : r < min ? min : r === r ? r : 0;
    }
  }
  const bytes = new Uint8Array(buffer);
  if (littleEndian !== HOST_LITTLE_ENDIAN) swapBytes(bytes, dtype.bytes);
  return bytes;
}
