/**
 * Render the synthetic example report and screenshot it with Debian's headless Chromium.
 *
 *   npx vite-node scripts/screenshot-report.ts
 *   SCREENSHOT_OUT=/tmp/shot.png npx vite-node scripts/screenshot-report.ts
 *
 * Default output: docs/report-screenshot.png. After `npm run build`:
 * `node dist/scripts/screenshot-report.js [out.png]`.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { launchChromium, screenshotReport } from '../eval/report/browser.js';
import { buildExampleReport } from '../eval/report/example.js';
import { writeReport } from '../eval/report/index.js';

async function main(): Promise<void> {
  const out = resolve(process.env.SCREENSHOT_OUT ?? process.argv[2] ?? 'docs/report-screenshot.png');
  await mkdir(dirname(out), { recursive: true });
  const dir = await mkdtemp(join(tmpdir(), 'moodlsr-report-'));
  const browser = await launchChromium();
  try {
    const paths = await writeReport(dir, buildExampleReport());
    await screenshotReport(browser, paths.html, out);
    console.log(`screenshot written to ${out}`);
  } finally {
    await browser.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
