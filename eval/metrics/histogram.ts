import { averagePrecision } from './ap.js';
import { rocAuc } from './auroc.js';
import { bestDice, diceAtThreshold, type DiceResult } from './dice.js';
import { clippedFloat16Bin, float16BitsToNumber, float32ArrayBits, FLOAT16_UNIT_BIN_COUNT } from './float16.js';
import { isPositiveLabel } from './labels.js';
import type { RankedCounts } from './ranked-counts.js';

/**
 * Pooled pixel-score counts exactly as the MOOD evaluator sees them: each prediction is converted to float16 and
 * clipped to [0, 1], so it is one of the 15361 float16 patterns 0x0000 … 0x3C00, which sort like their values.
 * Counting positives and negatives per pattern keeps memory flat however many voxels and cases are added, and every
 * ranking metric computed from it is exact.
 */
export class ScoreHistogram {
  /** positives[bits]: positive voxels whose clipped float16 score has these bits. */
  readonly positives = new Float64Array(FLOAT16_UNIT_BIN_COUNT);
  /** negatives[bits]: likewise for negative voxels. */
  readonly negatives = new Float64Array(FLOAT16_UNIT_BIN_COUNT);

  /**
   * Adds one case (or any batch) of voxels. Labels follow np.rint and must round to 0 or 1.
   * Throws on a NaN prediction (one NaN makes the organisers' evaluation fail) or a length mismatch.
   */
  add(predictions: Float32Array, labels: Uint8Array | Float32Array): this {
    if (predictions.length !== labels.length) {
      throw new RangeError(`predictions (${predictions.length}) and labels (${labels.length}) differ in length`);
    }
    const bits = float32ArrayBits(predictions);
    if (labels instanceof Uint8Array) this.addWithByteLabels(bits, labels);
    else this.addWithFloatLabels(bits, labels);
    return this;
  }

  /** Adds `weight` copies of another histogram (weight = bootstrap multiplicity). */
  addHistogram(other: ScoreHistogram, weight = 1): this {
    if (weight === 0) return this;
    const { positives, negatives } = this;
    const otherPositives = other.positives;
    const otherNegatives = other.negatives;
    for (let bin = 0; bin < FLOAT16_UNIT_BIN_COUNT; bin++) {
      positives[bin] += weight * otherPositives[bin];
      negatives[bin] += weight * otherNegatives[bin];
    }
    return this;
  }

  clear(): this {
    this.positives.fill(0);
    this.negatives.fill(0);
    return this;
  }

  totalPositives(): number {
    return sum(this.positives);
  }

  totalNegatives(): number {
    return sum(this.negatives);
  }

  /** Non-empty bins from 1.0 down to 0, with their float16 values as thresholds. */
  toRankedCounts(): RankedCounts {
    let kept = 0;
    for (let bin = 0; bin < FLOAT16_UNIT_BIN_COUNT; bin++) if (this.positives[bin] + this.negatives[bin] > 0) kept++;
    const thresholds = new Float64Array(kept);
    const positives = new Float64Array(kept);
    const negatives = new Float64Array(kept);
    let k = 0;
    for (let bin = FLOAT16_UNIT_BIN_COUNT - 1; bin >= 0; bin--) {
      if (this.positives[bin] + this.negatives[bin] === 0) continue;
      thresholds[k] = float16BitsToNumber(bin);
      positives[k] = this.positives[bin];
      negatives[k] = this.negatives[bin];
      k++;
    }
    return { thresholds, positives, negatives };
  }

  private addWithByteLabels(bits: Int32Array, labels: Uint8Array): void {
    const { positives, negatives } = this;
    for (let i = 0; i < bits.length; i++) {
      const bin = clippedFloat16Bin(bits[i]);
      if (bin < 0) throw new RangeError(`prediction ${i} is NaN`);
      const label = labels[i];
      if (label === 0) negatives[bin]++;
      else if (label === 1) positives[bin]++;
      else throw new RangeError(`label ${i} is ${label}, not 0 or 1`);
    }
  }

  private addWithFloatLabels(bits: Int32Array, labels: Float32Array): void {
    const { positives, negatives } = this;
    for (let i = 0; i < bits.length; i++) {
      const bin = clippedFloat16Bin(bits[i]);
      if (bin < 0) throw new RangeError(`prediction ${i} is NaN`);
      const label = labels[i];
      if (label === 0) negatives[bin]++;
      else if (label === 1) positives[bin]++;
      else if (isPositiveLabel(label)) positives[bin]++;
      else negatives[bin]++;
    }
  }
}

function sum(values: Float64Array): number {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i];
  return total;
}

/** Pooled pixel AP, identical to the organisers' evaluation of the voxels added. NaN without positives. */
export function apFromHistogram(histogram: ScoreHistogram): number {
  return averagePrecision(histogram.toRankedCounts());
}

/** Pooled pixel AUROC (sklearn roc_auc_score on the float16-quantised, clipped scores). NaN if a class is absent. */
export function aurocFromHistogram(histogram: ScoreHistogram): number {
  return rocAuc(histogram.toRankedCounts());
}

/** Best Dice over every float16 threshold. NaN without positives. */
export function bestDiceFromHistogram(histogram: ScoreHistogram): DiceResult {
  return bestDice(histogram.toRankedCounts());
}

/** Dice with "positive" = quantised, clipped score ≥ threshold. NaN for an empty label and an empty prediction. */
export function diceAtThresholdFromHistogram(histogram: ScoreHistogram, threshold: number): DiceResult {
  return diceAtThreshold(histogram.toRankedCounts(), threshold);
}
