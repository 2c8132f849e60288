/**
 * Binary labels as the MOOD evaluator reads them: `np.rint` (round half to even), so 0.5 → 0 and 1.5 → 2.
 * Anything that does not round to 0 or 1 is not a binary label and is rejected (sklearn would treat it as
 * multi-class and fail).
 */

/** np.rint: round to nearest integer, ties to even. */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** True for a positive label, false for a negative one; throws for anything that does not round to 0 or 1. */
export function isPositiveLabel(value: number): boolean {
  const rounded = roundHalfEven(value);
  if (rounded === 1) return true;
  if (rounded === 0) return false;
  throw new RangeError(`label ${value} does not round to 0 or 1`);
}
