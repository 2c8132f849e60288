/**
 * Creating an output folder (and its missing parents) without the pitfalls of `mkdir -p` in Node:
 * - a path on a kernel file system (proc, sysfs, …) is refused up front: Node's recursive mkdir spins
 *   forever on /proc/X (each level answers ENOENT, so it keeps retrying the parent);
 * - each level is created by a plain, non-recursive mkdir, so the error names the level that failed
 *   and its real cause (a read-only mount says "read-only file system", not ENOENT).
 */
import { mkdir, stat, statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fsReason } from '../errors.js';

/** statfs magic numbers of file systems that are kernel interfaces, never a place for files. */
const KERNEL_FILE_SYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpf'],
  [0x6165676c, 'pstore'],
  [0x42494e4d, 'binfmt_misc'],
  [0xde5e81e4, 'efivarfs'],
  [0x73727279, 'configfs'],
]);

/** A folder that cannot be created or used; the message names the folder and the cause. */
export class FolderError extends Error {
  constructor(
    readonly folder: string,
    readonly reason: string,
  ) {
    super(`${folder}: ${reason}`);
    this.name = 'FolderError';
  }
}

/** The name of the kernel file system holding `path` (an existing path), or null for an ordinary one. */
export async function kernelFileSystemOf(path: string): Promise<string | null> {
  const info = await statfs(path).catch(() => null);
  if (info === null) return null;
  return KERNEL_FILE_SYSTEMS.get(Number(info.type)) ?? null;
}

/** Creates `folder` and its missing parents; refuses kernel file systems; errors name the real cause. */
export async function makeFolder(folder: string): Promise<void> {
  const target = resolve(folder);
  const missing: string[] = [];
  let existing = target;
  for (;;) {
    const info = await stat(existing).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' || err.code === 'ENOTDIR' ? null : err));
    if (info instanceof Error) throw new FolderError(existing, `cannot be checked: ${fsReason(info)}`);
    if (info !== null) {
      if (!info.isDirectory()) throw new FolderError(existing, 'is a file, not a folder');
      break;
    }
    missing.push(existing);
    const parent = dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  const kernel = await kernelFileSystemOf(existing);
  if (kernel !== null) throw new FolderError(target, `lies on the ${kernel} file system (${existing}), a kernel interface where no files can be written`);
  for (const level of missing.reverse()) {
    try {
      await mkdir(level);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && (await stat(level).catch(() => null))?.isDirectory()) continue;
      throw new FolderError(level, `cannot create the folder: ${fsReason(err)}`);
    }
  }
}
