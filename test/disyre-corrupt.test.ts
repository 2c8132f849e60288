/**
 * DISYRE's corruption generator (src/methods/disyre/corrupt.ts): the seed fixes shapes, strengths and
 * levels; the level is the strongest part's strength; slices without tissue stay clean; and neither
 * the generator nor the trainer that uses it imports anything from eval/ (the evaluation's anomalies).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { relativeImports } from '../scripts/import-cycles.js';
import { createRng } from '../src/engine/random.js';
import { corruptSlice, DEFAULT_CORRUPTION, drawShape, gaussianBlur, SHAPE_KINDS } from '../src/methods/disyre/corrupt.js';

const root = path.resolve(import.meta.dirname, '..');
const S = 32;

/** A disc of tissue with two intensity levels, background 0. */
function slice(seed: number): Float32Array {
  const rng = createRng(seed);
  const out = new Float32Array(S * S);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const r = Math.hypot(x - S / 2, y - S / 2);
      if (r < 0.42 * S) out[y * S + x] = (r < 0.2 * S ? 0.7 : 0.4) + 0.03 * rng.normal();
    }
  }
  return out;
}

/** Every .ts file reachable from `entry` through relative imports (static, type-only and dynamic). */
function importClosure(entry: string): string[] {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of relativeImports(readFileSync(file, 'utf8'))) {
      const target = path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'));
      const resolved = existsSync(target) ? target : path.join(target.replace(/\.ts$/, ''), 'index.ts');
      if (!existsSync(resolved)) throw new Error(`${file}: cannot resolve ${spec}`);
      todo.push(resolved);
    }
  }
  return [...seen].sort();
}

describe('DISYRE corruption generator', () => {
  it('is fixed by the seed: same seed, same bytes; another seed, another corruption', () => {
    const clean = slice(1);
    const donor = slice(2);
    const a = corruptSlice(clean, S, donor, createRng(7));
    const b = corruptSlice(clean, S, donor, createRng(7));
    expect(Buffer.from(a.image.buffer)).toEqual(Buffer.from(b.image.buffer));
    expect(Buffer.from(a.mask.buffer)).toEqual(Buffer.from(b.mask.buffer));
    expect([a.level, a.shape, a.alphaTexture, a.alphaBias, a.bias, a.blurSigma]).toEqual([b.level, b.shape, b.alphaTexture, b.alphaBias, b.bias, b.blurSigma]);
    const levels = new Set(Array.from({ length: 8 }, (_, i) => corruptSlice(clean, S, donor, createRng(100 + i)).level));
    expect(levels.size).toBe(8);
  });

  it('draws every shape kind, levels in [minLevel, 1] equal to the strongest part, intensities in [0, 1], changes inside the mask only', () => {
    const clean = slice(3);
    const kinds = new Set<string>();
    let changedOutside = 0;
    for (let i = 0; i < 60; i++) {
      const c = corruptSlice(clean, S, slice(10 + i), createRng(i));
      kinds.add(c.shape!);
      expect(c.level).toBeGreaterThanOrEqual(DEFAULT_CORRUPTION.minLevel);
      expect(c.level).toBeLessThanOrEqual(1);
      expect(Math.max(c.alphaTexture, c.alphaBias)).toBeCloseTo(c.level, 12);
      expect(Math.min(c.alphaTexture, c.alphaBias)).toBeLessThanOrEqual(c.level);
      expect(c.image.every((v) => v >= 0 && v <= 1)).toBe(true);
      for (let p = 0; p < c.image.length; p++) {
        if (c.mask[p] === 0 && Math.abs(c.image[p]! - Math.min(1, Math.max(0, clean[p]!))) > 1e-6) changedOutside++;
      }
      expect(c.mask.some((m) => m > 0.5)).toBe(true);
    }
    expect([...kinds].sort()).toEqual([...SHAPE_KINDS].sort());
    expect(changedOutside).toBe(0);
  });

  it('stronger levels change the slice more (mean over seeds)', () => {
    const clean = slice(4);
    const weak: number[] = [];
    const strong: number[] = [];
    for (let i = 0; i < 200; i++) {
      const c = corruptSlice(clean, S, slice(50 + (i % 5)), createRng(1000 + i));
      const change = c.image.reduce((s, v, p) => s + Math.abs(v - clean[p]!), 0) / Math.max(1e-9, c.mask.reduce((s, m) => s + m, 0));
      (c.level < 0.4 ? weak : c.level > 0.7 ? strong : []).push(change);
    }
    const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
    expect(mean(strong)).toBeGreaterThan(1.5 * mean(weak));
  });

  it('leaves a slice without tissue clean at level 0', () => {
    const empty = new Float32Array(S * S);
    const c = corruptSlice(empty, S, null, createRng(1));
    expect(c.level).toBe(0);
    expect(c.shape).toBeNull();
    expect(c.image).toEqual(empty);
  });

  it('shapes are bounded by their radius and blur keeps the mean', () => {
    for (const kind of SHAPE_KINDS) {
      const shape = drawShape(kind, S, 16, 16, 5, createRng(kind));
      for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) if (shape[y * S + x] === 1) expect(Math.hypot(x - 16, y - 16)).toBeLessThan(5 * 1.4 * Math.SQRT2 + 5 * 0.8 + 1);
      expect(shape[16 * S + 16]).toBe(1);
    }
    const img = slice(5);
    const sum = (a: Float32Array) => a.reduce((s, v) => s + v, 0);
    const inner = new Float32Array(S * S);
    inner[16 * S + 16] = 1;
    expect(sum(gaussianBlur(inner, S, 1.5))).toBeCloseTo(1, 5);
    expect(sum(gaussianBlur(img, S, 0))).toBeCloseTo(sum(img), 3);
  });

  it('imports nothing from eval/ (generator and trainer, whole import closure)', () => {
    for (const entry of ['src/methods/disyre/corrupt.ts', 'src/methods/disyre/trainer.ts']) {
      const closure = importClosure(path.join(root, entry));
      expect(closure.length).toBeGreaterThan(0);
      expect(closure.filter((f) => path.relative(root, f).split(path.sep)[0] !== 'src')).toEqual([]);
    }
  });
});
