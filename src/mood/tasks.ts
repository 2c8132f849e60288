/**
 * Which MOOD tasks one `predict` run scores, and where each task's outputs go when it scores both.
 *
 * One task keeps the MOOD contract's layout: OUT/F.txt or OUT/F. Both tasks in one run (each case read
 * once, both scores from the same volume) write OUT/sample/F.txt and OUT/pixel/F, the leaderboard's
 * predictions/<entry>/<task> layout.
 */
import { join } from 'node:path';
import type { MoodTask } from './predictor.js';

/** Both tasks in the order a shared run scores them: the sample score first, then the pixel map. */
export const MOOD_TASKS: readonly MoodTask[] = ['sample', 'pixel'];

/** `--task` values that mean both tasks in one run. */
const BOTH_ALIAS = 'both';

/** "sample", "pixel", "sample,pixel" (either order) or "both" → the tasks, in MOOD_TASKS order. */
export function parseTaskList(text: string, flag = '--task'): MoodTask[] {
  const words = text.split(',').map((w) => w.trim());
  if (words.length === 1 && words[0] === BOTH_ALIAS) return [...MOOD_TASKS];
  const known = words.every((w): w is MoodTask => (MOOD_TASKS as readonly string[]).includes(w));
  if (!known || new Set(words).size !== words.length) {
    throw new Error(`${flag} must be sample, pixel, or both tasks as sample,pixel (alias ${BOTH_ALIAS}), got "${text}"`);
  }
  return MOOD_TASKS.filter((t) => words.includes(t));
}

/** The folder of one task's outputs when a run scores several tasks into OUT. */
export function taskOutputDir(outDir: string, task: MoodTask): string {
  return join(outDir, task);
}
