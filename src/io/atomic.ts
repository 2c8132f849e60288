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
 *   atomicWriteFileSync(path, bytes | text)    the same, synchronously
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
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

/** Synchronous `atomicWriteFile`, for code paths that are synchronous throughout. */
export function atomicWriteFileSync(path: string, content: Uint8Array | string): void {
  const tmp = tempPathFor(path);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
      let written = 0;
      while (written < bytes.byteLength) written += writeSync(fd, bytes, written, bytes.byteLength - written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
