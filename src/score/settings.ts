/**
 * Scoring options changed at predict time without editing weights: `--set key=value` (repeatable) on
 * `predict` and `leaderboard`. Each method lists the keys it understands (`Method.settings`); a key it
 * does not know is refused before anything loads, naming the keys it does know. Values are parsed by
 * the method when it loads, so that a bad value names the key and what it expects.
 */
import { InvalidArgumentError } from 'commander';

/** Overrides by key, as given on the command line. */
export type Settings = Readonly<Record<string, string>>;

export interface SettingSpec {
  readonly key: string;
  /** What the value means and its form, for `--help` and error messages. */
  readonly help: string;
}

/** Commander collector of `--set key=value`. */
export function collectSetting(text: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`--set must look like key=value, got "${text}"`);
  const key = text.slice(0, eq).trim();
  if (Object.hasOwn(previous, key)) throw new InvalidArgumentError(`--set ${key} is given twice`);
  return { ...previous, [key]: text.slice(eq + 1).trim() };
}

/** Throws naming the first key of `settings` that `specs` do not list. */
export function checkSettingKeys(settings: Settings, specs: readonly SettingSpec[], method: string): void {
  const known = specs.map((s) => s.key);
  for (const key of Object.keys(settings)) {
    if (!known.includes(key)) {
      throw new Error(`--set ${key}: ${method} has no such setting (${known.length > 0 ? `known: ${known.join(', ')}` : 'it has none'})`);
    }
  }
}

/** "a=1,b=x" → {a: '1', b: 'x'} (the leaderboard's per-entry form). */
export function parseSettingList(text: string): Record<string, string> {
  let out: Record<string, string> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p.length > 0)) out = collectSetting(part, out);
  return out;
}

/** A number, `inf` or `-inf`. */
export function settingNumber(key: string, value: string, min = -Infinity): number {
  const v = /^[+]?inf(inity)?$/i.test(value) ? Infinity : /^-inf(inity)?$/i.test(value) ? -Infinity : value.trim() === '' ? NaN : Number(value);
  if (Number.isNaN(v) || v < min) throw new Error(`--set ${key}: expected a number ≥ ${min} (or inf), got "${value}"`);
  return v;
}

export function settingInteger(key: string, value: string, min: number): number {
  const v = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(v) || v < min) throw new Error(`--set ${key}: expected an integer ≥ ${min}, got "${value}"`);
  return v;
}

export function settingChoice<T extends string>(key: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) throw new Error(`--set ${key}: expected one of ${choices.join(', ')}, got "${value}"`);
  return value as T;
}
