import type { RankedCounts } from './ranked-counts.js';

/**
 * Area under the ROC curve as sklearn's `roc_auc_score` (trapezoids over the ROC, so a tie between a positive and
 * a negative counts one half, i.e. the Mann–Whitney U statistic / (P·N)).
 * Returns NaN when either class is absent (sklearn raises there).
 */
export function rocAuc(counts: RankedCounts): number {
  let totalPositives = 0;
  let totalNegatives = 0;
  for (let i = 0; i < counts.thresholds.length; i++) {
    totalPositives += counts.positives[i];
    totalNegatives += counts.negatives[i];
  }
  if (!(totalPositives > 0) || !(totalNegatives > 0)) return NaN;
  // Σ over groups of negatives·(positives ranked strictly above + half the positives tied with them).
  let positivesAbove = 0;
  let area = 0;
  for (let i = 0; i < counts.thresholds.length; i++) {
    const positivesHere = counts.positives[i];
    const negativesHere = counts.negatives[i];
    if (negativesHere > 0) area += negativesHere * (positivesAbove + 0.5 * positivesHere);
    positivesAbove += positivesHere;
  }
  return area / totalPositives / totalNegatives;
}
