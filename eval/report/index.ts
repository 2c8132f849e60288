import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderHtml } from './html.js';
import { renderJson } from './json.js';
import { renderMarkdown } from './markdown.js';
import type { Report, ReportPaths } from './types.js';

export type * from './types.js';
export { chooseOverlaySlice, extractOverlay, renderOverlayImages, renderOverlayLayer, overlaySize } from './overlay.js';
export type { LabelArray, ExtractOptions, RenderOptions, OverlayImages, OverlayLayer } from './overlay.js';
export { encodePng, crc32, pngDataUri } from './png.js';
export { curvePlotSvg } from './svgplot.js';
export type { PlotSeries, CurvePlotOptions } from './svgplot.js';
export { escapeHtml } from './escape.js';
export { renderHtml } from './html.js';
export { renderMarkdown } from './markdown.js';
export { renderJson, reportToJson } from './json.js';

/** Write `text` to `path` atomically: a temp file in the same folder, then rename over the target. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await writeFile(temp, text, 'utf8');
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/**
 * Write `report.json` (numbers, no pixel arrays), `report.md` (leaderboard and per-kind tables)
 * and `report.html` (the self-contained page) into `outDir`, creating it if needed.
 */
export async function writeReport(outDir: string, report: Report): Promise<ReportPaths> {
  await mkdir(outDir, { recursive: true });
  const paths: ReportPaths = {
    json: join(outDir, 'report.json'),
    markdown: join(outDir, 'report.md'),
    html: join(outDir, 'report.html'),
  };
  await writeFileAtomic(paths.json, renderJson(report));
  await writeFileAtomic(paths.markdown, renderMarkdown(report));
  await writeFileAtomic(paths.html, renderHtml(report));
  return paths;
}
