import type { Shape3 } from './volume.js';
import { type SliceStack, withSliceData } from './slices.js';

/**
 * Linear-interpolation taps along one axis for resizing inSize → outSize with half-pixel centres
 * (align-corners = false, as PyTorch F.interpolate(align_corners=False) and
 * tf.image.resizeBilinear(halfPixelCenters=true)):
 *   source coordinate s = (o + 0.5) · inSize / outSize − 0.5,
 * clamped to [0, inSize − 1] (edge clamping). Output o = lo[o]·(1 − w[o]) + hi[o]·w[o].
 * When inSize = outSize every weight is 0 and the resize is an exact copy.
 * No anti-aliasing when shrinking (same as the two references).
 */
export interface LinearTaps {
  readonly lo: Int32Array;
  readonly hi: Int32Array;
  readonly weightHi: Float64Array;
}

export function halfPixelTaps(inSize: number, outSize: number): LinearTaps {
  if (!Number.isInteger(inSize) || inSize < 1 || !Number.isInteger(outSize) || outSize < 1) {
    throw new RangeError(`resize sizes must be positive integers, got ${inSize} → ${outSize}`);
  }
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const weightHi = new Float64Array(outSize);
  const scale = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    const s = (o + 0.5) * scale - 0.5;
    if (s <= 0) {
      lo[o] = 0;
      hi[o] = 0;
    } else if (s >= inSize - 1) {
      lo[o] = inSize - 1;
      hi[o] = inSize - 1;
    } else {
      const base = Math.floor(s);
      lo[o] = base;
      hi[o] = base + 1;
      weightHi[o] = s - base;
    }
  }
  return { lo, hi, weightHi };
}

/**
 * Bilinear resize of one H × W image (W fastest) into `dst` (outH × outW, W fastest).
 * `src` and `dst` may be subarray views; they must not overlap.
 */
export function resizePlaneInto(
  src: Float32Array,
  inH: number,
  inW: number,
  dst: Float32Array,
  outH: number,
  outW: number,
  rowTaps: LinearTaps = halfPixelTaps(inH, outH),
  colTaps: LinearTaps = halfPixelTaps(inW, outW),
): void {
  if (src.length < inH * inW || dst.length < outH * outW) {
    throw new RangeError(`resize buffers too small for ${inH}×${inW} → ${outH}×${outW}`);
  }
  const { lo: c0, hi: c1, weightHi: cw } = colTaps;
  for (let oh = 0; oh < outH; oh++) {
    const r0 = rowTaps.lo[oh] * inW;
    const r1 = rowTaps.hi[oh] * inW;
    const rw = rowTaps.weightHi[oh];
    const out = oh * outW;
    for (let ow = 0; ow < outW; ow++) {
      const a = c0[ow];
      const b = c1[ow];
      const w = cw[ow];
      const top = src[r0 + a] * (1 - w) + src[r0 + b] * w;
      const bottom = src[r1 + a] * (1 - w) + src[r1 + b] * w;
      dst[out + ow] = top * (1 - rw) + bottom * rw;
    }
  }
}

/** Bilinear resize of `count` images of inH × inW (stored back to back) to outH × outW each. */
export function resizeBilinear(
  src: Float32Array,
  count: number,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
): Float32Array {
  if (src.length !== count * inH * inW) {
    throw new RangeError(`expected ${count}×${inH}×${inW} = ${count * inH * inW} values, got ${src.length}`);
  }
  const rowTaps = halfPixelTaps(inH, outH);
  const colTaps = halfPixelTaps(inW, outW);
  const dst = new Float32Array(count * outH * outW);
  const inPlane = inH * inW;
  const outPlane = outH * outW;
  for (let i = 0; i < count; i++) {
    resizePlaneInto(
      src.subarray(i * inPlane, (i + 1) * inPlane),
      inH,
      inW,
      dst.subarray(i * outPlane, (i + 1) * outPlane),
      outH,
      outW,
      rowTaps,
      colTaps,
    );
  }
  return dst;
}

/** Resize every slice of a stack to outH × outW (e.g. 160 × 160 for the model); positions and zs are kept. */
export function resizeStack(stack: SliceStack, outH: number, outW: number): SliceStack {
  const data = resizeBilinear(stack.data, stack.count, stack.height, stack.width, outH, outW);
  return withSliceData(stack, data, outH, outW);
}

/** The inverse of `resizeStack`: back to the volume's in-plane size (H = ny, W = nx). */
export function resizeStackToVolumePlane(stack: SliceStack, shape: Shape3): SliceStack {
  return resizeStack(stack, shape[1], shape[0]);
}
