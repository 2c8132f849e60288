/**
 * Per-case intensity standardisation for the z-score baseline: quantile matching of a volume's
 * foreground intensities to a template distribution.
 *
 * The normal variants differ by a gamma (0.8–1.25) and a smooth bias field, so the same tissue has
 * different intensities in different volumes. A monotone map that sends the case's foreground
 * quantiles onto the template's undoes any global monotone change (a gamma exactly, up to noise);
 * a smooth local bias stays. Voxels at or below the foreground threshold (the empty background) keep
 * their value.
 */

/** `count` quantiles (levels 0, 1/(count − 1), …, 1) of the values above `threshold`; null when none. */
export function foregroundQuantiles(data: Float32Array, threshold: number, count: number): Float64Array | null {
  if (!Number.isInteger(count) || count < 2) throw new RangeError(`foregroundQuantiles: need at least 2 quantiles, got ${count}`);
  let lo = Infinity;
  let hi = -Infinity;
  let n = 0;
  for (const v of data) {
    if (!(v > threshold)) continue;
    n++;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (n === 0) return null;
  const out = new Float64Array(count);
  if (hi === lo) return out.fill(lo);
  // A fine histogram; within a bin the values are taken as spread evenly (error ≤ one bin width).
  const bins = 1 << 16;
  const counts = new Float64Array(bins);
  const scale = bins / (hi - lo);
  for (const v of data) if (v > threshold) counts[Math.min(bins - 1, Math.floor((v - lo) * scale))]!++;
  out[0] = lo;
  out[count - 1] = hi;
  let bin = 0;
  let below = 0; // values in bins before `bin`
  for (let q = 1; q < count - 1; q++) {
    const rank = (q / (count - 1)) * n;
    while (bin < bins - 1 && below + counts[bin]! < rank) below += counts[bin++]!;
    const inBin = counts[bin]!;
    const frac = inBin > 0 ? (rank - below) / inBin : 0;
    out[q] = lo + (bin + Math.min(1, Math.max(0, frac))) / scale;
  }
  return out;
}

/**
 * Fractional position of `v` in the non-decreasing knots `q` (0 … q.length − 1), clamped at the ends;
 * a value on a run of equal knots gets the middle of the run.
 */
export function quantilePosition(q: ArrayLike<number>, v: number): number {
  const last = q.length - 1;
  if (v <= q[0]!) return v === q[0]! ? (upperBound(q, v) - 1) / 2 : 0;
  if (v >= q[last]!) return v === q[last]! ? (lowerBound(q, v) + last) / 2 : last;
  const a = lowerBound(q, v); // first knot ≥ v
  const b = upperBound(q, v) - 1; // last knot ≤ v
  if (a <= b) return (a + b) / 2;
  const lo = b;
  return lo + (v - q[lo]!) / (q[lo + 1]! - q[lo]!);
}

function lowerBound(q: ArrayLike<number>, v: number): number {
  let lo = 0;
  let hi = q.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (q[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function upperBound(q: ArrayLike<number>, v: number): number {
  let lo = 0;
  let hi = q.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (q[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A copy of `data` whose foreground (values > threshold) is mapped piecewise-linearly from the case's
 * quantiles `from` onto the template's `to` (same length); values outside the case's range go to the
 * template's ends. A volume with no foreground is returned unchanged (copied).
 */
export function matchQuantiles(data: Float32Array, from: ArrayLike<number>, to: ArrayLike<number>, threshold: number): Float32Array {
  if (from.length !== to.length || from.length < 2) throw new RangeError(`matchQuantiles: ${from.length} case quantiles, ${to.length} template quantiles`);
  const out = Float32Array.from(data);
  // A lookup table over the case's range: the map is piecewise linear between table entries, which
  // are dense enough (4096) that the error is far below the intensity noise.
  const lo = from[0]!;
  const hi = from[from.length - 1]!;
  const last = to.length - 1;
  const mapOne = (v: number): number => {
    const p = quantilePosition(from, v);
    const i = Math.min(last - 1, Math.floor(p));
    const t = p - i;
    return to[i]! * (1 - t) + to[i + 1]! * t;
  };
  if (!(hi > lo)) {
    const target = mapOne(lo);
    for (let i = 0; i < out.length; i++) if (out[i]! > threshold) out[i] = target;
    return out;
  }
  const size = 4096;
  const table = new Float64Array(size + 1);
  for (let k = 0; k <= size; k++) table[k] = mapOne(lo + ((hi - lo) * k) / size);
  const scale = size / (hi - lo);
  // Where the case has a run of equal quantiles the map jumps; values exactly there are mapped directly.
  const jumps = new Set<number>();
  for (let k = 1; k < from.length; k++) if (from[k] === from[k - 1]) jumps.add(from[k]!);
  for (let i = 0; i < out.length; i++) {
    const v = out[i]!;
    if (!(v > threshold)) continue;
    if (jumps.size > 0 && jumps.has(v)) out[i] = mapOne(v);
    else if (v <= lo) out[i] = table[0]!;
    else if (v >= hi) out[i] = table[size]!;
    else {
      const x = (v - lo) * scale;
      const k = Math.floor(x);
      const t = x - k;
      out[i] = table[k]! * (1 - t) + table[k + 1]! * t;
    }
  }
  return out;
}

/** Element-wise mean of equally long quantile vectors: the template distribution. */
export function meanQuantiles(vectors: readonly ArrayLike<number>[]): Float32Array {
  if (vectors.length === 0) throw new RangeError('meanQuantiles: no quantile vector');
  const n = vectors[0]!.length;
  const out = new Float64Array(n);
  for (const v of vectors) {
    if (v.length !== n) throw new RangeError(`meanQuantiles: vectors of ${n} and ${v.length} quantiles`);
    for (let i = 0; i < n; i++) out[i]! += v[i]!;
  }
  return Float32Array.from(out, (s) => s / vectors.length);
}
