/**
 * A per-place reference of a stack map over normal volumes: what a method scores on normal anatomy,
 * place by place. DISYRE uses it for its residual (a restoration network that is not perfect leaves
 * residuals at the same structures of every normal case: edges, sulci, the skull), LSR for the prior's
 * code NLLs (some places hold unlikely codes in every normal volume). The raw map ranks those places
 * above a faint anomaly elsewhere. The reference holds, per place, the mean μ and the standard
 * deviation σ of the map over normal volumes; `standardisedMap` gives z = max(0, (m − μ) / (σ + floor))
 * — the excess over what is normal *there*, in units of how much it varies there.
 *
 * Places are a fixed grid over the stack's plane and the normalised slice position (the stack's
 * `positions`, so any depth and any `every` share one reference): in-plane the stack's own pixels
 * averaged in blocks down to `grid[0] × grid[1]`, along z `grid[2]` bins filled with linear (tent)
 * weights. Values between cell centres are interpolated trilinearly. Pure functions over typed arrays;
 * `ReferenceAccumulator` adds one normal volume's map at a time (flat memory).
 */
import type { SliceStack } from '../volume/slices.js';

export type ReferenceGrid = readonly [gx: number, gy: number, gz: number];

/** Most in-plane cells per side and position bins: the 128² network plane → 64 × 64 × 32 cells, 0.5 MB as float16. */
export const REFERENCE_MAX_CELLS = 64;
export const REFERENCE_BINS = 32;

/** The default grid of a height × width plane: halve the side (while it divides) until at most 64 cells. */
export function defaultReferenceGrid(height: number, width: number): ReferenceGrid {
  const cells = (side: number): number => {
    let n = side;
    while (n > REFERENCE_MAX_CELLS && n % 2 === 0) n /= 2;
    return n;
  };
  return [cells(width), cells(height), REFERENCE_BINS];
}

export interface ResidualReference {
  readonly grid: ReferenceGrid;
  /** Mean of the normal maps per cell, x fastest then y then z (gx · gy · gz values). */
  readonly mean: Float32Array;
  /** Their standard deviation per cell (over volumes and the slices of the bin). */
  readonly sd: Float32Array;
  /** Normal volumes it was built from. */
  readonly volumes: number;
}

type StackGeometry = Pick<SliceStack, 'count' | 'height' | 'width' | 'positions'>;

/** Continuous cell coordinate of a slice position p ∈ [−0.5, 0.5] on `bins` bins (cell centres at integers). */
function binCoordinate(position: number, bins: number): number {
  return (position + 0.5) * bins - 0.5;
}

/** Sums Σw·m, Σw·m², Σw per (position bin, stack pixel) over the maps of normal volumes. */
export class ReferenceAccumulator {
  private readonly sum: Float64Array;
  private readonly sumSq: Float64Array;
  private readonly weight: Float64Array;
  private added = 0;

  constructor(
    readonly height: number,
    readonly width: number,
    readonly grid: ReferenceGrid = defaultReferenceGrid(height, width),
  ) {
    const [gx, gy, gz] = grid;
    if (![gx, gy, gz].every((n) => Number.isInteger(n) && n >= 1)) throw new RangeError(`reference grid must be positive integers, got ${grid.join('×')}`);
    if (height % gy !== 0 || width % gx !== 0) throw new RangeError(`a ${width}×${height} plane does not divide into ${gx}×${gy} cells`);
    const n = gz * height * width;
    this.sum = new Float64Array(n);
    this.sumSq = new Float64Array(n);
    this.weight = new Float64Array(n);
  }

  /** Adds one normal volume's stack map (count × height × width, same plane as the constructor's). */
  add(map: Float32Array, stack: StackGeometry): this {
    const plane = this.height * this.width;
    if (stack.height !== this.height || stack.width !== this.width) throw new RangeError(`stack plane ${stack.width}×${stack.height}, reference plane ${this.width}×${this.height}`);
    if (map.length !== stack.count * plane) throw new RangeError(`map has ${map.length} values, the stack ${stack.count * plane}`);
    const gz = this.grid[2];
    for (let s = 0; s < stack.count; s++) {
      const fz = Math.min(gz - 1, Math.max(0, binCoordinate(stack.positions[s]!, gz)));
      const z0 = Math.floor(fz);
      const w1 = fz - z0;
      const parts: [number, number][] = w1 > 0 ? [[z0, 1 - w1], [z0 + 1, w1]] : [[z0, 1]];
      for (const [bin, w] of parts) {
        const base = bin * plane;
        for (let p = 0; p < plane; p++) {
          const v = map[s * plane + p]!;
          this.sum[base + p] += w * v;
          this.sumSq[base + p] += w * v * v;
          this.weight[base + p] += w;
        }
      }
    }
    this.added++;
    return this;
  }

  /** μ and σ per pixel and bin, then averaged over each cell's in-plane block. */
  result(): ResidualReference {
    if (this.added === 0) throw new RangeError('a residual reference needs at least one normal volume');
    const [gx, gy, gz] = this.grid;
    const bx = this.width / gx;
    const by = this.height / gy;
    const plane = this.height * this.width;
    const mean = new Float32Array(gx * gy * gz);
    const sd = new Float32Array(gx * gy * gz);
    for (let z = 0; z < gz; z++) {
      for (let y = 0; y < this.height; y++) {
        for (let x = 0; x < this.width; x++) {
          const i = z * plane + y * this.width + x;
          const w = this.weight[i]!;
          const m = w > 0 ? this.sum[i]! / w : 0;
          const s = w > 0 ? Math.sqrt(Math.max(0, this.sumSq[i]! / w - m * m)) : 0;
          const cell = z * gx * gy + Math.floor(y / by) * gx + Math.floor(x / bx);
          mean[cell] += m / (bx * by);
          sd[cell] += s / (bx * by);
        }
      }
    }
    return { grid: this.grid, mean, sd, volumes: this.added };
  }
}

/** Clamped linear taps of `n` output pixels on `cells` cell centres: lower index, upper index, upper weight. */
function taps(n: number, cells: number): { lo: Int32Array; hi: Int32Array; w: Float32Array } {
  const lo = new Int32Array(n);
  const hi = new Int32Array(n);
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const c = Math.min(cells - 1, Math.max(0, ((i + 0.5) * cells) / n - 0.5));
    lo[i] = Math.floor(c);
    hi[i] = Math.min(cells - 1, lo[i]! + 1);
    w[i] = c - lo[i]!;
  }
  return { lo, hi, w };
}

/** μ and σ of the reference at every pixel of a stack (trilinear between cell centres, clamped at the borders). */
export function referenceOnStack(ref: ResidualReference, stack: StackGeometry): { mean: Float32Array; sd: Float32Array } {
  const [gx, gy, gz] = ref.grid;
  const { height, width, count } = stack;
  const plane = height * width;
  const cells = gx * gy;
  const mean = new Float32Array(count * plane);
  const sd = new Float32Array(count * plane);
  const tx = taps(width, gx);
  const ty = taps(height, gy);
  // the two position bins blended first (one grid plane per slice), then bilinear in-plane
  const planeMean = new Float32Array(cells);
  const planeSd = new Float32Array(cells);
  for (let s = 0; s < count; s++) {
    const fz = Math.min(gz - 1, Math.max(0, binCoordinate(stack.positions[s]!, gz)));
    const z0 = Math.floor(fz);
    const z1 = Math.min(gz - 1, z0 + 1);
    const wz = fz - z0;
    for (let c = 0; c < cells; c++) {
      planeMean[c] = (1 - wz) * ref.mean[z0 * cells + c]! + wz * ref.mean[z1 * cells + c]!;
      planeSd[c] = (1 - wz) * ref.sd[z0 * cells + c]! + wz * ref.sd[z1 * cells + c]!;
    }
    for (let y = 0; y < height; y++) {
      const r0 = ty.lo[y]! * gx;
      const r1 = ty.hi[y]! * gx;
      const wy = ty.w[y]!;
      const row = s * plane + y * width;
      for (let x = 0; x < width; x++) {
        const x0 = tx.lo[x]!;
        const x1 = tx.hi[x]!;
        const wx = tx.w[x]!;
        const top = (1 - wx) * planeMean[r0 + x0]! + wx * planeMean[r0 + x1]!;
        const bottom = (1 - wx) * planeMean[r1 + x0]! + wx * planeMean[r1 + x1]!;
        mean[row + x] = (1 - wy) * top + wy * bottom;
        const topSd = (1 - wx) * planeSd[r0 + x0]! + wx * planeSd[r0 + x1]!;
        const bottomSd = (1 - wx) * planeSd[r1 + x0]! + wx * planeSd[r1 + x1]!;
        sd[row + x] = (1 - wy) * topSd + wy * bottomSd;
      }
    }
  }
  return { mean, sd };
}

/**
 * max(0, (m − μ) / (σ + floor)) mapped into [0, 1) by z ↦ u / (1 + u), u = z / scale (monotone, so
 * rankings are those of z; the MOOD evaluation clips pixel scores to [0, 1]).
 */
export function standardisedMap(map: Float32Array, mean: Float32Array, sd: Float32Array, floor: number, scale: number): Float32Array {
  if (map.length !== mean.length || map.length !== sd.length) throw new RangeError(`map ${map.length}, reference ${mean.length}/${sd.length} values`);
  if (!(floor > 0) || !(scale > 0)) throw new RangeError(`floor and scale must be positive, got ${floor}, ${scale}`);
  const out = new Float32Array(map.length);
  for (let i = 0; i < map.length; i++) {
    const u = Math.max(0, (map[i]! - mean[i]!) / (sd[i]! + floor)) / scale;
    out[i] = u / (1 + u);
  }
  return out;
}
