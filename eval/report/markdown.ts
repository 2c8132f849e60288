import { escapeMarkdownCell, formatNumber } from './escape.js';
import { ciLabel, formatSeconds, kindCount, kindRows, leaderboardRows, type MetricCell } from './tables.js';
import type { Report } from './types.js';

const MAX_LISTED_NAMES = 20;

function metric(cell: MetricCell): string {
  const value = formatNumber(cell.value);
  if (!cell.ci || cell.value === undefined) return value;
  return `${value} [${formatNumber(cell.ci[0])}, ${formatNumber(cell.ci[1])}]`;
}

function table(header: readonly string[], align: readonly ('l' | 'r')[], rows: readonly (readonly string[])[]): string[] {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(align.map((a) => (a === 'r' ? '---:' : ':---'))), ...rows.map(line)];
}

function leaderboard(report: Report): string[] {
  const rows = leaderboardRows(report).map((r) => [
    `${escapeMarkdownCell(r.method)}${r.failed > 0 ? ' **FAILED**' : ''}`,
    metric(r.sampleAp),
    metric(r.sampleAuroc),
    metric(r.pixelAp),
    metric(r.pixelAuroc),
    metric(r.bestDice),
    formatSeconds(r.secondsPerCase),
    String(r.missing),
    String(r.bad),
  ]);
  return table(
    ['Method', 'Sample AP', 'Sample AUROC', 'Pixel AP', 'Pixel AUROC', 'Pixel best Dice', 's / case', 'Missing', 'Bad'],
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows,
  );
}

function perKind(report: Report): string[] {
  const rows = kindRows(report).map((r) => {
    const n = kindCount(r);
    return [
      escapeMarkdownCell(r.kind),
      escapeMarkdownCell(r.method),
      n === undefined ? '—' : String(n),
      formatNumber(r.sample?.ap),
      formatNumber(r.sample?.auroc),
      formatNumber(r.pixel?.ap),
      formatNumber(r.pixel?.auroc),
      formatNumber(r.pixel?.bestDice),
    ];
  });
  return table(
    ['Kind', 'Method', 'Cases', 'Sample AP', 'Sample AUROC', 'Pixel AP', 'Pixel AUROC', 'Pixel best Dice'],
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows,
  );
}

function nameList(names: readonly string[]): string {
  const shown = names.slice(0, MAX_LISTED_NAMES).map((n) => `\`${n.replace(/`/g, "'").replace(/\r?\n|\r/g, ' ')}\``);
  const more = names.length > MAX_LISTED_NAMES ? ` and ${names.length - MAX_LISTED_NAMES} more` : '';
  return shown.join(', ') + more;
}

function problems(report: Report): string[] {
  const lines: string[] = [];
  for (const m of report.methods) {
    const name = escapeMarkdownCell(m.name);
    for (const reason of m.failed ?? []) lines.push(`- **${name}** FAILED: ${escapeMarkdownCell(reason)}`);
    if (m.missing.length > 0) lines.push(`- **${name}** missing (${m.missing.length}): ${nameList(m.missing)}`);
    if (m.bad.length > 0) lines.push(`- **${name}** bad (${m.bad.length}): ${nameList(m.bad)}`);
  }
  return lines;
}

/** The report as Markdown: header, leaderboard, per-kind table, missing/bad predictions, notes. */
export function renderMarkdown(report: Report): string {
  const d = report.dataset;
  const out: string[] = [
    `# ${escapeMarkdownCell(report.title)}`,
    '',
    `Dataset **${escapeMarkdownCell(d.name)}** (${escapeMarkdownCell(d.region)}), ${d.cases} cases. Created ${escapeMarkdownCell(report.createdAt)}.`,
    '',
    '## Leaderboard',
    '',
    ...leaderboard(report),
    '',
    `AP (average precision) is the official MOOD metric. Pixel metrics pool every voxel of every case. Brackets: ${ciLabel(report)}.`,
  ];
  const kinds = perKind(report);
  if (kinds.length > 2) out.push('', '## Per anomaly kind', '', ...kinds);
  const issues = problems(report);
  if (issues.length > 0) {
    out.push('', '## Failed runs, missing and bad predictions', '', 'Missing and bad predictions count as all-zero predictions, as in the MOOD evaluator.', '', ...issues);
  }
  if (report.notes && report.notes.length > 0) {
    out.push('', '## Notes', '', ...report.notes.map((n) => `- ${escapeMarkdownCell(n)}`));
  }
  return `${out.join('\n')}\n`;
}
