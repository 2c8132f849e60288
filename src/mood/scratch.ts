/**
 * The scratch folder of a `predict` run: OUT/.moodlsr-tmp-XXXXXX, unique per run (shards on several hosts
 * may share OUT). Every temporary file of the run lives in it — outputs are written there and renamed into
 * OUT when complete — so removing this one folder removes everything a run leaves behind.
 *
 * The folder holds `owner.json` ({host, pid}), touched after every case. A later run removes scratch
 * folders whose owner is gone: same host and the process no longer exists, or no sign of life for a day
 * (a run killed with SIGKILL on another host or in a container that is gone).
 */
import { hostname } from 'node:os';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Scratch folders are OUT/<prefix><random>. */
export const SCRATCH_PREFIX = '.moodlsr-tmp-';
const OWNER_FILE = 'owner.json';
/** A scratch folder whose owner file was not touched for this long belongs to a dead run. */
export const STALE_AFTER_MS = 24 * 3600 * 1000;

interface Owner {
  readonly host: string;
  readonly pid: number;
}

export async function createScratch(outDir: string): Promise<string> {
  const dir = await mkdtemp(join(outDir, SCRATCH_PREFIX));
  const owner: Owner = { host: hostname(), pid: process.pid };
  await writeFile(join(dir, OWNER_FILE), `${JSON.stringify(owner)}\n`);
  return dir;
}

/** Marks the scratch folder as alive (its owner file's time); failures are ignored. */
export async function touchScratch(dir: string): Promise<void> {
  const now = new Date();
  await utimes(join(dir, OWNER_FILE), now, now).catch(() => undefined);
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function isStale(dir: string, nowMs: number): Promise<boolean> {
  const ownerFile = join(dir, OWNER_FILE);
  const info = await stat(ownerFile).catch(() => null);
  // no owner file: a run of an older version, or one killed between mkdtemp and the write
  const lastSign = info?.mtimeMs ?? (await stat(dir).catch(() => null))?.mtimeMs;
  if (lastSign === undefined) return false;
  if (nowMs - lastSign > STALE_AFTER_MS) return true;
  if (info === null) return false;
  try {
    const owner = JSON.parse(await readFile(ownerFile, 'utf8')) as Partial<Owner>;
    return owner.host === hostname() && Number.isInteger(owner.pid) && owner.pid !== process.pid && !processExists(owner.pid!);
  } catch {
    return false;
  }
}

/** Removes the scratch folders of dead runs in `outDir`; returns their names. */
export async function removeStaleScratch(outDir: string, nowMs = Date.now()): Promise<string[]> {
  const entries = await readdir(outDir, { withFileTypes: true }).catch(() => []);
  const removed: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory() || !e.name.startsWith(SCRATCH_PREFIX)) continue;
    const dir = join(outDir, e.name);
    if (!(await isStale(dir, nowMs))) continue;
    await rm(dir, { recursive: true, force: true }).then(
      () => removed.push(e.name),
      () => undefined,
    );
  }
  return removed;
}
