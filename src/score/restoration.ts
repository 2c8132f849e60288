/**
 * Latent space restoration (Naval Marimont & Tarroni 2021): S copies of every slice's code map; in
 * raster order over positions p, where a copy's NLL at p (given its current, partly resampled prefix)
 * exceeds λp, the code at p is replaced by a sample from p(· | prefix).
 *
 * Randomness: one uniform per (slice, copy, position), drawn up front from
 * createRng(`${seed}:${sliceKey}:${copy}`), and inverse-CDF sampling on the softmax computed in JS
 * (float64). The draws therefore do not depend on the backend, on the batch layout, or on which other
 * slices are restored in the same call (a slice is named by its key, e.g. its z index).
 *
 * Two loops give the same codes:
 * - 'naive': the paper's loop, one prior pass over every copy at every position;
 * - 'shortcut' (default), exact: the logits of a map at positions ≥ p depend only on its codes before
 *   p, so cached logits stay valid until the map changes. Copies with identical code maps are kept as
 *   one group (all S copies start identical; a group splits only when its copies draw different
 *   codes), and at position p only groups whose codes changed since their last pass are run through
 *   the prior, batched across slices. A group whose NLL at p is ≤ λp is not touched; a resampled copy
 *   that draws the code it already had does not count as changed. Nothing is recomputed for a slice
 *   none of whose copies changed.
 */
import { createRng } from '../engine/random.js';
import type { LsrEngine } from '../methods/lsr/engine.js';
import { latentGeometry } from '../methods/lsr/networks.js';

export interface RestorationOptions {
  /** S: copies per slice (the paper: 15). */
  readonly copies: number;
  /** λp: NLL threshold (nats) above which a code is resampled. */
  readonly lambdaP: number;
  readonly seed: number;
  /** One key per slice naming its random stream (the volume z index), so chunking changes nothing. */
  readonly sliceKeys: readonly number[];
  readonly mode?: 'shortcut' | 'naive';
  /** Most code maps per prior forward pass (default: the engine's `priorBatch`). */
  readonly maxBatch?: number;
}

export interface RestorationStats {
  readonly slices: number;
  readonly copies: number;
  readonly positions: number;
  /** Copy-passes of the naive loop: positions × slices × copies. */
  readonly naiveCopyPasses: number;
  /** Code maps actually run through the prior (a group of identical copies counts once). */
  readonly mapPasses: number;
  /** Prior forward calls (batches). */
  readonly priorCalls: number;
  /** (copy, position) pairs whose NLL exceeded λp and were resampled. */
  readonly resampled: number;
  /** Of those, how many drew a different code. */
  readonly changed: number;
  readonly priorSeconds: number;
  readonly seconds: number;
}

export interface RestorationResult {
  /** Restored code maps, int32 [slices, copies, h, w] flattened (copy j of slice n at (n·S + j)·h·w). */
  readonly codes: Int32Array;
  readonly stats: RestorationStats;
}

/** −log softmax(row)[code] in float64. */
export function nllOfCode(logits: Float32Array, offset: number, k: number, code: number): number {
  let max = -Infinity;
  for (let i = 0; i < k; i++) if (logits[offset + i] > max) max = logits[offset + i];
  let total = 0;
  for (let i = 0; i < k; i++) total += Math.exp(logits[offset + i] - max);
  return max + Math.log(total) - logits[offset + code];
}

/** Inverse-CDF sample from softmax(row) with the uniform `u` ∈ [0, 1), in float64. */
export function sampleCode(logits: Float32Array, offset: number, k: number, u: number): number {
  let max = -Infinity;
  for (let i = 0; i < k; i++) if (logits[offset + i] > max) max = logits[offset + i];
  let total = 0;
  for (let i = 0; i < k; i++) total += Math.exp(logits[offset + i] - max);
  const target = u * total;
  let cumulative = 0;
  let last = 0;
  for (let i = 0; i < k; i++) {
    const w = Math.exp(logits[offset + i] - max);
    if (w > 0) last = i;
    cumulative += w;
    if (cumulative > target) return i;
  }
  return last;
}

/** Uniforms [slices, copies, positions]: slice n's stream depends only on (seed, sliceKeys[n], copy). */
export function restorationUniforms(seed: number, sliceKeys: readonly number[], copies: number, positions: number): Float64Array {
  const out = new Float64Array(sliceKeys.length * copies * positions);
  sliceKeys.forEach((key, n) => {
    for (let j = 0; j < copies; j++) {
      const rng = createRng(`${seed}:${key}:${j}`);
      const base = (n * copies + j) * positions;
      for (let p = 0; p < positions; p++) out[base + p] = rng.next();
    }
  });
  return out;
}

function checkInputs(engine: LsrEngine, codes: Int32Array, slicePositions: Float32Array, opts: RestorationOptions): void {
  const { positions, codes: k } = latentGeometry(engine.nets.prior);
  const n = slicePositions.length;
  if (codes.length !== n * positions) throw new RangeError(`restoration: ${codes.length} codes for ${n} maps of ${positions} positions`);
  if (opts.sliceKeys.length !== n) throw new RangeError(`restoration: ${opts.sliceKeys.length} slice keys for ${n} slices`);
  if (!Number.isInteger(opts.copies) || opts.copies < 1) throw new RangeError(`restoration: copies must be a positive integer, got ${opts.copies}`);
  if (!Number.isFinite(opts.lambdaP)) throw new RangeError(`restoration: λp must be finite, got ${opts.lambdaP}`);
  for (let i = 0; i < codes.length; i++) {
    if (codes[i] < 0 || codes[i] >= k) throw new RangeError(`restoration: code ${codes[i]} outside 0…${k - 1}`);
  }
}

/** Restores `codes` ([slices, h, w] flattened, slice n conditioned on `slicePositions[n]`). */
export async function restoreCodes(engine: LsrEngine, codes: Int32Array, slicePositions: Float32Array, opts: RestorationOptions): Promise<RestorationResult> {
  checkInputs(engine, codes, slicePositions, opts);
  return (opts.mode ?? 'shortcut') === 'naive' ? naiveLoop(engine, codes, slicePositions, opts) : shortcutLoop(engine, codes, slicePositions, opts);
}

interface Counters {
  mapPasses: number;
  priorCalls: number;
  resampled: number;
  changed: number;
  priorMs: number;
}

/** At most `size` items per batch, as few batches as that allows, of near-equal sizes (no small tail batch). */
export function evenBatches(count: number, size: number): Array<[number, number]> {
  const parts = Math.ceil(count / size);
  const out: Array<[number, number]> = [];
  for (let i = 0; i < parts; i++) out.push([Math.floor((i * count) / parts), Math.floor(((i + 1) * count) / parts)]);
  return out;
}

/** Runs maps through the prior in batches; returns logits [maps, positions − from, K] per map. */
async function runPrior(
  engine: LsrEngine,
  maps: readonly Int32Array[],
  mapPositions: readonly number[],
  from: number,
  maxBatch: number,
  counters: Counters,
): Promise<Float32Array[]> {
  const { positions, codes: k } = latentGeometry(engine.nets.prior);
  const perMap = (positions - from) * k;
  const out: Float32Array[] = [];
  for (const [a, b] of evenBatches(maps.length, maxBatch)) {
    const input = new Int32Array((b - a) * positions);
    for (let i = a; i < b; i++) input.set(maps[i], (i - a) * positions);
    const t0 = performance.now();
    const logits = await engine.priorLogitsFrom(input, Float32Array.from(mapPositions.slice(a, b)), from);
    counters.priorMs += performance.now() - t0;
    counters.priorCalls++;
    counters.mapPasses += b - a;
    for (let i = 0; i < b - a; i++) out.push(logits.slice(i * perMap, (i + 1) * perMap));
  }
  return out;
}

function finish(engine: LsrEngine, out: Int32Array, n: number, opts: RestorationOptions, counters: Counters, started: number): RestorationResult {
  const { positions } = latentGeometry(engine.nets.prior);
  return {
    codes: out,
    stats: {
      slices: n,
      copies: opts.copies,
      positions,
      naiveCopyPasses: positions * n * opts.copies,
      mapPasses: counters.mapPasses,
      priorCalls: counters.priorCalls,
      resampled: counters.resampled,
      changed: counters.changed,
      priorSeconds: counters.priorMs / 1000,
      seconds: (performance.now() - started) / 1000,
    },
  };
}

async function naiveLoop(engine: LsrEngine, codes: Int32Array, slicePositions: Float32Array, opts: RestorationOptions): Promise<RestorationResult> {
  const started = performance.now();
  const { positions, codes: k } = latentGeometry(engine.nets.prior);
  const n = slicePositions.length;
  const s = opts.copies;
  const uniforms = restorationUniforms(opts.seed, opts.sliceKeys, s, positions);
  const maps: Int32Array[] = [];
  const mapPositions: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < s; j++) {
      maps.push(codes.slice(i * positions, (i + 1) * positions));
      mapPositions.push(slicePositions[i]);
    }
  }
  const counters: Counters = { mapPasses: 0, priorCalls: 0, resampled: 0, changed: 0, priorMs: 0 };
  for (let p = 0; p < positions; p++) {
    const logits = await runPrior(engine, maps, mapPositions, p, opts.maxBatch ?? engine.priorBatch, counters);
    maps.forEach((map, c) => {
      if (nllOfCode(logits[c], 0, k, map[p]) <= opts.lambdaP) return;
      counters.resampled++;
      const drawn = sampleCode(logits[c], 0, k, uniforms[c * positions + p]);
      if (drawn !== map[p]) {
        counters.changed++;
        map[p] = drawn;
      }
    });
  }
  const out = new Int32Array(n * s * positions);
  maps.forEach((map, c) => out.set(map, c * positions));
  return finish(engine, out, n, opts, counters, started);
}

/** Copies of one slice that hold identical code maps. */
interface CopyGroup {
  readonly slice: number;
  /** Copy indices, ascending. */
  readonly copies: number[];
  readonly codes: Int32Array;
  /** Logits for positions logitsFrom … end, from the last pass; null when the codes changed since. */
  logits: Float32Array | null;
  logitsFrom: number;
}

async function shortcutLoop(engine: LsrEngine, codes: Int32Array, slicePositions: Float32Array, opts: RestorationOptions): Promise<RestorationResult> {
  const started = performance.now();
  const { positions, codes: k } = latentGeometry(engine.nets.prior);
  const n = slicePositions.length;
  const s = opts.copies;
  const uniforms = restorationUniforms(opts.seed, opts.sliceKeys, s, positions);
  const allCopies = Array.from({ length: s }, (_, j) => j);
  // Before any resampling the S copies of a slice are identical: one group, one pass.
  let groups: CopyGroup[] = Array.from({ length: n }, (_, i) => ({
    slice: i,
    copies: allCopies.slice(),
    codes: codes.slice(i * positions, (i + 1) * positions),
    logits: null,
    logitsFrom: 0,
  }));
  const counters: Counters = { mapPasses: 0, priorCalls: 0, resampled: 0, changed: 0, priorMs: 0 };
  for (let p = 0; p < positions; p++) {
    const stale = groups.filter((g) => g.logits === null);
    if (stale.length > 0) {
      const fresh = await runPrior(engine, stale.map((g) => g.codes), stale.map((g) => slicePositions[g.slice]), p, opts.maxBatch ?? engine.priorBatch, counters);
      stale.forEach((g, i) => {
        g.logits = fresh[i];
        g.logitsFrom = p;
      });
    }
    const next: CopyGroup[] = [];
    for (const g of groups) {
      const row = (p - g.logitsFrom) * k;
      const logits = g.logits!;
      const current = g.codes[p];
      if (nllOfCode(logits, row, k, current) <= opts.lambdaP) {
        next.push(g);
        continue;
      }
      counters.resampled += g.copies.length;
      const byCode = new Map<number, number[]>();
      for (const j of g.copies) {
        const drawn = sampleCode(logits, row, k, uniforms[(g.slice * s + j) * positions + p]);
        const members = byCode.get(drawn);
        if (members) members.push(j);
        else byCode.set(drawn, [j]);
      }
      // Sub-groups in order of their first copy, so the group order (and batch layout) is deterministic.
      for (const [code, members] of [...byCode.entries()].sort((a, b) => a[1][0] - b[1][0])) {
        if (code === current) {
          next.push({ ...g, copies: members });
          continue;
        }
        counters.changed += members.length;
        const changed = g.codes.slice();
        changed[p] = code;
        next.push({ slice: g.slice, copies: members, codes: changed, logits: null, logitsFrom: 0 });
      }
    }
    groups = next;
  }
  const out = new Int32Array(n * s * positions);
  for (const g of groups) for (const j of g.copies) out.set(g.codes, (g.slice * s + j) * positions);
  return finish(engine, out, n, opts, counters, started);
}
