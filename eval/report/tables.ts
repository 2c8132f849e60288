import type { Interval, KindMetrics, MethodResult, Report } from './types.js';

/**
 * Table contents shared by the Markdown and HTML writers: one place that decides which
 * columns the leaderboard and the per-kind table have.
 */

/** A number cell: the value and, when known, its confidence interval. */
export interface MetricCell {
  readonly value?: number;
  readonly ci?: Interval;
}

export interface LeaderboardRow {
  readonly method: string;
  readonly methodIndex: number;
  readonly sampleAp: MetricCell;
  readonly sampleAuroc: MetricCell;
  readonly pixelAp: MetricCell;
  readonly pixelAuroc: MetricCell;
  readonly bestDice: MetricCell;
  readonly bestDiceThreshold?: number;
  readonly secondsPerCase?: number;
  readonly missing: number;
  readonly bad: number;
  /** Number of the method's runs that failed (each reason is in MethodResult.failed). */
  readonly failed: number;
}

export type MetricColumn = 'sampleAp' | 'sampleAuroc' | 'pixelAp' | 'pixelAuroc' | 'bestDice';
export const METRIC_COLUMNS: readonly MetricColumn[] = ['sampleAp', 'sampleAuroc', 'pixelAp', 'pixelAuroc', 'bestDice'];

export function leaderboardRows(report: Report): LeaderboardRow[] {
  return report.methods.map((m: MethodResult, methodIndex) => ({
    method: m.name,
    methodIndex,
    sampleAp: { value: m.sample?.ap, ci: m.sample?.ci?.ap },
    sampleAuroc: { value: m.sample?.auroc, ci: m.sample?.ci?.auroc },
    pixelAp: { value: m.pixel?.ap, ci: m.pixel?.ci?.ap },
    pixelAuroc: { value: m.pixel?.auroc, ci: m.pixel?.ci?.auroc },
    bestDice: { value: m.pixel?.bestDice, ci: m.pixel?.ci?.bestDice },
    bestDiceThreshold: m.pixel?.bestDiceThreshold,
    secondsPerCase: m.secondsPerCase,
    missing: m.missing.length,
    bad: m.bad.length,
    failed: m.failed?.length ?? 0,
  }));
}

/** Highest finite value of a metric column (higher is better for all of them); undefined when none or one method. */
export function bestOfColumn(rows: readonly LeaderboardRow[], column: MetricColumn): number | undefined {
  const values = rows.map((r) => r[column].value).filter((v): v is number => v !== undefined && Number.isFinite(v));
  return values.length >= 2 ? Math.max(...values) : undefined;
}

export interface KindRow {
  readonly kind: string;
  readonly method: string;
  readonly methodIndex: number;
  readonly sample?: KindMetrics;
  readonly pixel?: KindMetrics;
}

/** Anomaly kinds present in any method's per-kind results, sorted by name. */
export function allKinds(report: Report): string[] {
  const kinds = new Set<string>();
  for (const m of report.methods) {
    for (const k of Object.keys(m.sample?.perKind ?? {})) kinds.add(k);
    for (const k of Object.keys(m.pixel?.perKind ?? {})) kinds.add(k);
  }
  return [...kinds].sort();
}

/** Per-kind rows, grouped by kind (sorted) and in method order within a kind; methods without that kind are skipped. */
export function kindRows(report: Report): KindRow[] {
  const rows: KindRow[] = [];
  for (const kind of allKinds(report)) {
    report.methods.forEach((m, methodIndex) => {
      const sample = m.sample?.perKind?.[kind];
      const pixel = m.pixel?.perKind?.[kind];
      if (sample || pixel) rows.push({ kind, method: m.name, methodIndex, sample, pixel });
    });
  }
  return rows;
}

/** Number of cases behind a per-kind row. */
export function kindCount(row: KindRow): number | undefined {
  return row.sample?.n ?? row.pixel?.n;
}

/** "95 %" style label of the confidence level, or a generic word when unknown. */
export function ciLabel(report: Report): string {
  return report.ciLevel !== undefined && Number.isFinite(report.ciLevel)
    ? `${Math.round(report.ciLevel * 1000) / 10} % bootstrap CI`
    : 'bootstrap CI';
}

export function formatSeconds(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '—';
  return seconds >= 10 ? seconds.toFixed(1) : seconds.toFixed(2);
}
