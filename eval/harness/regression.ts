/**
 * The regression gate: compare metrics against stored scores and name every metric that fell by more
 * than the tolerance. Metrics are the numeric leaves named ap, auroc, best_dice or dice anywhere in the
 * baseline JSON (top level, per_kind.*, methods.*.sample.*, …); a metric the baseline holds but the
 * current result lacks, or that became NaN, counts as fallen. Rises are fine.
 */
export const GATED_METRICS = new Set(['ap', 'auroc', 'best_dice', 'dice']);

export interface MetricDrop {
  readonly path: string;
  readonly baseline: number;
  readonly current: number | null;
}

export function metricLeaves(value: unknown, prefix = ''): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (v: unknown, path: string, key: string): void => {
    if (typeof v === 'number' && GATED_METRICS.has(key)) out.set(path, v);
    else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, child] of Object.entries(v as Record<string, unknown>)) walk(child, path ? `${path}.${k}` : k, k);
    }
  };
  walk(value, prefix, '');
  return out;
}

export function findDrops(current: unknown, baseline: unknown, tolerance: number): MetricDrop[] {
  if (!(tolerance >= 0)) throw new RangeError(`tolerance must be ≥ 0, got ${tolerance}`);
  const now = metricLeaves(current);
  const drops: MetricDrop[] = [];
  for (const [path, before] of metricLeaves(baseline)) {
    if (!Number.isFinite(before)) continue;
    const after = now.get(path);
    if (after === undefined || !Number.isFinite(after)) drops.push({ path, baseline: before, current: after ?? null });
    else if (after < before - tolerance) drops.push({ path, baseline: before, current: after });
  }
  return drops;
}

export function describeDrops(drops: readonly MetricDrop[], tolerance: number): string {
  return drops
    .map((d) =>
      d.current === null
        ? `${d.path}: missing (baseline ${d.baseline})`
        : `${d.path}: ${d.current} < baseline ${d.baseline} − ${tolerance} (fell by ${(d.baseline - d.current).toPrecision(4)})`,
    )
    .join('\n');
}
