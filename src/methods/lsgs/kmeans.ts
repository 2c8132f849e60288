/**
 * k-means over row vectors (pure functions over typed arrays, float64 accumulation), for the LSGS
 * aggregated codebook: the k centres of the VQ-VAE's training encodings become its new codebook.
 *
 * Start: k-means++ (Arthur & Vassilvitskii 2007): the first centre uniformly, each next one with
 * probability ∝ squared distance to the nearest centre chosen so far, all draws from the given Rng.
 * Then Lloyd iterations (assign to the nearest centre, move each centre to its members' mean) until
 * no assignment changes, the objective improves by less than `tolerance` (relative), or `iterations`.
 * An empty cluster takes the point currently farthest from its centre (deterministic), which can
 * only lower the objective. Each Lloyd step does not increase the objective.
 */
import type { Rng } from '../../engine/random.js';

export interface KMeansOptions {
  readonly k: number;
  readonly rng: Rng;
  /** Most Lloyd iterations (default 25). */
  readonly iterations?: number;
  /** Stop when the objective falls by less than this fraction in an iteration (default 1e-4). */
  readonly tolerance?: number;
}

export interface KMeansResult {
  /** k × d. */
  readonly centroids: Float32Array;
  /** Cluster of each point. */
  readonly assignments: Int32Array;
  /** Σ squared distance of each point to its centre, after the k-means++ start and after each iteration. */
  readonly objective: number[];
  readonly iterations: number;
}

function squaredDistance(data: Float32Array, i: number, centres: Float32Array, c: number, d: number): number {
  let s = 0;
  const a = i * d;
  const b = c * d;
  for (let j = 0; j < d; j++) {
    const diff = data[a + j]! - centres[b + j]!;
    s += diff * diff;
  }
  return s;
}

function checkShape(data: Float32Array, d: number, k: number): number {
  if (!Number.isInteger(d) || d < 1 || data.length % d !== 0) throw new RangeError(`k-means: ${data.length} values are not rows of ${d}`);
  const n = data.length / d;
  if (!Number.isInteger(k) || k < 1 || k > n) throw new RangeError(`k-means: k = ${k} needs 1 ≤ k ≤ ${n} points`);
  return n;
}

/** k-means++ centres (k × d) of the n = data.length / d points. */
export function kmeansPlusPlus(data: Float32Array, d: number, k: number, rng: Rng): Float32Array {
  const n = checkShape(data, d, k);
  const centres = new Float32Array(k * d);
  const nearest = new Float64Array(n).fill(Infinity);
  let pick = rng.int(n);
  for (let c = 0; c < k; c++) {
    centres.set(data.subarray(pick * d, (pick + 1) * d), c * d);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const dist = squaredDistance(data, i, centres, c, d);
      if (dist < nearest[i]!) nearest[i] = dist;
      total += nearest[i]!;
    }
    if (c === k - 1) break;
    if (total === 0) {
      // Fewer distinct points than k: repeat one (Lloyd will re-seed the empty clusters).
      pick = rng.int(n);
      continue;
    }
    const target = rng.next() * total;
    let acc = 0;
    pick = n - 1;
    for (let i = 0; i < n; i++) {
      acc += nearest[i]!;
      if (acc > target && nearest[i]! > 0) {
        pick = i;
        break;
      }
    }
  }
  return centres;
}

/** Nearest centre of every point and the objective Σ min squared distance. */
export function assignToNearest(data: Float32Array, d: number, centres: Float32Array): { assignments: Int32Array; distances: Float64Array; objective: number } {
  const n = data.length / d;
  const k = centres.length / d;
  const assignments = new Int32Array(n);
  const distances = new Float64Array(n);
  let objective = 0;
  for (let i = 0; i < n; i++) {
    let best = Infinity;
    let arg = 0;
    for (let c = 0; c < k; c++) {
      const dist = squaredDistance(data, i, centres, c, d);
      if (dist < best) {
        best = dist;
        arg = c;
      }
    }
    assignments[i] = arg;
    distances[i] = best;
    objective += best;
  }
  return { assignments, distances, objective };
}

export function kmeans(data: Float32Array, d: number, opts: KMeansOptions): KMeansResult {
  const n = checkShape(data, d, opts.k);
  const k = opts.k;
  const maxIterations = opts.iterations ?? 25;
  const tolerance = opts.tolerance ?? 1e-4;
  const centres = kmeansPlusPlus(data, d, k, opts.rng);
  let current = assignToNearest(data, d, centres);
  const objective = [current.objective];
  let iterations = 0;
  for (let it = 0; it < maxIterations; it++) {
    const sums = new Float64Array(k * d);
    const counts = new Int32Array(k);
    for (let i = 0; i < n; i++) {
      const c = current.assignments[i]!;
      counts[c]++;
      for (let j = 0; j < d; j++) sums[c * d + j] += data[i * d + j]!;
    }
    const taken = new Set<number>();
    for (let c = 0; c < k; c++) {
      if (counts[c]! > 0) {
        for (let j = 0; j < d; j++) centres[c * d + j] = sums[c * d + j]! / counts[c]!;
        continue;
      }
      let far = -1;
      for (let i = 0; i < n; i++) if (!taken.has(i) && (far < 0 || current.distances[i]! > current.distances[far]!)) far = i;
      taken.add(far);
      centres.set(data.subarray(far * d, (far + 1) * d), c * d);
    }
    const next = assignToNearest(data, d, centres);
    iterations = it + 1;
    objective.push(next.objective);
    const unchanged = next.assignments.every((a, i) => a === current.assignments[i]);
    const improvement = current.objective - next.objective;
    current = next;
    if (unchanged || improvement <= tolerance * Math.max(current.objective, 1e-30)) break;
  }
  return { centroids: centres, assignments: current.assignments, objective, iterations };
}

/** Number of distinct values in 0…k−1 that occur in `assignments`. */
export function usedClusters(assignments: Int32Array, k: number): number {
  const seen = new Uint8Array(k);
  for (const a of assignments) seen[a] = 1;
  return seen.reduce((s, v) => s + v, 0);
}
