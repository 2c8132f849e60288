import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_PATH, launchChromium, screenshotReport } from '../eval/report/browser.js';
import { buildExampleReport } from '../eval/report/example.js';
import { writeReport, type Report } from '../eval/report/index.js';

/**
 * Opens the written report in Debian's headless Chromium and checks what a reader would see.
 * Needs /usr/bin/chromium (apt-get install chromium); fails, never skips, without it.
 */

const HOSTILE_CASE = `<img src=x onerror=alert(1)> & "q".nii.gz`;

function exampleWithHostileCase(): Report {
  return buildExampleReport({
    seed: 2,
    cases: [
      { name: 'toy_0.nii.gz', kind: 'normal' },
      { name: 'toy_1.nii.gz', kind: 'uniform' },
      { name: HOSTILE_CASE, kind: 'noise' },
      { name: 'toy_3.nii.gz', kind: 'sink' },
    ],
  });
}

interface PageLog {
  readonly consoleErrors: string[];
  readonly pageErrors: string[];
  readonly requests: string[];
}

async function openReport(browser: Browser, htmlPath: string): Promise<{ page: Page; log: PageLog }> {
  const page = await browser.newPage({ viewport: { width: 1240, height: 900 } });
  const log: PageLog = { consoleErrors: [], pageErrors: [], requests: [] };
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') log.consoleErrors.push(`${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => log.pageErrors.push(err.message));
  page.on('request', (req) => log.requests.push(req.url()));
  await page.goto(pathToFileURL(htmlPath).href, { waitUntil: 'load' });
  return { page, log };
}

describe('report in a headless browser', () => {
  let dir = '';
  let browser: Browser | null = null;
  let report: Report;
  let htmlPath = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'report-browser-'));
    report = exampleWithHostileCase();
    htmlPath = (await writeReport(dir, report)).html;
    if (existsSync(CHROMIUM_PATH)) browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await rm(dir, { recursive: true, force: true });
  });

  function requireBrowser(): Browser {
    if (!browser) throw new Error(`${CHROMIUM_PATH} is missing: run "apt-get install chromium" (CI installs it)`);
    return browser;
  }

  it('renders without console or page errors and loads nothing from outside the file', async () => {
    const { page, log } = await openReport(requireBrowser(), htmlPath);
    try {
      expect(log.pageErrors).toEqual([]);
      expect(log.consoleErrors).toEqual([]);
      const external = log.requests.filter((u) => !u.startsWith('data:') && u !== pathToFileURL(htmlPath).href);
      expect(external).toEqual([]);
      expect(await page.title()).toBe(report.title);
    } finally {
      await page.close();
    }
  });

  it('decodes every image, each with alt text', async () => {
    const { page } = await openReport(requireBrowser(), htmlPath);
    try {
      const images = await page.$$eval('img', (imgs) =>
        imgs.map((img) => ({ complete: img.complete, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight, alt: img.alt })),
      );
      const expectedCount = (await readFile(htmlPath, 'utf8')).match(/<img /g)!.length;
      expect(images.length).toBe(expectedCount);
      // An image per case, a ground truth per labelled case (3; the normal one has none), a heatmap per method and case.
      const views = report.methods.reduce((n, m) => n + (m.cases?.length ?? 0), 0);
      expect(expectedCount).toBe(4 + 3 + views);
      for (const img of images) {
        expect(img.complete).toBe(true);
        expect(img.naturalWidth).toBeGreaterThan(0);
        expect(img.naturalHeight).toBeGreaterThan(0);
        expect(img.alt.length).toBeGreaterThan(10);
      }
    } finally {
      await page.close();
    }
  });

  it('has one leaderboard row per method and one curve per method in each plot', async () => {
    const { page } = await openReport(requireBrowser(), htmlPath);
    try {
      const rows = await page.$$eval('table.leaderboard tbody tr th', (ths) => ths.map((th) => th.textContent?.trim()));
      expect(rows).toEqual(report.methods.map((m) => m.name));
      const plots = await page.$$eval('figure[data-plot]', (figs) =>
        figs.map((f) => ({
          plot: f.getAttribute('data-plot'),
          curves: [...f.querySelectorAll('svg path.curve')].map((p) => p.getAttribute('data-series')),
          legend: f.querySelectorAll('svg .legend-item').length,
          length: (f.querySelector('svg path.curve') as SVGPathElement | null)?.getTotalLength() ?? 0,
        })),
      );
      expect(plots.map((p) => p.plot)).toEqual(['sample-pr', 'sample-roc', 'pixel-pr', 'pixel-roc']);
      for (const p of plots) {
        expect(p.curves).toEqual(report.methods.map((m) => m.name));
        expect(p.legend).toBe(report.methods.length);
        expect(p.length).toBeGreaterThan(100);
      }
      const kindRows = await page.$$eval('table.per-kind tbody tr', (trs) => trs.length);
      expect(kindRows).toBe(3 * report.methods.length);
    } finally {
      await page.close();
    }
  });

  it('shows a hostile case name as plain text', async () => {
    const { page } = await openReport(requireBrowser(), htmlPath);
    try {
      const names = await page.$$eval('article.case .case-name', (els) => els.map((e) => e.textContent));
      expect(names).toContain(HOSTILE_CASE);
      expect(await page.$$eval('article.case img[src="x"]', (els) => els.length)).toBe(0);
    } finally {
      await page.close();
    }
  });

  it('takes a full-page screenshot', async () => {
    const out = join(dir, 'shot.png');
    await screenshotReport(requireBrowser(), htmlPath, out);
    const png = await readFile(out);
    expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(1240);
    expect(png.readUInt32BE(20)).toBeGreaterThan(1400);
  });
});
