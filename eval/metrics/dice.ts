import type { RankedCounts } from './ranked-counts.js';

/**
 * Dice = 2TP / (2TP + FP + FN) with "predicted positive" meaning score ≥ threshold.
 * Dice is NaN when it is 0/0: no positives and nothing predicted positive (an empty case matched by an empty
 * prediction); callers decide whether that counts as 1 or is left out.
 */
export interface DiceResult {
  readonly dice: number;
  /** The threshold reached (score ≥ threshold is positive); +Infinity for "predict nothing". */
  readonly threshold: number;
  readonly truePositives: number;
  readonly falsePositives: number;
  readonly falseNegatives: number;
}

export function diceFromConfusion(truePositives: number, falsePositives: number, falseNegatives: number): number {
  const denominator = 2 * truePositives + falsePositives + falseNegatives;
  return denominator > 0 ? (2 * truePositives) / denominator : NaN;
}

/** Dice at a threshold fixed beforehand. */
export function diceAtThreshold(counts: RankedCounts, threshold: number): DiceResult {
  if (Number.isNaN(threshold)) throw new RangeError('Dice threshold is NaN');
  let truePositives = 0;
  let falsePositives = 0;
  let totalPositives = 0;
  for (let i = 0; i < counts.thresholds.length; i++) {
    totalPositives += counts.positives[i];
    if (counts.thresholds[i] >= threshold) {
      truePositives += counts.positives[i];
      falsePositives += counts.negatives[i];
    }
  }
  const falseNegatives = totalPositives - truePositives;
  return { dice: diceFromConfusion(truePositives, falsePositives, falseNegatives), threshold, truePositives, falsePositives, falseNegatives };
}

/**
 * The best Dice over every threshold, sweeping the distinct scores from high to low (each distinct score is a
 * candidate threshold; ties enter together). NaN when there are no positives (Dice is then 0 or 0/0 everywhere).
 * On equal Dice the highest threshold wins.
 */
export function bestDice(counts: RankedCounts): DiceResult {
  let totalPositives = 0;
  for (let i = 0; i < counts.positives.length; i++) totalPositives += counts.positives[i];
  let best: DiceResult = { dice: NaN, threshold: Infinity, truePositives: 0, falsePositives: 0, falseNegatives: totalPositives };
  if (!(totalPositives > 0)) return best;
  best = { ...best, dice: 0 };
  let truePositives = 0;
  let falsePositives = 0;
  for (let i = 0; i < counts.thresholds.length; i++) {
    truePositives += counts.positives[i];
    falsePositives += counts.negatives[i];
    const dice = (2 * truePositives) / (truePositives + falsePositives + totalPositives);
    if (dice > best.dice) {
      best = { dice, threshold: counts.thresholds[i], truePositives, falsePositives, falseNegatives: totalPositives - truePositives };
    }
  }
  return best;
}
