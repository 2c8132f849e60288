import seedrandom from 'seedrandom';

/**
 * Seed-space convention shared by everything that makes random brains.
 *
 * A seed given by a user (e.g. `--seed 7`) is never used directly: every consumer derives its own
 * 32-bit seeds from (salt, user seed, path…) so that the evaluation set and the training population can
 * never share a variant, even when both are built with the same user seed.
 *
 *   - `'eval'`  — the synthetic test sets of the harness (buildToySet, this folder).
 *   - `'train'` — the population of normal brains used for training (reuse makeNormalVariant with
 *                 `deriveSeed('train', seed, 'normal', i)`, see population.ts).
 *
 * Within a salt, a path such as `['normal', 3]` or `['shift', 0]` names one case independently of how many
 * cases are generated, so adding cases never changes existing ones.
 */
export type SeedSalt = 'eval' | 'train';

export const EVAL_SALT: SeedSalt = 'eval';
export const TRAIN_SALT: SeedSalt = 'train';

/** A 32-bit unsigned seed, a pure function of the salt, the user seed and the path. */
export function deriveSeed(salt: string, seed: number, ...path: ReadonlyArray<string | number>): number {
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
  const key = [salt, String(seed), ...path.map(String)].join('/');
  return seedrandom(key).int32() >>> 0;
}

/**
 * A fast uniform generator in [0, 1) for per-voxel draws (millions per volume), where seedrandom's
 * ARC4 would dominate the run time. Mulberry32-style 32-bit mixing; fully determined by `seed`.
 */
export function voxelStream(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws from a `voxelStream` (Box–Muller, both outputs used). */
export function normalStream(seed: number): () => number {
  const uniform = voxelStream(seed);
  let spare = 0;
  let hasSpare = false;
  return () => {
    if (hasSpare) {
      hasSpare = false;
      return spare;
    }
    let u = uniform();
    while (u === 0) u = uniform();
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    hasSpare = true;
    return r * Math.cos(2 * Math.PI * v);
  };
}
