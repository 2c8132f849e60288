/**
 * Exact IEEE 754 binary16 conversion (round to nearest, ties to even), bit-identical to numpy's
 * `float32_array.astype(np.float16)`, plus the clipped-to-[0, 1] bin index used by the MOOD pixel
 * evaluation (float16 first, then np.clip).
 */

/** Number of float16 bit patterns in [0, 1]: 0x0000 (0) … 0x3C00 (1). They sort like their values. */
export const FLOAT16_UNIT_BIN_COUNT = 0x3c01;
/** Bit pattern of float16 1.0, the largest bin. */
export const FLOAT16_ONE_BITS = 0x3c00;
const FLOAT16_INFINITY_BITS = 0x7c00;
const FLOAT16_QUIET_NAN_BITS = 0x7e00;

const F32_EXPONENT_ALL_ONES = 0x7f800000;
/** float32 65520 = largest float16 65504 plus half an ulp: from here on the result is infinity (tie → even = inf). */
const F32_FLOAT16_OVERFLOW = 0x477ff000;
/** float32 2^-14, the smallest normal float16. */
const F32_FLOAT16_MIN_NORMAL = 0x38800000;
/** float32 2^-25, half the smallest subnormal float16: at or below it the result is zero (tie → even = 0). */
const F32_FLOAT16_HALF_MIN_SUBNORMAL = 0x33000000;
/** Re-biasing the exponent from 127 to 15: subtract (127 − 15) << 23. */
const F32_TO_F16_EXPONENT_REBIAS = (127 - 15) << 23;
const F32_ONE = 0x3f800000;

/**
 * float16 bit pattern of a float32 given by its 32-bit pattern (signed or unsigned; kept in int32 arithmetic,
 * which V8 runs several times faster than uint32 patterns above 2^31).
 * NaN becomes the quiet NaN 0x7E00 with the input's sign (numpy keeps payload bits; every NaN is fatal to the
 * evaluation anyway).
 */
export function float32BitsToFloat16Bits(f32Bits: number): number {
  const sign = (f32Bits >> 16) & 0x8000;
  const magnitude = f32Bits & 0x7fffffff;
  if (magnitude >= F32_EXPONENT_ALL_ONES) {
    return sign | (magnitude > F32_EXPONENT_ALL_ONES ? FLOAT16_QUIET_NAN_BITS : FLOAT16_INFINITY_BITS);
  }
  if (magnitude >= F32_FLOAT16_OVERFLOW) return sign | FLOAT16_INFINITY_BITS;
  if (magnitude >= F32_FLOAT16_MIN_NORMAL) {
    // Drop 13 mantissa bits with round-half-even; a carry out of the mantissa correctly bumps the exponent.
    const lowestKeptBit = (magnitude >> 13) & 1;
    return sign | ((magnitude - F32_TO_F16_EXPONENT_REBIAS + 0x0fff + lowestKeptBit) >> 13);
  }
  if (magnitude > F32_FLOAT16_HALF_MIN_SUBNORMAL) {
    // Subnormal float16: value / 2^-24, i.e. the 24-bit significand shifted right by (126 − exponent).
    const exponent = magnitude >> 23;
    const significand = (magnitude & 0x7fffff) | 0x800000;
    const shift = 126 - exponent;
    const lowestKeptBit = (significand >> shift) & 1;
    return sign | ((significand + (1 << (shift - 1)) - 1 + lowestKeptBit) >> shift);
  }
  return sign;
}

const scratchFloat32 = new Float32Array(1);
const scratchInt32 = new Int32Array(scratchFloat32.buffer);

/** float16 bit pattern of `value` after rounding it to float32 first (the input is meant to be a float32 value). */
export function float32ToFloat16Bits(value: number): number {
  scratchFloat32[0] = value;
  return float32BitsToFloat16Bits(scratchInt32[0]);
}

/** Element-wise float16 bit patterns of a Float32Array. */
export function float32ArrayToFloat16Bits(values: Float32Array, out: Uint16Array = new Uint16Array(values.length)): Uint16Array {
  if (out.length !== values.length) {
    throw new RangeError(`output length ${out.length} differs from input length ${values.length}`);
  }
  const bits = float32ArrayBits(values);
  for (let i = 0; i < bits.length; i++) out[i] = float32BitsToFloat16Bits(bits[i]);
  return out;
}

/** The numeric value of a float16 bit pattern. */
export function float16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/**
 * The MOOD pixel-score bin of a float32 (given by its bits, signed or unsigned): convert to float16, then clip to [0, 1].
 * Returns the float16 pattern in 0 … 0x3C00, with every negative value (and −0) at bin 0 and everything above 1
 * (including +inf) at 0x3C00; returns −1 for NaN, which the caller must reject.
 */
export function clippedFloat16Bin(f32Bits: number): number {
  const magnitude = f32Bits & 0x7fffffff;
  if (magnitude > F32_EXPONENT_ALL_ONES) return -1;
  if ((f32Bits | 0) < 0) return 0;
  if (magnitude >= F32_ONE) return FLOAT16_ONE_BITS;
  // Below 1.0 in float32 can still round up to exactly 1.0 in float16, never beyond.
  return float32BitsToFloat16Bits(magnitude);
}

/** The raw 32-bit patterns of a Float32Array as signed integers, without copying. */
export function float32ArrayBits(values: Float32Array): Int32Array {
  return new Int32Array(values.buffer, values.byteOffset, values.length);
}
