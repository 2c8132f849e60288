/**
 * How the S restorations of a slice are combined into one residual map AS = Σ_j w_j |X − X_j|.
 *
 * - 'softmax' (the paper): w_j = softmax_j(k / mean|X − X_j|) over the whole slice. A copy that did
 *   restore the anomaly has a larger mean residual, so it gets a smaller weight; with an imprecise
 *   prior this favours the copies that left the anomaly in place.
 * - 'mean': w_j = 1/S.
 * - 'outside': softmax_j(k / mean residual over the pixels OUTSIDE the code patches that copy j
 *   changed): a copy is judged by how faithfully it kept what it was not asked to repair. A copy that
 *   changed nothing is judged on the whole slice; one that changed every patch gets the mean weight.
 */
export type WeightingRule = 'softmax' | 'mean' | 'outside';

export const WEIGHTING_RULES: readonly WeightingRule[] = Object.freeze(['softmax', 'mean', 'outside']);

export function isWeightingRule(x: unknown): x is WeightingRule {
  return typeof x === 'string' && (WEIGHTING_RULES as readonly string[]).includes(x);
}

/** Geometry of the code grid over the image: each code covers a patch of the slice. */
export interface CodePatches {
  /** Image side (pixels) and code-map side (codes). */
  readonly size: number;
  readonly codeSide: number;
}

/** Pixels of the image whose code patch changed between `original` and `restored` (1 = changed). */
export function changedPixels(original: Int32Array, restored: Int32Array, geometry: CodePatches): Uint8Array {
  const { size, codeSide } = geometry;
  const out = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) {
    const cy = Math.min(codeSide - 1, Math.floor((y * codeSide) / size));
    for (let x = 0; x < size; x++) {
      const c = cy * codeSide + Math.min(codeSide - 1, Math.floor((x * codeSide) / size));
      if (original[c] !== restored[c]) out[y * size + x] = 1;
    }
  }
  return out;
}

function softmax(logits: Float64Array): Float64Array {
  let max = -Infinity;
  for (const l of logits) if (l > max) max = l;
  const w = logits.map((l) => Math.exp(l - max));
  const total = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / total);
}

/**
 * Weights of the `copies` restorations of one slice (`input`, H·W; `restorations`, copies·H·W).
 * 'outside' needs the changed-pixel mask of every copy (`changed[j]`).
 */
export function restorationWeights(
  input: Float32Array,
  restorations: Float32Array,
  copies: number,
  rule: WeightingRule,
  k: number,
  changed?: readonly Uint8Array[],
): Float64Array {
  const plane = input.length;
  if (restorations.length !== copies * plane) throw new RangeError(`restorationWeights: ${restorations.length} values for ${copies} restorations of ${plane}`);
  if (rule === 'mean') return new Float64Array(copies).fill(1 / copies);
  if (rule === 'outside' && (changed === undefined || changed.length !== copies)) throw new RangeError('restorationWeights: the outside rule needs one changed-pixel mask per copy');
  const logits = new Float64Array(copies);
  for (let j = 0; j < copies; j++) {
    const base = j * plane;
    const skip = rule === 'outside' ? changed![j]! : undefined;
    let sum = 0;
    let n = 0;
    for (let i = 0; i < plane; i++) {
      if (skip !== undefined && skip[i] === 1) continue;
      sum += Math.abs(input[i]! - restorations[base + i]!);
      n++;
    }
    // A copy that changed everything has no outside: it gets the typical logit (the mean of the others), set below.
    logits[j] = n === 0 ? NaN : k / Math.max(sum / n, 1e-12);
  }
  const finite = logits.filter((l) => !Number.isNaN(l));
  if (finite.length === 0) return new Float64Array(copies).fill(1 / copies);
  const typical = finite.reduce((a, b) => a + b, 0) / finite.length;
  return softmax(logits.map((l) => (Number.isNaN(l) ? typical : l)));
}

/** AS = Σ_j w_j |X − X_j| (H·W). */
export function weightedResidualMap(input: Float32Array, restorations: Float32Array, weights: Float64Array): Float32Array {
  const plane = input.length;
  const out = new Float32Array(plane);
  weights.forEach((w, j) => {
    if (w === 0) return;
    const base = j * plane;
    for (let i = 0; i < plane; i++) out[i] += w * Math.abs(input[i]! - restorations[base + i]!);
  });
  return out;
}
