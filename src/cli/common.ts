import { InvalidArgumentError } from 'commander';

/**
 * An integer option: decimal digits with an optional sign, exactly representable (|n| ≤ 2^53 − 1);
 * an empty value, a fraction or a number that would lose precision is refused, never rounded.
 */
export function parseInteger(name: string, min = Number.MIN_SAFE_INTEGER): (value: string) => number {
  const range = min <= Number.MIN_SAFE_INTEGER ? `an integer between ${Number.MIN_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}` : `an integer ≥ ${min}`;
  return (value: string) => {
    const n = Number(value);
    if (!/^\s*[+-]?\d+\s*$/.test(value)) throw new InvalidArgumentError(`${name} must be ${range}, got "${value}"`);
    if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be ${range}; "${value}" is too large to be kept exactly`);
    if (n < min) throw new InvalidArgumentError(`${name} must be ${range}, got "${value}"`);
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
