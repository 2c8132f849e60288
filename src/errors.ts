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

/** Plain words for the errno codes a user meets; the code stays in brackets for searching. */
const ERRNO_WORDS: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'is a folder, not a file',
  EEXIST: 'already exists',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EMFILE: 'too many open files',
  EIO: 'input/output error of the device',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many levels of symbolic links',
  ENOTEMPTY: 'folder not empty',
  EXDEV: 'crosses file systems',
};

interface ErrnoLike {
  code?: unknown;
  syscall?: unknown;
  path?: unknown;
}

/** The reason of a file-system error in words ("read-only file system (EROFS)"); other errors: their message. */
export function fsReason(err: unknown): string {
  const code = (err as ErrnoLike | null)?.code;
  if (typeof code === 'string' && code in ERRNO_WORDS) return `${ERRNO_WORDS[code]} (${code})`;
  return err instanceof Error ? err.message : String(err);
}

/** Error classes that mean a bug rather than a user's mistake: their name stays in the message. */
const PROGRAMMING_ERRORS = new Set(['TypeError', 'ReferenceError']);

/**
 * One line for a log: the message of an error, without internal class prefixes; a file-system error
 * as "cannot <syscall> <path>: <reason in words> (<code>)". Bugs (TypeError, ReferenceError) keep their class name.
 */
export function describeError(err: unknown): string {
  if (err instanceof InputFileError) return err.message;
  if (!(err instanceof Error)) return String(err);
  const e = err as Error & ErrnoLike;
  if (typeof e.code === 'string' && e.code in ERRNO_WORDS && typeof e.syscall === 'string' && e.message.startsWith(`${e.code}:`)) {
    return `cannot ${e.syscall}${typeof e.path === 'string' ? ` ${e.path}` : ''}: ${fsReason(e)}`;
  }
  if (PROGRAMMING_ERRORS.has(e.name)) return `internal error: ${e.name}: ${e.message}`;
  return e.message || e.name;
}
