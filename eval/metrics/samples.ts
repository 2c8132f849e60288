import { averagePrecision } from './ap.js';
import { rocAuc } from './auroc.js';
import { bestDice, diceAtThreshold, type DiceResult } from './dice.js';
import { isPositiveLabel } from './labels.js';
import type { RankedCounts } from './ranked-counts.js';

/** Per-case sample scores: plain float64 (not quantised), clipped to [0, 1] as the organisers do. */
export type SampleScores = ArrayLike<number>;
/** Per-case labels: 0/1 (np.rint semantics). */
export type SampleLabels = ArrayLike<number>;

/**
 * Sorts the clipped scores from high to low and groups exact ties. `weights` (e.g. bootstrap multiplicities)
 * count each case that many times; cases of weight 0 are left out.
 */
export function rankedCountsFromScores(scores: SampleScores, labels: SampleLabels, weights?: ArrayLike<number>): RankedCounts {
  if (scores.length !== labels.length) {
    throw new RangeError(`scores (${scores.length}) and labels (${labels.length}) differ in length`);
  }
  if (weights && weights.length !== scores.length) {
    throw new RangeError(`weights (${weights.length}) and scores (${scores.length}) differ in length`);
  }
  const count = scores.length;
  const clipped = new Float64Array(count);
  const positive = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const score = scores[i];
    if (Number.isNaN(score)) throw new RangeError(`score ${i} is NaN`);
    clipped[i] = Math.min(1, Math.max(0, score));
    positive[i] = isPositiveLabel(labels[i]) ? 1 : 0;
  }
  const order = Array.from({ length: count }, (_, i) => i).sort((a, b) => clipped[b] - clipped[a]);
  const thresholds = new Float64Array(count);
  const positives = new Float64Array(count);
  const negatives = new Float64Array(count);
  let groups = 0;
  for (const index of order) {
    const weight = weights ? weights[index] : 1;
    if (weight === 0) continue;
    const score = clipped[index];
    if (groups === 0 || score !== thresholds[groups - 1]) {
      thresholds[groups] = score;
      groups++;
    }
    if (positive[index]) positives[groups - 1] += weight;
    else negatives[groups - 1] += weight;
  }
  return { thresholds: thresholds.subarray(0, groups), positives: positives.subarray(0, groups), negatives: negatives.subarray(0, groups) };
}

/** Sample-level AP over per-case scores (sklearn average_precision_score). NaN without positives. */
export function sampleAp(scores: SampleScores, labels: SampleLabels, weights?: ArrayLike<number>): number {
  return averagePrecision(rankedCountsFromScores(scores, labels, weights));
}

/** Sample-level AUROC (sklearn roc_auc_score). NaN if a class is absent. */
export function sampleAuroc(scores: SampleScores, labels: SampleLabels, weights?: ArrayLike<number>): number {
  return rocAuc(rankedCountsFromScores(scores, labels, weights));
}

/** Best Dice (= best F1) over every threshold of the per-case decision. NaN without positives. */
export function sampleBestDice(scores: SampleScores, labels: SampleLabels, weights?: ArrayLike<number>): DiceResult {
  return bestDice(rankedCountsFromScores(scores, labels, weights));
}

/** Dice (= F1) of the per-case decision "clipped score ≥ threshold". */
export function sampleDiceAtThreshold(scores: SampleScores, labels: SampleLabels, threshold: number, weights?: ArrayLike<number>): DiceResult {
  return diceAtThreshold(rankedCountsFromScores(scores, labels, weights), threshold);
}
