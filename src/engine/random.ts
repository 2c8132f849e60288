import seedrandom from 'seedrandom';

/** A seeded source of uniform numbers in [0, 1). Same seed, same sequence, on every platform. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Integer uniform in [0, n). */
  int(n: number): number;
  /** Standard normal (Box–Muller). */
  normal(): number;
  /** A fresh 32-bit seed drawn from this stream, for handing to a child generator or to tfjs ops. */
  seed(): number;
}

export function createRng(seed: number | string): Rng {
  const prng = seedrandom(String(seed));
  let spare: number | null = null;
  const rng: Rng = {
    next: () => prng.quick(),
    uniform: (lo, hi) => lo + (hi - lo) * prng.quick(),
    int: (n) => Math.floor(prng.quick() * n),
    normal: () => {
      if (spare !== null) {
        const s = spare;
        spare = null;
        return s;
      }
      let u = 0;
      while (u === 0) u = prng.quick();
      const v = prng.quick();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
    seed: () => prng.int32() >>> 0,
  };
  return rng;
}

/** Fisher–Yates shuffle of a copy. */
export function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
