/** Command-line options of the project's scripts: `--name value` and bare `--name` flags. */

/** The value after `--name`, else `fallback`; throws naming the option when it is required. */
export function option(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]!;
  if (fallback === undefined) throw new Error(`--${name} is required`);
  return fallback;
}

export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}
