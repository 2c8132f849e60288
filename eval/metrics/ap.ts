import type { RankedCounts } from './ranked-counts.js';

/**
 * Average precision exactly as sklearn's `average_precision_score` (step-wise, no interpolation):
 * AP = Σᵢ (Rᵢ − Rᵢ₋₁)·Pᵢ over the distinct thresholds from high to low, ties forming a single step.
 * Returns NaN when there is no positive (sklearn warns and returns −0 there; AP has no meaning without positives).
 */
export function averagePrecision(counts: RankedCounts): number {
  let totalPositives = 0;
  for (let i = 0; i < counts.positives.length; i++) totalPositives += counts.positives[i];
  if (!(totalPositives > 0)) return NaN;
  let truePositives = 0;
  let falsePositives = 0;
  let weightedPrecisionSum = 0;
  for (let i = 0; i < counts.thresholds.length; i++) {
    const positivesHere = counts.positives[i];
    truePositives += positivesHere;
    falsePositives += counts.negatives[i];
    if (positivesHere > 0) weightedPrecisionSum += positivesHere * (truePositives / (truePositives + falsePositives));
  }
  return weightedPrecisionSum / totalPositives;
}
