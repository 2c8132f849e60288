import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findCycles, importGraph, relativeImports } from '../scripts/import-cycles.js';

const root = path.resolve(import.meta.dirname, '..');

describe('import circles', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'moodlsr-cycles-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads static, type-only, re-export and dynamic relative imports', () => {
    const source = [
      "import a from './a.js';",
      "import type { B } from '../b.js';",
      "export { c } from './c/index.js';",
      "import './side.js';",
      "const d = await import('./d.js');",
      "import x from 'node:fs';",
    ].join('\n');
    expect(relativeImports(source)).toEqual(['./a.js', '../b.js', './c/index.js', './side.js', './d.js']);
  });

  it('finds a circle closed by a type-only import and a dynamic import', () => {
    mkdirSync(path.join(dir, 'x'), { recursive: true });
    writeFileSync(path.join(dir, 'x', 'engine.ts'), "export async function make() { return (await import('./onnx.js')).onnx; }\n");
    writeFileSync(path.join(dir, 'x', 'onnx.ts'), "import type { E } from './engine.js';\nexport const onnx = 1;\n");
    writeFileSync(path.join(dir, 'free.ts'), "import { onnx } from './x/onnx.js';\nexport const y = onnx;\n");
    const cycles = findCycles(importGraph(dir));
    expect(cycles.map((c) => c.map((p) => path.relative(dir, p)))).toEqual([[path.join('x', 'engine.ts'), path.join('x', 'onnx.ts'), path.join('x', 'engine.ts')]]);
  });

  it('finds none in src/', () => {
    const cycles = findCycles(importGraph(path.join(root, 'src')));
    expect(cycles.map((c) => c.map((p) => path.relative(root, p)).join(' -> '))).toEqual([]);
  });
});
