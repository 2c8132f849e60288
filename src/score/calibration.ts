/**
 * Mapping raw sample scores to [0, 1] with a monotone calibration fitted on held-out NORMAL volumes.
 *
 * Below the smallest normal score: 0 → 0.25·(x / min) (scores are non-negative sums/means).
 * Between the normal scores: the empirical CDF, linearly interpolated, from 0.25 at the smallest to
 * 0.5 at the largest (plotting positions i/(n−1)).
 * Above the largest normal score: 1 − 0.5·τ/(x − max + τ) with τ the spread of the normal scores
 * (max − min, or max when all normals tie). The rational tail approaches 1 so slowly that abnormal
 * cases keep their order (in float64) instead of tying at 1 as the original min(sum / 2000, 1) did.
 * The map is continuous and strictly increasing on [0, ∞); values never reach 1 for finite input.
 */
export interface SampleCalibration {
  readonly kind: 'normal-ecdf-rational-tail';
  /** Sorted raw scores of the held-out normal volumes. */
  readonly normalScores: readonly number[];
  /** Scale τ of the tail above the largest normal score. */
  readonly tailScale: number;
}

export function fitSampleCalibration(normalRawScores: readonly number[]): SampleCalibration {
  const scores = normalRawScores.filter((s) => Number.isFinite(s)).sort((a, b) => a - b);
  if (scores.length === 0) throw new Error('calibration needs at least one finite held-out normal score');
  const lo = scores[0]!;
  const hi = scores[scores.length - 1]!;
  const spread = hi - lo;
  const tailScale = spread > 0 ? spread : Math.max(Math.abs(hi), 1e-6);
  return { kind: 'normal-ecdf-rational-tail', normalScores: scores, tailScale };
}

export function applySampleCalibration(cal: SampleCalibration, raw: number): number {
  if (!Number.isFinite(raw)) throw new RangeError(`raw sample score ${raw} is not finite`);
  const s = cal.normalScores;
  const lo = s[0]!;
  const hi = s[s.length - 1]!;
  if (raw > hi) return 1 - (0.5 * cal.tailScale) / (raw - hi + cal.tailScale);
  if (s.length === 1) return hi > 0 ? (0.5 * Math.max(0, raw)) / hi : 0.5;
  if (raw < lo) return lo > 0 ? (0.25 * Math.max(0, raw)) / lo : 0;
  // lo ≤ raw ≤ hi, at least two points: interpolate the plotting positions
  let i = 0;
  while (i < s.length - 2 && s[i + 1]! < raw) i++;
  const a = s[i]!;
  const b = s[i + 1]!;
  const pa = i / (s.length - 1);
  const pb = (i + 1) / (s.length - 1);
  const p = b > a ? pa + ((raw - a) / (b - a)) * (pb - pa) : pb;
  return 0.25 + 0.25 * p;
}

export function isSampleCalibration(x: unknown): x is SampleCalibration {
  const c = x as SampleCalibration;
  return (
    c !== null && typeof c === 'object' && c.kind === 'normal-ecdf-rational-tail' && Array.isArray(c.normalScores) &&
    c.normalScores.length > 0 && c.normalScores.every(Number.isFinite) && Number.isFinite(c.tailScale) && c.tailScale > 0
  );
}
