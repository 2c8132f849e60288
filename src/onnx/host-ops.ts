/**
 * The ONNX operators that only move elements, on the host over float32 arrays in row-major order:
 * Transpose, Slice, Pad (constant) and Expand (numpy broadcasting). ./param-prelude.ts runs them
 * on index tables. Pure functions; each returns a new tensor.
 */
import type { HostTensor } from '../io/tensor-bundle.js';
import { sliceIndices } from './autodiff/shapes.js';

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) strides[i] = strides[i + 1]! * shape[i + 1]!;
  return strides;
}

/**
 * out[i] = data[Σ_k index_k · inStrides[k]] over the output grid `shape` in row-major order, with
 * `indexOf[k]` mapping an output index to the source index along k (identity where absent). Adjacent
 * axes that read contiguously are merged first, the row offsets are kept per level and updated only
 * where the counter moved, and contiguous rows are block copies.
 */
function gather(data: Float32Array, shape: readonly number[], inStrides: readonly number[], indexOf: readonly (readonly number[] | undefined)[] = []): Float32Array {
  const out = new Float32Array(sizeOf(shape));
  if (out.length === 0) return out;
  const dims: number[] = [];
  const strides: number[] = [];
  const maps: (readonly number[] | undefined)[] = [];
  shape.forEach((d, k) => {
    const map = indexOf[k];
    if (d === 1 && map === undefined) return;
    const last = dims.length - 1;
    if (last >= 0 && map === undefined && maps[last] === undefined && strides[last] === inStrides[k]! * d) {
      dims[last] = dims[last]! * d;
      strides[last] = inStrides[k]!;
    } else {
      dims.push(d);
      strides.push(inStrides[k]!);
      maps.push(map);
    }
  });
  if (dims.length === 0) {
    out[0] = data[indexOf.reduce((a, m, k) => a + (m === undefined ? 0 : m[0]! * inStrides[k]!), 0)]!;
    return out;
  }
  const offsets = dims.map((d, k) => Int32Array.from({ length: d }, (_, i) => (maps[k] === undefined ? i : maps[k]![i]!) * strides[k]!));
  const rows = dims.length - 1;
  const inner = offsets[rows]!;
  const width = dims[rows]!;
  const contiguous = maps[rows] === undefined && strides[rows] === 1;
  const counter = new Int32Array(rows);
  const bases = new Float64Array(rows + 1);
  for (let k = 0; k < rows; k++) bases[k + 1] = bases[k]! + offsets[k]![0]!;
  let o = 0;
  for (;;) {
    const base = bases[rows]!;
    if (contiguous) out.set(data.subarray(base + inner[0]!, base + inner[0]! + width), o);
    else for (let i = 0; i < width; i++) out[o + i] = data[base + inner[i]!]!;
    o += width;
    let k = rows - 1;
    while (k >= 0 && ++counter[k]! === dims[k]) counter[k--] = 0;
    if (k < 0) return out;
    for (let j = k; j < rows; j++) bases[j + 1] = bases[j]! + offsets[j]![counter[j]!]!;
  }
}

export function transpose(x: HostTensor, perm: readonly number[]): HostTensor {
  const strides = stridesOf(x.shape);
  const shape = perm.map((p) => x.shape[p]!);
  return { shape, values: gather(x.values, shape, perm.map((p) => strides[p]!)) };
}

export function slice(x: HostTensor, starts: readonly number[], ends: readonly number[], axes: readonly number[], steps: readonly number[]): HostTensor {
  const indexOf: (number[] | undefined)[] = x.shape.map(() => undefined);
  axes.forEach((axis, i) => {
    const a = axis < 0 ? axis + x.shape.length : axis;
    indexOf[a] = sliceIndices(x.shape[a]!, starts[i]!, ends[i]!, steps[i]!);
  });
  const shape = x.shape.map((d, k) => indexOf[k]?.length ?? d);
  return { shape, values: gather(x.values, shape, stridesOf(x.shape), indexOf) };
}

/** Constant padding; `pads` = [begin₀ … begin_r, end₀ … end_r], negative entries crop. */
export function pad(x: HostTensor, pads: readonly number[], value = 0): HostTensor {
  const rank = x.shape.length;
  const shape = x.shape.map((d, k) => d + pads[k]! + pads[k + rank]!);
  const values = new Float32Array(sizeOf(shape)).fill(value);
  const outStrides = stridesOf(shape);
  const inStrides = stridesOf(x.shape);
  // Copy the kept part of each input row into place.
  const counter = new Array<number>(rank).fill(0);
  if (sizeOf(x.shape) === 0) return { shape, values };
  for (;;) {
    let inside = true;
    let src = 0;
    let dst = 0;
    for (let k = 0; k < rank - 1; k++) {
      const d = counter[k]! + pads[k]!;
      if (d < 0 || d >= shape[k]!) inside = false;
      src += counter[k]! * inStrides[k]!;
      dst += d * outStrides[k]!;
    }
    if (inside) {
      const width = x.shape[rank - 1]!;
      const lo = Math.max(0, -pads[rank - 1]!);
      const hi = Math.min(width, shape[rank - 1]! - pads[rank - 1]!);
      for (let i = lo; i < hi; i++) values[dst + i + pads[rank - 1]!] = x.values[src + i]!;
    }
    let k = rank - 2;
    while (k >= 0 && ++counter[k]! === x.shape[k]) counter[k--] = 0;
    if (k < 0) return { shape, values };
  }
}

/** Strides of x read as a broadcast to `shape` (0 along broadcast axes). */
function broadcastStrides(x: readonly number[], shape: readonly number[]): number[] {
  const strides = stridesOf(x);
  const lead = shape.length - x.length;
  return shape.map((d, k) => {
    if (k < lead) return 0;
    const own = x[k - lead]!;
    if (own !== d && own !== 1) throw new Error(`host ops: [${x.join(',')}] does not broadcast to [${shape.join(',')}]`);
    return own === 1 ? 0 : strides[k - lead]!;
  });
}

function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  return Array.from({ length: rank }, (_, i) => {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    return da === 1 ? db : da;
  });
}

export function expand(x: HostTensor, shape: readonly number[]): HostTensor {
  const out = broadcastShape(x.shape, shape);
  return { shape: out, values: gather(x.values, out, broadcastStrides(x.shape, out)) };
}
