/**
 * LSGS restoration and pixel score of a chunk of slices (what a worker runs).
 *
 * Parallel restoration: S copies of every slice's code map. Each round runs the transformer once over
 * every copy (one pass gives the distribution at every position given the whole map); every position
 * whose NLL exceeds λ is resampled from that distribution, all positions of the round at once; the
 * next round re-evaluates the NLL on the updated maps. A copy where no position exceeds λ is settled:
 * the network is deterministic, so later rounds could not change it, and it is not run again. Copies
 * of a slice holding identical maps (all S at the start) go through the network once; a copy whose
 * codes did not change keeps its logits. None of this changes the result, only the work.
 *
 * Randomness: uniforms from createRng(`${seed}:${sliceKey}:${copy}:${round}`), one per position, and
 * inverse-CDF sampling in float64 (./restoration.ts), so results do not depend on batching, chunking
 * or the other slices in the call.
 *
 * Score: X̂ = decode(original codes), Y_j = decode(copy j) (each distinct map of a slice decoded once); R_j = |X̂ − Y_j|; weights
 * w_j = softmax_j(k / mean R_j) (restorations that change the reconstruction least count most, as LSR
 * weighs by closeness to the input); AS = Σ_j w_j R_j; optionally zeroed outside the input's
 * foreground (voxels that differ from the normalised background value).
 */
import { createRng } from '../../engine/random.js';
import { tfjsTransformerPasses, type LsgsEngine, type TransformerPasses } from './engine.js';
import type { TransformerNetwork } from './networks.js';
import { decodeDistinct } from '../../score/decode-distinct.js';
import { weightedResidual, RESIDUAL_TEMPERATURE } from '../../score/pixel-score.js';
import { nllOfCode, sampleCode } from '../../score/restoration.js';

export interface ParallelRestorationOptions {
  readonly copies: number;
  /** λ (nats): codes with a higher NLL are resampled. */
  readonly lambda: number;
  /** Most rounds (transformer passes per copy). */
  readonly rounds: number;
  readonly seed: number;
  /** One key per slice naming its random stream (the volume z index). */
  readonly sliceKeys: readonly number[];
  /** Most maps per transformer call (default: the engine's). */
  readonly maxBatch?: number;
}

export interface ParallelRestorationStats {
  readonly slices: number;
  readonly copies: number;
  readonly positions: number;
  /** Rounds in which at least one copy was still unsettled. */
  readonly roundsRun: number;
  /** Maps run through the transformer (identical copies count once). */
  readonly mapPasses: number;
  /** Copy-passes without sharing: rounds × slices × copies. */
  readonly naiveCopyPasses: number;
  readonly resampled: number;
  readonly changed: number;
  readonly transformerSeconds: number;
}

export interface ParallelRestorationResult {
  /** int32 [slices, copies, h, w] flattened. */
  readonly codes: Int32Array;
  readonly stats: ParallelRestorationStats;
}

interface CopyState {
  readonly slice: number;
  readonly copy: number;
  codes: Int32Array;
  logits: Float32Array | null;
  /** Offset of this copy's rows in `logits`. */
  logitsAt: number;
  settled: boolean;
}

/** Runs the transformer passes of `transformer` (an engine's, or a network's on TF.js). */
export async function restoreParallel(
  transformer: TransformerPasses | TransformerNetwork,
  codes: Int32Array,
  slicePositions: Float32Array,
  opts: ParallelRestorationOptions,
): Promise<ParallelRestorationResult> {
  const net = 'params' in transformer ? tfjsTransformerPasses(transformer) : transformer;
  const { height, width, codebookSize: k } = net.cfg;
  const cells = height * width;
  const n = slicePositions.length;
  const s = opts.copies;
  if (codes.length !== n * cells) throw new RangeError(`restoreParallel: ${codes.length} codes for ${n} maps of ${cells}`);
  if (opts.sliceKeys.length !== n) throw new RangeError(`restoreParallel: ${opts.sliceKeys.length} slice keys for ${n} slices`);
  if (!Number.isInteger(s) || s < 1) throw new RangeError(`restoreParallel: copies must be a positive integer, got ${s}`);
  if (!Number.isInteger(opts.rounds) || opts.rounds < 0) throw new RangeError(`restoreParallel: rounds must be a non-negative integer, got ${opts.rounds}`);
  if (!Number.isFinite(opts.lambda)) throw new RangeError(`restoreParallel: λ must be finite, got ${opts.lambda}`);
  for (const c of codes) if (c < 0 || c >= k) throw new RangeError(`restoreParallel: code ${c} outside 0…${k - 1}`);

  const states: CopyState[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < s; j++) states.push({ slice: i, copy: j, codes: codes.slice(i * cells, (i + 1) * cells), logits: null, logitsAt: 0, settled: false });
  }
  let mapPasses = 0;
  let resampled = 0;
  let changed = 0;
  let roundsRun = 0;
  let ms = 0;
  for (let round = 0; round < opts.rounds; round++) {
    const active = states.filter((c) => !c.settled);
    if (active.length === 0) break;
    roundsRun++;
    // One pass per distinct map of a slice among the copies without valid logits.
    const unique = new Map<string, CopyState[]>();
    for (const c of active) {
      if (c.logits !== null) continue;
      const key = `${c.slice}:${c.codes.join(',')}`;
      const group = unique.get(key);
      if (group) group.push(c);
      else unique.set(key, [c]);
    }
    const groups = [...unique.values()];
    if (groups.length > 0) {
      const input = new Int32Array(groups.length * cells);
      groups.forEach((g, i) => input.set(g[0]!.codes, i * cells));
      const t0 = performance.now();
      const logits = await net.logits(input, Float32Array.from(groups, (g) => slicePositions[g[0]!.slice]!), opts.maxBatch);
      ms += performance.now() - t0;
      mapPasses += groups.length;
      groups.forEach((g, i) => g.forEach((c) => ((c.logits = logits), (c.logitsAt = i * cells * k))));
    }
    for (const c of active) {
      const rng = createRng(`${opts.seed}:${opts.sliceKeys[c.slice]}:${c.copy}:${round}`);
      const logits = c.logits!;
      const next = c.codes.slice();
      let over = 0;
      let moved = 0;
      for (let p = 0; p < cells; p++) {
        const u = rng.next();
        const row = c.logitsAt + p * k;
        if (nllOfCode(logits, row, k, c.codes[p]!) <= opts.lambda) continue;
        over++;
        const drawn = sampleCode(logits, row, k, u);
        if (drawn !== next[p]) {
          next[p] = drawn;
          moved++;
        }
      }
      resampled += over;
      changed += moved;
      if (over === 0) c.settled = true;
      if (moved > 0) {
        c.codes = next;
        c.logits = null;
      }
    }
  }
  const out = new Int32Array(n * s * cells);
  states.forEach((c, i) => out.set(c.codes, i * cells));
  return {
    codes: out,
    stats: { slices: n, copies: s, positions: cells, roundsRun, mapPasses, naiveCopyPasses: opts.rounds * n * s, resampled, changed, transformerSeconds: ms / 1000 },
  };
}

export interface LsgsScoreTask {
  /** Normalised input slices at model resolution, count × S × S. */
  readonly images: Float32Array;
  /** Code maps of those slices (count × h × w). */
  readonly codes: Int32Array;
  readonly slicePositions: Float32Array;
  readonly restoration: ParallelRestorationOptions;
  readonly k?: number;
  /** Zero the score where the input equals `background` (the normalised background value). */
  readonly foregroundMask: boolean;
  readonly background: number;
}

export interface LsgsScoreResult {
  /** AS per slice at model resolution, count × S × S (unsmoothed). */
  readonly scores: Float32Array;
  readonly stats: ParallelRestorationStats;
  readonly restoreSeconds: number;
  readonly decodeSeconds: number;
  /** Maps run through the decoder (originals included; identical maps of a slice count once). */
  readonly decodedMaps: number;
}

/** Restoration → decoding → residuals against the plain reconstruction for a chunk of slices. */
export async function lsgsScores(engine: LsgsEngine, task: LsgsScoreTask): Promise<LsgsScoreResult> {
  const nets = engine.nets;
  const size = nets.vqvae.cfg.inputSize;
  const plane = size * size;
  const count = task.slicePositions.length;
  const copies = task.restoration.copies;
  const cells = nets.transformer.cfg.height * nets.transformer.cfg.width;
  if (task.images.length !== count * plane) throw new RangeError(`lsgsScores: ${task.images.length} image values for ${count} slices of ${size}×${size}`);
  const t0 = performance.now();
  const { codes: restored, stats } = await restoreParallel(engine.transformer, task.codes, task.slicePositions, task.restoration);
  const t1 = performance.now();
  const scores = new Float32Array(count * plane);
  let decodedMaps = 0;
  for (let i = 0; i < count; i++) {
    // The original map first, then the S copies: copies left unchanged share X̂'s decoding.
    const maps = new Int32Array((copies + 1) * cells);
    maps.set(task.codes.subarray(i * cells, (i + 1) * cells));
    maps.set(restored.subarray(i * copies * cells, (i + 1) * copies * cells), cells);
    const positions = new Float32Array(copies + 1).fill(task.slicePositions[i]!);
    const { images, decoded } = await decodeDistinct((c, p) => engine.decodeCodeMaps(c, p), maps, positions, cells, plane);
    decodedMaps += decoded;
    const as = weightedResidual(images.subarray(0, plane), images.subarray(plane), copies, task.k ?? RESIDUAL_TEMPERATURE);
    if (task.foregroundMask) {
      const input = task.images.subarray(i * plane, (i + 1) * plane);
      for (let p = 0; p < plane; p++) if (input[p] === task.background) as[p] = 0;
    }
    scores.set(as, i * plane);
  }
  return { scores, stats, restoreSeconds: (t1 - t0) / 1000, decodeSeconds: (performance.now() - t1) / 1000, decodedMaps };
}
