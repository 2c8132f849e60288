/**
 * MOOD-exact evaluation metrics, pure TypeScript.
 * - Pixel task: ScoreHistogram counts voxels per float16 pattern of the clipped prediction (what the organisers'
 *   evalresults.py ranks), pooled over cases in flat memory; AP / AUROC / Dice from it are exact.
 * - Sample task: float64 scores clipped to [0, 1], not quantised, sorted exactly.
 * Both reduce to RankedCounts (distinct scores high → low with positive / negative counts) and share one sweep.
 * Undefined metrics are NaN: AP and best Dice without positives, AUROC with a class missing, Dice of an empty label
 * against an empty prediction.
 */
export {
  float32BitsToFloat16Bits,
  float32ToFloat16Bits,
  float32ArrayToFloat16Bits,
  float16BitsToNumber,
  clippedFloat16Bin,
  FLOAT16_UNIT_BIN_COUNT,
  FLOAT16_ONE_BITS,
} from './float16.js';
export { roundHalfEven, isPositiveLabel } from './labels.js';
export { type RankedCounts, type ClassTotals, classTotals, compactRankedCounts } from './ranked-counts.js';
export { averagePrecision } from './ap.js';
export { rocAuc } from './auroc.js';
export { type DiceResult, diceFromConfusion, diceAtThreshold, bestDice } from './dice.js';
export {
  ScoreHistogram,
  apFromHistogram,
  aurocFromHistogram,
  bestDiceFromHistogram,
  diceAtThresholdFromHistogram,
} from './histogram.js';
export {
  type SampleScores,
  type SampleLabels,
  rankedCountsFromScores,
  sampleAp,
  sampleAuroc,
  sampleBestDice,
  sampleDiceAtThreshold,
} from './samples.js';
export {
  type BootstrapOptions,
  type ConfidenceInterval,
  bootstrapCi,
  bootstrapPooledCi,
  bootstrapSampleCi,
  bootstrapMeanCi,
  percentile,
} from './bootstrap.js';
