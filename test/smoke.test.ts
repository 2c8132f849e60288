import { describe, it, expect } from 'vitest';
import { createRng } from '../src/engine/random.js';
describe('rng', () => {
  it('same seed gives the same sequence, another seed another', () => {
    const a = createRng(7), b = createRng(7), c = createRng(8);
    const xa = Array.from({ length: 5 }, () => a.next());
    const xb = Array.from({ length: 5 }, () => b.next());
    const xc = Array.from({ length: 5 }, () => c.next());
    expect(xa).toEqual(xb);
    expect(xa).not.toEqual(xc);
  });
});
