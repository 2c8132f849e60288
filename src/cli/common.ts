import { InvalidArgumentError } from 'commander';

export function parseInteger(name: string, min = -Infinity): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got "${value}"`);
    return n;
  };
}

export function parseNumber(name: string, min = -Infinity, max = Infinity): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number in [${min}, ${max}], got "${value}"`);
    return n;
  };
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Log lines go to stderr so that stdout stays machine-readable (JSON, paths). */
export function stderrLog(prefix: string): (line: string) => void {
  return (line: string) => process.stderr.write(`${prefix}${line}\n`);
}
