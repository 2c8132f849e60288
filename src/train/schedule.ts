/**
 * Learning-rate schedules for the shared training loop: linear warm-up from 0 over `warmupSteps`
 * optimiser steps, then either a constant rate, a cosine decay to `minFraction` × lr at `totalSteps`,
 * or step decay (× `factor` every `every` steps after the warm-up). Pure functions of the step number,
 * so a resumed run continues the same curve (the step count is in the checkpoint).
 */

export type LrDecay = 'none' | 'cosine' | 'step';
export const LR_DECAYS: readonly LrDecay[] = ['none', 'cosine', 'step'];

export interface LrSchedule {
  /** Optimiser steps of linear warm-up (0 = none). */
  readonly warmupSteps: number;
  readonly decay: LrDecay;
  /** Cosine: the step at which the rate reaches its minimum (stays there after). */
  readonly totalSteps?: number;
  /** Cosine: the final rate as a fraction of the base rate (default 0.05). */
  readonly minFraction?: number;
  /** Step decay: steps between two decays (counted after the warm-up). */
  readonly every?: number;
  /** Step decay: multiplier per decay (default 0.5). */
  readonly factor?: number;
}

export const DEFAULT_MIN_LR_FRACTION = 0.05;

/** Throws a RangeError naming the first invalid field. */
export function validateSchedule(s: LrSchedule): void {
  if (!Number.isInteger(s.warmupSteps) || s.warmupSteps < 0) throw new RangeError(`warm-up steps must be a non-negative integer, got ${s.warmupSteps}`);
  if (!LR_DECAYS.includes(s.decay)) throw new RangeError(`learning-rate decay must be one of ${LR_DECAYS.join(', ')}, got ${s.decay}`);
  if (s.decay === 'cosine') {
    if (s.totalSteps === undefined || !Number.isInteger(s.totalSteps) || s.totalSteps < 1) throw new RangeError(`cosine decay needs totalSteps ≥ 1, got ${s.totalSteps}`);
    const m = s.minFraction ?? DEFAULT_MIN_LR_FRACTION;
    if (!(m >= 0 && m <= 1)) throw new RangeError(`minFraction must be in [0, 1], got ${m}`);
  }
  if (s.decay === 'step') {
    if (s.every === undefined || !Number.isInteger(s.every) || s.every < 1) throw new RangeError(`step decay needs every ≥ 1, got ${s.every}`);
    const f = s.factor ?? 0.5;
    if (!(f > 0 && f <= 1)) throw new RangeError(`step decay factor must be in (0, 1], got ${f}`);
  }
}

/** The learning rate of optimiser step `step` (1 for the first step). */
export function scheduledLr(baseLr: number, step: number, s: LrSchedule | undefined): number {
  if (s === undefined) return baseLr;
  if (s.warmupSteps > 0 && step <= s.warmupSteps) return (baseLr * step) / s.warmupSteps;
  const after = step - s.warmupSteps;
  if (s.decay === 'cosine') {
    const span = Math.max(1, s.totalSteps! - s.warmupSteps);
    const t = Math.min(1, after / span);
    const m = s.minFraction ?? DEFAULT_MIN_LR_FRACTION;
    return baseLr * (m + (1 - m) * 0.5 * (1 + Math.cos(Math.PI * t)));
  }
  if (s.decay === 'step') return baseLr * (s.factor ?? 0.5) ** Math.floor(after / s.every!);
  return baseLr;
}
