/**
 * Tampered code maps for training the LSGS transformer to repair them (pure functions over typed
 * arrays, every draw from the given Rng).
 *
 * Tampering: in every map exactly m = round(fraction · cells) positions (at least 1 when fraction > 0),
 * drawn without replacement, get a code drawn uniformly from the K − 1 codes other than the original,
 * so every tampered position really is wrong and the tampered fraction is exact.
 *
 * Loss weights ("focal" weights of the repair loss), per map with m tampered of N positions:
 *   tampered positions   (1 − β) / m
 *   untampered positions β / (N − m)
 * so Σ weight · CE = (1 − β)·mean CE(tampered) + β·mean CE(untampered) for each map, and the batch
 * loss is the mean over maps. CE is thus averaged PER GROUP AND PER MAP; because every map has the
 * same m, this equals the per-group mean over the whole batch, and splitting a batch by maps across
 * data-parallel workers (weighted by map counts) gives exactly the same loss. A map with no tampered
 * (or no untampered) position gets 1/N everywhere: the plain mean CE (the causal ablation's default,
 * fraction 0).
 */
import type { Rng } from '../../engine/random.js';
import { pickIndices } from '../../train/sampler.js';

export const DEFAULT_TAMPER_FRACTION = 0.1;
export const DEFAULT_REPAIR_BETA = 0.01;

export function tamperCount(cells: number, fraction: number): number {
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`tamper fraction must be in [0, 1], got ${fraction}`);
  if (fraction === 0) return 0;
  return Math.min(cells, Math.max(1, Math.round(fraction * cells)));
}

export interface TamperedMaps {
  /** The model input: the codes with the tampered positions replaced. */
  readonly input: Int32Array;
  /** 1 where the position was tampered. */
  readonly tampered: Uint8Array;
}

/** Tampers `codes` (maps of `cells` codes each, codes in 0…K−1). */
export function tamperCodes(codes: Int32Array, cells: number, codebookSize: number, fraction: number, rng: Rng): TamperedMaps {
  if (codes.length % cells !== 0) throw new RangeError(`tamperCodes: ${codes.length} codes are not whole maps of ${cells}`);
  if (codebookSize < 2 && fraction > 0) throw new RangeError('tampering needs at least 2 codes');
  const input = Int32Array.from(codes);
  const tampered = new Uint8Array(codes.length);
  const m = tamperCount(cells, fraction);
  if (m === 0) return { input, tampered };
  for (let base = 0; base < codes.length; base += cells) {
    for (const p of pickIndices(cells, m, rng)) {
      const original = codes[base + p]!;
      const r = rng.int(codebookSize - 1);
      input[base + p] = r >= original ? r + 1 : r;
      tampered[base + p] = 1;
    }
  }
  return { input, tampered };
}

/** Per-position loss weights of the repair loss (see the module comment); each map's weights sum to 1. */
export function repairLossWeights(tampered: Uint8Array, cells: number, beta: number): Float32Array {
  if (!(beta >= 0 && beta <= 1)) throw new RangeError(`β must be in [0, 1], got ${beta}`);
  const weights = new Float32Array(tampered.length);
  for (let base = 0; base < tampered.length; base += cells) {
    let m = 0;
    for (let i = 0; i < cells; i++) m += tampered[base + i]!;
    if (m === 0 || m === cells) {
      weights.fill(1 / cells, base, base + cells);
      continue;
    }
    const wt = (1 - beta) / m;
    const wu = beta / (cells - m);
    for (let i = 0; i < cells; i++) weights[base + i] = tampered[base + i] ? wt : wu;
  }
  return weights;
}
