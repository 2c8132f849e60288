import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);
/** True when running the TypeScript sources (tests), false when running compiled dist/. */
export const RUNNING_FROM_SOURCE = here.endsWith('.ts');

/** The package's root folder (holding package.json, weights/, dist/), from src/ or dist/src/. */
export const PACKAGE_ROOT = resolve(dirname(here), RUNNING_FROM_SOURCE ? '..' : '../..');

/** The compiled CLI entry (built by `npm run build`, which `npm ci` runs through `prepare`). */
export const CLI_ENTRY = join(PACKAGE_ROOT, 'dist', 'src', 'cli.js');

/** The compiled CLI entry, for running `predict` in a child process. */
export function cliEntryPath(): string {
  return CLI_ENTRY;
}
