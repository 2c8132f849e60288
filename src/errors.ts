/** An input file that cannot be used; the message always names the file and the reason. */
export class InputFileError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'InputFileError';
  }
}

/** One line for a log: the message of a known error, or name + message of anything else. */
export function describeError(err: unknown): string {
  if (err instanceof InputFileError) return err.message;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
