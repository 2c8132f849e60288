/**
 * Atomic file writes: the target path either keeps its old content or gets the complete new one,
 * never a half-written file (a crash, a full disk or a thrown error leaves no partial output).
 *
 * The bytes go to `<path>.<random>.tmp` in the same folder (same file system, so the final
 * `rename` is atomic), are flushed to disk, and then renamed over `path`. On any failure the
 * temp file is removed and the error is rethrown. The random suffix only keeps concurrent
 * writers apart; it never affects the written bytes.
 *
 *   atomicWriteFile(path, bytes | text)        one-shot write of a buffer or a UTF-8 string
 *   withAtomicFile(path, async (tmp) => {...}) the caller streams into `tmp` itself
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';

/** The temp path used for an atomic write of `path`: same folder, unique suffix. */
export function tempPathFor(path: string): string {
  return `${path}.${randomBytes(6).toString('hex')}.tmp`;
}

/**
 * Runs `write(tmpPath)`, which must create and fill the temp file, then flushes it to disk and
 * renames it over `path`. If `write`, the flush or the rename throws, the temp file is removed.
 */
export async function withAtomicFile(path: string, write: (tmpPath: string) => Promise<void>): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    await write(tmp);
    await flushToDisk(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** Writes `content` (bytes, or text as UTF-8) to `path` atomically. */
export async function atomicWriteFile(path: string, content: Uint8Array | string): Promise<void> {
  await withAtomicFile(path, async (tmp) => {
    const handle = await open(tmp, 'wx');
    try {
      await handle.writeFile(content);
    } finally {
      await handle.close();
    }
  });
}

async function flushToDisk(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
