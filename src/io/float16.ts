/**
 * IEEE 754 binary16 ("half") conversions in plain TypeScript (Node 20 has no Float16Array).
 *
 *   float32ToFloat16Bits(x)   float32 value → half bit pattern, round to nearest, ties to even;
 *                             subnormals kept, overflow → ±Inf, NaN → a quiet NaN, -0 → -0
 *   float16BitsToFloat32(h)   half bit pattern → its value, exactly (every half is a float32)
 *
 * float32ToFloat16Bits reads its input as a float32 (a JS number is first stored in a Float32Array):
 * the bundles hold float32 values, and rounding those once to half is what a float32 → float16 cast does.
 */

/** Largest finite half value. */
export const FLOAT16_MAX = 65504;
/** Smallest positive normal half value, 2^-14. */
export const FLOAT16_MIN_NORMAL = 2 ** -14;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Rounds `q + remainder / 2^shift` to nearest, ties to even, where `remainder < 2^shift`. */
function roundHalfEven(q: number, remainder: number, shift: number): number {
  const half = 2 ** (shift - 1);
  return remainder > half || (remainder === half && (q & 1) === 1) ? q + 1 : q;
}

export function float32ToFloat16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) {
    // Inf stays Inf; NaN keeps the top of its payload and is made quiet (never becomes Inf).
    return mantissa === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mantissa >>> 13);
  }
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Half subnormal: value / 2^-24 = significand (24 bits with the implicit 1) >> shift.
    // A float32 subnormal (exponent 0) is far below 2^-25 and falls in the `shift > 24` branch.
    const shift = 14 - halfExponent;
    if (shift > 24) return sign;
    const significand = mantissa | 0x800000;
    const q = significand >>> shift;
    // A carry into 0x400 gives the smallest normal, which is the right encoding.
    return sign | roundHalfEven(q, significand & ((1 << shift) - 1), shift);
  }
  // Normal: a carry out of the mantissa bumps the exponent, and past 65504 gives Inf (0x7c00), as IEEE rounds.
  const q = (halfExponent << 10) | (mantissa >>> 13);
  return sign | roundHalfEven(q, mantissa & 0x1fff, 13);
}

export function float16BitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

let decodeTable: Float32Array | null = null;

/** The float32 value of every half pattern (256 KiB, built on first use). */
function float16Table(): Float32Array {
  if (decodeTable === null) {
    decodeTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) decodeTable[h] = float16BitsToFloat32(h);
  }
  return decodeTable;
}

/** Reads `count` little-endian halves at `byteOffset` of `view` into float32 values. */
export function readFloat16Array(view: DataView, byteOffset: number, count: number): Float32Array {
  const table = float16Table();
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = table[view.getUint16(byteOffset + 2 * i, true)]!;
  return out;
}

/** Writes `values` as little-endian halves at `byteOffset` of `view`; range checks are the caller's. */
export function writeFloat16Array(view: DataView, byteOffset: number, values: Float32Array): void {
  for (let i = 0; i < values.length; i++) view.setUint16(byteOffset + 2 * i, float32ToFloat16Bits(values[i]!), true);
}

/** Index of the first finite value with |x| > 65504 (it would become ±Inf as a half), or -1. */
export function firstOutOfFloat16Range(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v) && Math.abs(v) > FLOAT16_MAX) return i;
  }
  return -1;
}

/** Each value rounded to the nearest half and widened back (what a float16 bundle gives on load). */
export function roundToFloat16(values: Float32Array): Float32Array {
  const table = float16Table();
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = table[float32ToFloat16Bits(values[i]!)]!;
  return out;
}
