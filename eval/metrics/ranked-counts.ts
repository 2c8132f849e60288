/**
 * The common reduced form behind every ranking metric here: the distinct score values from the highest to the
 * lowest, each with how many positives and negatives carry exactly that score (counts may be weighted, e.g. by
 * bootstrap multiplicities). Both the float16 histogram and sorted float64 scores reduce to it.
 */
export interface RankedCounts {
  /** Distinct scores, strictly decreasing. */
  readonly thresholds: Float64Array;
  /** Positives scoring exactly thresholds[i]. */
  readonly positives: Float64Array;
  /** Negatives scoring exactly thresholds[i]. */
  readonly negatives: Float64Array;
}

export interface ClassTotals {
  readonly positives: number;
  readonly negatives: number;
}

export function classTotals(counts: RankedCounts): ClassTotals {
  let positives = 0;
  let negatives = 0;
  for (let i = 0; i < counts.thresholds.length; i++) {
    positives += counts.positives[i];
    negatives += counts.negatives[i];
  }
  return { positives, negatives };
}

/** Builds RankedCounts from per-group arrays, dropping groups that hold nothing. Input must already be decreasing. */
export function compactRankedCounts(thresholds: ArrayLike<number>, positives: ArrayLike<number>, negatives: ArrayLike<number>): RankedCounts {
  let kept = 0;
  for (let i = 0; i < thresholds.length; i++) if (positives[i] + negatives[i] > 0) kept++;
  const out = { thresholds: new Float64Array(kept), positives: new Float64Array(kept), negatives: new Float64Array(kept) };
  let k = 0;
  for (let i = 0; i < thresholds.length; i++) {
    if (positives[i] + negatives[i] <= 0) continue;
    if (k > 0 && !(thresholds[i] < out.thresholds[k - 1])) throw new RangeError('thresholds must be strictly decreasing');
    out.thresholds[k] = thresholds[i];
    out.positives[k] = positives[i];
    out.negatives[k] = negatives[i];
    k++;
  }
  return out;
}
