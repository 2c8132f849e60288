import { escapeHtml } from './escape.js';
import type { CurvePoint } from './types.js';

/** One line of a curve plot. */
export interface PlotSeries {
  readonly name: string;
  readonly color: string;
  readonly points: readonly CurvePoint[];
  /** Extra legend text after the name, e.g. "AP 0.812". */
  readonly detail?: string;
}

export interface CurvePlotOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly PlotSeries[];
  /** Chance line: the ROC diagonal, or a horizontal PR line at the prevalence. */
  readonly reference?: { readonly kind: 'diagonal' } | { readonly kind: 'horizontal'; readonly y: number };
  /** Unique id for the SVG's title element (for aria-labelledby); derived from the title when absent. */
  readonly id?: string;
  /** Width of the whole SVG in px (default 460). */
  readonly width?: number;
}

const MARGIN = { left: 52, right: 16, top: 34, bottom: 44 } as const;
const PLOT_HEIGHT = 250;
const LEGEND_ROW = 18;
const TICKS = [0, 0.2, 0.4, 0.6, 0.8, 1];

const fmt = (v: number): string => (Math.round(v * 10) / 10).toString();

/**
 * Pixel coordinates of the finite points, dropping points that land within a fraction of a
 * pixel of the last kept one (pixel-level curves can have tens of thousands of points).
 */
function projectPoints(points: readonly CurvePoint[], sx: (v: number) => number, sy: (v: number) => number): [number, number][] {
  const out: [number, number][] = [];
  let last: [number, number] | null = null;
  for (let i = 0; i < points.length; i++) {
    const [x, y] = points[i];
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    const p: [number, number] = [sx(Math.min(1, Math.max(0, x))), sy(Math.min(1, Math.max(0, y)))];
    const isLast = i === points.length - 1;
    if (!last || isLast || Math.abs(p[0] - last[0]) >= 0.35 || Math.abs(p[1] - last[1]) >= 0.35) {
      out.push(p);
      last = p;
    }
  }
  return out;
}

/**
 * A self-contained SVG line plot on the unit square, one `<path class="curve">` per series
 * that has points, with grid, labelled axes and a legend below the axes.
 */
export function curvePlotSvg(options: CurvePlotOptions): string {
  const width = options.width ?? 460;
  const plotW = width - MARGIN.left - MARGIN.right;
  const drawn = options.series.filter((s) => s.points.some(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  const legendTop = MARGIN.top + PLOT_HEIGHT + MARGIN.bottom;
  const height = legendTop + Math.max(1, drawn.length) * LEGEND_ROW + 6;
  const x0 = MARGIN.left;
  const y0 = MARGIN.top + PLOT_HEIGHT;
  const sx = (v: number): number => x0 + v * plotW;
  const sy = (v: number): number => y0 - v * PLOT_HEIGHT;
  const parts: string[] = [];
  const titleId = options.id !== undefined ? escapeHtml(options.id) : `plot-${Math.abs(hashString(options.title + options.xLabel + options.yLabel)).toString(36)}`;

  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-labelledby="${titleId}">`,
    `<title id="${titleId}">${escapeHtml(`${options.title}: ${options.yLabel} against ${options.xLabel}`)}</title>`,
    `<text class="plot-title" x="${x0}" y="20">${escapeHtml(options.title)}</text>`,
  );
  for (const t of TICKS) {
    parts.push(
      `<line class="grid" x1="${fmt(sx(t))}" y1="${fmt(sy(0))}" x2="${fmt(sx(t))}" y2="${fmt(sy(1))}" stroke="#e8eaee"/>`,
      `<line class="grid" x1="${fmt(sx(0))}" y1="${fmt(sy(t))}" x2="${fmt(sx(1))}" y2="${fmt(sy(t))}" stroke="#e8eaee"/>`,
      `<text class="tick" x="${fmt(sx(t))}" y="${fmt(y0 + 16)}" text-anchor="middle">${t.toFixed(1)}</text>`,
      `<text class="tick" x="${fmt(x0 - 8)}" y="${fmt(sy(t) + 4)}" text-anchor="end">${t.toFixed(1)}</text>`,
    );
  }
  parts.push(`<rect class="frame" x="${x0}" y="${MARGIN.top}" width="${plotW}" height="${PLOT_HEIGHT}" fill="none" stroke="#aab2bc"/>`);
  parts.push(
    `<text class="axis-label" x="${fmt(x0 + plotW / 2)}" y="${fmt(y0 + 36)}" text-anchor="middle">${escapeHtml(options.xLabel)}</text>`,
    `<text class="axis-label" transform="translate(14 ${fmt(MARGIN.top + PLOT_HEIGHT / 2)}) rotate(-90)" text-anchor="middle">${escapeHtml(options.yLabel)}</text>`,
  );
  const ref = options.reference;
  if (ref?.kind === 'diagonal') {
    parts.push(`<line class="chance" stroke="#9aa3ad" stroke-dasharray="4 4" x1="${fmt(sx(0))}" y1="${fmt(sy(0))}" x2="${fmt(sx(1))}" y2="${fmt(sy(1))}"><title>chance</title></line>`);
  } else if (ref?.kind === 'horizontal' && Number.isFinite(ref.y)) {
    const y = Math.min(1, Math.max(0, ref.y));
    parts.push(`<line class="chance" stroke="#9aa3ad" stroke-dasharray="4 4" x1="${fmt(sx(0))}" y1="${fmt(sy(y))}" x2="${fmt(sx(1))}" y2="${fmt(sy(y))}"><title>chance (prevalence ${y.toFixed(3)})</title></line>`);
  }
  for (const s of drawn) {
    const pts = projectPoints(s.points, sx, sy);
    const d = pts.map(([px, py], i) => `${i === 0 ? 'M' : 'L'}${fmt(px)} ${fmt(py)}`).join('');
    parts.push(
      `<path class="curve" data-series="${escapeHtml(s.name)}" d="${d}" fill="none" stroke="${escapeHtml(s.color)}" stroke-width="2" stroke-linejoin="round"><title>${escapeHtml(s.name)}</title></path>`,
    );
  }
  if (drawn.length === 0) {
    parts.push(`<text class="tick" x="${fmt(x0 + plotW / 2)}" y="${fmt(MARGIN.top + PLOT_HEIGHT / 2)}" text-anchor="middle">no data</text>`);
  }
  drawn.forEach((s, i) => {
    const y = legendTop + i * LEGEND_ROW + 8;
    parts.push(
      `<g class="legend-item"><line x1="${x0}" y1="${y}" x2="${x0 + 22}" y2="${y}" stroke="${escapeHtml(s.color)}" stroke-width="3"/>`,
      `<text x="${x0 + 30}" y="${y + 4}"><tspan class="legend-name">${escapeHtml(s.name)}</tspan>${s.detail ? `<tspan class="legend-detail" dx="8">${escapeHtml(s.detail)}</tspan>` : ''}</text></g>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

function hashString(text: string): number {
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (Math.imul(h, 31) + text.charCodeAt(i)) | 0;
  return h;
}
