import { createRng } from '../../src/engine/random.js';
import { ScoreHistogram } from './histogram.js';
import type { SampleLabels, SampleScores } from './samples.js';

export interface BootstrapOptions {
  /** Seed of the resampling stream; same seed, same intervals. */
  readonly seed: number | string;
  /** Number of resamples B (default 1000). */
  readonly resamples?: number;
  /** Coverage of the percentile interval (default 0.95 → 2.5th and 97.5th percentiles). */
  readonly level?: number;
}

export interface ConfidenceInterval {
  /** The statistic on the original cases (every case once). */
  readonly estimate: number;
  readonly lower: number;
  readonly upper: number;
  readonly level: number;
  readonly resamples: number;
  /** Resamples whose statistic was defined (not NaN, e.g. a resample that drew no positive case is dropped). */
  readonly validResamples: number;
}

/**
 * Percentile bootstrap over cases. Each resample draws `caseCount` cases with replacement and hands the statistic
 * their multiplicities (weights[i] = how often case i was drawn), so statistics can sum per-case data instead of
 * copying it. Percentiles interpolate linearly between order statistics (numpy's default).
 */
export function bootstrapCi(caseCount: number, statistic: (weights: Uint32Array) => number, options: BootstrapOptions): ConfidenceInterval {
  const resamples = options.resamples ?? 1000;
  const level = options.level ?? 0.95;
  if (!Number.isInteger(caseCount) || caseCount < 1) throw new RangeError(`bootstrap needs at least one case, got ${caseCount}`);
  if (!Number.isInteger(resamples) || resamples < 1) throw new RangeError(`resamples must be a positive integer, got ${resamples}`);
  if (!(level > 0 && level < 1)) throw new RangeError(`level must lie in (0, 1), got ${level}`);

  const weights = new Uint32Array(caseCount);
  const estimate = statistic(weights.fill(1));
  const rng = createRng(options.seed);
  const values = new Float64Array(resamples);
  let valid = 0;
  for (let b = 0; b < resamples; b++) {
    weights.fill(0);
    for (let draw = 0; draw < caseCount; draw++) weights[rng.int(caseCount)]++;
    const value = statistic(weights);
    if (!Number.isNaN(value)) values[valid++] = value;
  }
  const sorted = values.subarray(0, valid).sort();
  const tail = (1 - level) / 2;
  return {
    estimate,
    lower: percentile(sorted, tail),
    upper: percentile(sorted, 1 - tail),
    level,
    resamples,
    validResamples: valid,
  };
}

/** Linear-interpolation quantile (numpy "linear") of ascending values; NaN when empty. */
export function percentile(ascending: Float64Array, fraction: number): number {
  if (ascending.length === 0) return NaN;
  const position = fraction * (ascending.length - 1);
  const below = Math.floor(position);
  const above = Math.min(below + 1, ascending.length - 1);
  const lowValue = ascending[below];
  return lowValue + (position - below) * (ascending[above] - lowValue);
}

/**
 * Bootstrap CI of a pooled pixel metric: every resample sums the per-case histograms by multiplicity
 * (memory: one extra histogram plus a compact copy of the non-empty bins) and evaluates `metric` on the sum.
 */
export function bootstrapPooledCi(
  caseHistograms: readonly ScoreHistogram[],
  metric: (pooled: ScoreHistogram) => number,
  options: BootstrapOptions,
): ConfidenceInterval {
  // Positive bins are mostly empty (small anomalies, normal cases): summing only non-empty bins saves most of the work.
  const positiveBins = caseHistograms.map((h) => nonEmptyBins(h.positives));
  const negativeBins = caseHistograms.map((h) => nonEmptyBins(h.negatives));
  const pooled = new ScoreHistogram();
  return bootstrapCi(
    caseHistograms.length,
    (weights) => {
      pooled.clear();
      for (let i = 0; i < weights.length; i++) {
        if (weights[i] === 0) continue;
        addBins(pooled.positives, positiveBins[i], weights[i]);
        addBins(pooled.negatives, negativeBins[i], weights[i]);
      }
      return metric(pooled);
    },
    options,
  );
}

interface NonEmptyBins {
  readonly bins: Int32Array;
  readonly counts: Float64Array;
}

function nonEmptyBins(counts: Float64Array): NonEmptyBins {
  let kept = 0;
  for (let bin = 0; bin < counts.length; bin++) if (counts[bin] !== 0) kept++;
  const out = { bins: new Int32Array(kept), counts: new Float64Array(kept) };
  let k = 0;
  for (let bin = 0; bin < counts.length; bin++) {
    if (counts[bin] === 0) continue;
    out.bins[k] = bin;
    out.counts[k] = counts[bin];
    k++;
  }
  return out;
}

function addBins(target: Float64Array, source: NonEmptyBins, weight: number): void {
  const { bins, counts } = source;
  for (let k = 0; k < bins.length; k++) target[bins[k]] += weight * counts[k];
}

/** Bootstrap CI of a sample-level metric such as sampleAp, which receives the multiplicities as weights. */
export function bootstrapSampleCi(
  scores: SampleScores,
  labels: SampleLabels,
  metric: (scores: SampleScores, labels: SampleLabels, weights: Uint32Array) => number,
  options: BootstrapOptions,
): ConfidenceInterval {
  if (scores.length !== labels.length) {
    throw new RangeError(`scores (${scores.length}) and labels (${labels.length}) differ in length`);
  }
  return bootstrapCi(scores.length, (weights) => metric(scores, labels, weights), options);
}

/** Bootstrap CI of the mean of per-case values (e.g. per-case Dice). Values must be defined: filter NaN first. */
export function bootstrapMeanCi(values: ArrayLike<number>, options: BootstrapOptions): ConfidenceInterval {
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i])) throw new RangeError(`per-case value ${i} is NaN; leave undefined cases out first`);
  }
  return bootstrapCi(
    values.length,
    (weights) => {
      let total = 0;
      let count = 0;
      for (let i = 0; i < weights.length; i++) {
        total += weights[i] * values[i];
        count += weights[i];
      }
      return total / count;
    },
    options,
  );
}
