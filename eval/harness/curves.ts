import type { RankedCounts } from '../metrics/index.js';
import { classTotals } from '../metrics/index.js';
import type { CurvePoint } from '../report/types.js';

export interface Curves {
  /** [recall, precision], from the highest threshold down, with the step corners of the PR curve. */
  readonly pr: CurvePoint[];
  /** [false positive rate, true positive rate], starting at (0, 0). */
  readonly roc: CurvePoint[];
}

/** PR and ROC curves of ranked counts, thinned to about `maxPoints` points each (ends always kept). */
export function curvesFrom(counts: RankedCounts, maxPoints = 1500): Curves {
  const { positives: P, negatives: N } = classTotals(counts);
  const pr: CurvePoint[] = [];
  const roc: CurvePoint[] = [[0, 0]];
  if (P <= 0) return { pr, roc: N > 0 ? [[0, 0], [1, 1]] : roc };
  let tp = 0;
  let fp = 0;
  let lastPrecision = 1;
  pr.push([0, 1]);
  for (let i = 0; i < counts.thresholds.length; i++) {
    tp += counts.positives[i]!;
    fp += counts.negatives[i]!;
    const recall = tp / P;
    const precision = tp + fp > 0 ? tp / (tp + fp) : lastPrecision;
    pr.push([recall, precision]);
    lastPrecision = precision;
    roc.push([N > 0 ? fp / N : 0, tp / P]);
  }
  return { pr: thin(pr, maxPoints), roc: thin(roc, maxPoints) };
}

function thin(points: CurvePoint[], maxPoints: number): CurvePoint[] {
  if (points.length <= maxPoints) return points;
  const step = (points.length - 1) / (maxPoints - 1);
  const out: CurvePoint[] = [];
  for (let k = 0; k < maxPoints; k++) out.push(points[Math.round(k * step)]!);
  return out;
}
