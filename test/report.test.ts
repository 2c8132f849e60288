import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 as zlibCrc32, inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../src/engine/random.js';
import { buildExampleReport } from '../eval/report/example.js';
import {
  chooseOverlaySlice,
  crc32,
  curvePlotSvg,
  encodePng,
  escapeHtml,
  extractOverlay,
  renderHtml,
  renderJson,
  renderMarkdown,
  writeReport,
  type MethodResult,
  type Report,
} from '../eval/report/index.js';

/** An independent reader of the PNG subset we write: chunk list with CRC check, IHDR, inflated rows. */
function decodePng(png: Buffer): { width: number; height: number; colorType: number; rows: Buffer[]; chunkTypes: string[] } {
  expect([...png.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
  let offset = 8;
  const chunkTypes: string[] = [];
  const idat: Buffer[] = [];
  let width = 0;
  let height = 0;
  let colorType = -1;
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.subarray(offset + 4, offset + 8).toString('ascii');
    const data = png.subarray(offset + 8, offset + 8 + length);
    const storedCrc = png.readUInt32BE(offset + 8 + length);
    expect(storedCrc, `CRC of ${type}`).toBe(zlibCrc32(png.subarray(offset + 4, offset + 8 + length)));
    chunkTypes.push(type);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect(data[8]).toBe(8);
      colorType = data[9];
      expect([data[10], data[11], data[12]]).toEqual([0, 0, 0]);
    }
    if (type === 'IDAT') idat.push(Buffer.from(data));
    offset += 12 + length;
  }
  expect(offset).toBe(png.length);
  const channels = colorType === 6 ? 4 : 3;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels + 1;
  expect(raw.length).toBe(stride * height);
  const rows: Buffer[] = [];
  for (let r = 0; r < height; r++) {
    expect(raw[r * stride], 'filter type of row').toBe(0);
    rows.push(raw.subarray(r * stride + 1, (r + 1) * stride));
  }
  return { width, height, colorType, rows, chunkTypes };
}

function randomBytes(n: number, seed: number): Uint8Array {
  const rng = createRng(seed);
  return Uint8Array.from({ length: n }, () => rng.int(256));
}

describe('PNG encoder', () => {
  it('CRC-32 matches the standard check value and zlib', () => {
    expect(crc32(Buffer.from('123456789', 'ascii'))).toBe(0xcbf43926);
    const bytes = randomBytes(1000, 3);
    expect(crc32(bytes)).toBe(zlibCrc32(bytes));
    expect(crc32(bytes.subarray(0, 400), bytes.subarray(400))).toBe(zlibCrc32(bytes));
  });

  for (const [channels, width, height] of [
    [3, 7, 5],
    [4, 3, 9],
    [3, 1, 1],
  ] as const) {
    it(`round-trips ${channels === 3 ? 'RGB' : 'RGBA'} ${width}×${height}`, () => {
      const pixels = randomBytes(width * height * channels, width * 100 + height);
      const decoded = decodePng(encodePng(width, height, pixels, channels));
      expect(decoded.chunkTypes).toEqual(['IHDR', 'IDAT', 'IEND']);
      expect([decoded.width, decoded.height, decoded.colorType]).toEqual([width, height, channels === 4 ? 6 : 2]);
      expect(Buffer.concat(decoded.rows).equals(Buffer.from(pixels))).toBe(true);
    });
  }

  it('rejects a pixel buffer of the wrong size', () => {
    expect(() => encodePng(4, 4, new Uint8Array(47), 3)).toThrow(/needs 48/);
    expect(() => encodePng(0, 4, new Uint8Array(0), 3)).toThrow(RangeError);
  });
});

describe('overlay slices', () => {
  const shape = [6, 5, 7] as const;
  const n = 6 * 5 * 7;
  const idx = (x: number, y: number, z: number): number => x + 6 * (y + 5 * z);

  it('picks the slice with the largest label area', () => {
    const label = new Uint8Array(n);
    for (let x = 0; x < 3; x++) label[idx(x, 1, 2)] = 1;
    for (let x = 0; x < 5; x++) label[idx(x, 2, 4)] = 1;
    const score = new Float32Array(n);
    score.fill(1, idx(0, 0, 6), idx(0, 0, 6) + 30); // the score alone would pick z=6
    expect(chooseOverlaySlice(label, score, shape)).toBe(4);
    // Float labels as read from NIfTI: ≥ 0.5 is foreground.
    const floatLabel = Float32Array.from(label, (v) => v * 0.9);
    floatLabel[idx(0, 0, 1)] = 0.4;
    expect(chooseOverlaySlice(floatLabel, score, shape)).toBe(4);
  });

  it('picks the slice with the highest total score without a label (NaN ignored)', () => {
    const score = new Float32Array(n);
    score[idx(1, 1, 5)] = 3;
    score[idx(2, 2, 3)] = 2;
    score[idx(3, 3, 3)] = 0.5;
    score[idx(0, 0, 1)] = Number.NaN;
    expect(chooseOverlaySlice(null, score, shape)).toBe(5);
    expect(chooseOverlaySlice(new Uint8Array(n), score, shape)).toBe(5);
    score[idx(4, 4, 3)] = 1;
    expect(chooseOverlaySlice(null, score, shape)).toBe(3);
  });

  it('rejects arrays that do not match the shape', () => {
    expect(() => chooseOverlaySlice(null, new Float32Array(n - 1), shape)).toThrow(/needs 210/);
    expect(() => extractOverlay(new Float32Array(n), null, new Float32Array(n), shape, 7)).toThrow(/outside/);
  });

  it('extracts an axial slice with x as columns and y as rows, flipped by default', () => {
    const image = Float32Array.from({ length: n }, (_, i) => i);
    const score = Float32Array.from({ length: n }, (_, i) => -i);
    const label = new Float32Array(n);
    label[idx(2, 0, 3)] = 1;
    const flipped = extractOverlay(image, label, score, shape, 3);
    expect([flipped.width, flipped.height, flipped.z]).toEqual([6, 5, 3]);
    for (let y = 0; y < 5; y++) {
      for (let x = 0; x < 6; x++) {
        expect(flipped.image[x + 6 * (4 - y)]).toBe(idx(x, y, 3));
        expect(flipped.score[x + 6 * (4 - y)]).toBe(-idx(x, y, 3));
      }
    }
    expect(flipped.label![2 + 6 * 4]).toBe(1);
    expect(flipped.label!.reduce((a, b) => a + b, 0)).toBe(1);
    const upright = extractOverlay(image, null, score, shape, 3, { flipRows: false });
    expect(upright.label).toBeNull();
    expect(upright.image[4 + 6 * 1]).toBe(idx(4, 1, 3));
  });
});

const HOSTILE_CASE = `<img src=x onerror=alert(1)>"&'|x.nii.gz`;
const HOSTILE_METHOD = '<script>alert("m")</script>|pipe';

function hostileReport(): Report {
  const base = buildExampleReport({ cases: [{ name: HOSTILE_CASE, kind: '<b>kind</b>' }, { name: 'ok.nii.gz', kind: 'normal' }] });
  const methods: MethodResult[] = base.methods.map((m, i) => ({ ...m, name: i === 0 ? HOSTILE_METHOD : m.name, bad: [HOSTILE_CASE] }));
  return { ...base, title: 'Report <for> "you" & me', methods, notes: ['<iframe src="http://evil">'] };
}

describe('HTML', () => {
  it('escapes hostile case, kind, method and title text everywhere', () => {
    const html = renderHtml(hostileReport());
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<iframe');
    expect(html).not.toContain('<b>kind</b>');
    expect(html).toContain(escapeHtml(HOSTILE_CASE));
    expect(html).toContain('&lt;script&gt;alert(&quot;m&quot;)&lt;/script&gt;|pipe');
    expect(html).toContain('<title>Report &lt;for&gt; &quot;you&quot; &amp; me</title>');
    expect(escapeHtml(`<a href='x'>&</a>`)).toBe('&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;');
  });

  it('is self-contained: images are data URIs, no external references', () => {
    const html = renderHtml(buildExampleReport());
    const srcs = [...html.matchAll(/<img [^>]*src="([^"]*)"/g)].map((m) => m[1]);
    expect(srcs.length).toBeGreaterThan(0);
    for (const src of srcs) expect(src.startsWith('data:image/png;base64,')).toBe(true);
    expect(html).not.toMatch(/(src|href)="(https?:|\/\/)/);
    expect(html).not.toMatch(/<link|<script|@import|url\(/i);
    for (const img of html.matchAll(/<img [^>]*>/g)) expect(img[0]).toMatch(/ alt="[^"]+"/);
  });

  it('is deterministic for the same report and changes with the data', () => {
    expect(renderHtml(buildExampleReport({ seed: 5 }))).toBe(renderHtml(buildExampleReport({ seed: 5 })));
    expect(renderHtml(buildExampleReport({ seed: 6 }))).not.toBe(renderHtml(buildExampleReport({ seed: 5 })));
  });
});

describe('SVG plot', () => {
  it('draws one path per series with points, and drops non-finite points', () => {
    const svg = curvePlotSvg({
      title: 'T',
      xLabel: 'Recall',
      yLabel: 'Precision',
      series: [
        { name: 'a', color: '#123456', points: [[0, 1], [0.5, Number.NaN], [1, 0.5]] },
        { name: 'empty', color: '#000', points: [] },
        { name: 'b<>', color: '#abcdef', points: [[0, 0], [1, 1]] },
      ],
      reference: { kind: 'diagonal' },
    });
    const paths = [...svg.matchAll(/<path class="curve" data-series="([^"]*)" d="([^"]*)"/g)];
    expect(paths.map((p) => p[1])).toEqual(['a', 'b&lt;&gt;']);
    expect(paths[0][2].match(/[ML]/g)).toHaveLength(2);
    expect(svg).not.toContain('NaN');
  });

  it('thins dense curves but keeps both ends', () => {
    const points = Array.from({ length: 50_000 }, (_, i) => [i / 49_999, Math.sqrt(i / 49_999)] as const);
    const svg = curvePlotSvg({ title: 'T', xLabel: 'x', yLabel: 'y', series: [{ name: 's', color: '#000', points }] });
    const d = /<path class="curve"[^>]* d="([^"]*)"/.exec(svg)![1];
    const commands = d.match(/[ML][^ML]*/g)!;
    expect(commands.length).toBeLessThan(5000);
    expect(commands.length).toBeGreaterThan(50);
    expect(commands[0]).toBe('M52 284');
    expect(commands.at(-1)).toBe('L444 34');
  });
});

describe('Markdown and JSON', () => {
  it('has one leaderboard row per method and one per-kind row per kind and method', () => {
    const report = buildExampleReport();
    const md = renderMarkdown(report);
    const lines = md.split('\n');
    const boardStart = lines.findIndex((l) => l.startsWith('| Method |'));
    const boardRows = lines.slice(boardStart + 2).filter((_, i, a) => a.slice(0, i + 1).every((l) => l.startsWith('|')));
    expect(boardRows.map((l) => l.split(' | ')[0].slice(2))).toEqual(report.methods.map((m) => m.name));
    const first = report.methods[0];
    expect(boardRows[0]).toContain(`${first.sample!.ap.toFixed(3)} [${first.sample!.ci!.ap![0].toFixed(3)}, ${first.sample!.ci!.ap![1].toFixed(3)}]`);
    expect(boardRows[1].split(' | ').at(-2)).toBe(String(report.methods[1].missing.length));
    const kindStart = lines.findIndex((l) => l.startsWith('| Kind |'));
    const kindLines = lines.slice(kindStart + 2).filter((l, i, a) => a.slice(0, i + 1).every((x) => x.startsWith('|')));
    const kinds = Object.keys(first.sample!.perKind!);
    expect(kindLines).toHaveLength(kinds.length * report.methods.length);
    expect(kindLines.map((l) => l.split(' | ')[0].slice(2))).toEqual([...kinds].sort().flatMap((k) => [k, k]));
  });

  it('keeps the column count with hostile names', () => {
    const md = renderMarkdown(hostileReport());
    const row = md.split('\n').find((l) => l.includes('alert'))!;
    expect(row.split(/(?<!\\)\|/).length).toBe(11);
    expect(md).not.toContain('<script');
  });

  it('JSON has the numbers and case facts but no pixel arrays', () => {
    const report = buildExampleReport();
    const json = JSON.parse(renderJson(report));
    expect(json.methods).toHaveLength(2);
    expect(json.methods[0].sample.ap).toBe(report.methods[0].sample!.ap);
    expect(json.methods[0].pixel.pr).toHaveLength(report.methods[0].pixel!.pr.length);
    const c = json.methods[0].cases[1];
    expect(c.slice).toEqual({ z: report.methods[0].cases![1].slice!.z, width: 32, height: 32 });
    expect(renderJson(report)).not.toMatch(/"(image|label|score)"/);
  });
});

describe('writeReport', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'report-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the three files (replacing old ones) and leaves no temp files', async () => {
    const out = join(dir, 'nested', 'out');
    const report = buildExampleReport();
    await writeReport(out, buildExampleReport({ seed: 9 }));
    await writeFile(join(out, 'unrelated.txt'), 'x');
    const paths = await writeReport(out, report);
    expect(paths).toEqual({ json: join(out, 'report.json'), markdown: join(out, 'report.md'), html: join(out, 'report.html') });
    expect((await readdir(out)).sort()).toEqual(['report.html', 'report.json', 'report.md', 'unrelated.txt']);
    expect(await readFile(paths.html, 'utf8')).toBe(renderHtml(report));
    expect(await readFile(paths.markdown, 'utf8')).toBe(renderMarkdown(report));
    expect(JSON.parse(await readFile(paths.json, 'utf8')).title).toBe(report.title);
  });
});
