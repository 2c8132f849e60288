/**
 * The CLI as another (unprivileged) user can run it. Tests that run `moodlsr` as `nobody` need the
 * compiled CLI and its runtime packages readable by that user; a checkout under a private folder
 * (/root, a `mktemp -d`, any mode-0700 parent) is not. Then this makes a copy in a fresh folder under
 * the system temp dir: dist/, package.json and, from node_modules, only the packages that
 * `predict --method zscore` loads (commander, nifti-reader-js, seedrandom and what they depend on),
 * symbolic links resolved. The tests bring their own weights.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Packages the CLI imports at start-up and for z-score scoring (the network methods load more, lazily). */
const RUNTIME_PACKAGES = ['commander', 'nifti-reader-js', 'seedrandom'];

export interface UserInstall {
  /** Package root the user can read: the checkout itself, or a copy. */
  readonly root: string;
  /** Its node_modules folder. */
  readonly nodeModules: string;
  /** Removes the copy (no-op for the checkout itself). */
  dispose(): void;
}

function runsAs(uid: number, gid: number, cli: string): { ok: boolean; why: string } {
  const r = spawnSync(process.execPath, [cli, '--version'], { uid, gid, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: '/nonexistent' } });
  return { ok: r.status === 0, why: (r.stderr || String(r.error ?? '')).split('\n').find((l) => l.trim()) ?? `exit ${r.status}` };
}

/** Names of `pkg` and every package it depends on (dependencies and optional ones present), from node_modules. */
function closure(nodeModules: string, roots: readonly string[]): string[] {
  const seen = new Set<string>();
  const queue = [...roots];
  while (queue.length > 0) {
    const name = queue.pop()!;
    if (seen.has(name)) continue;
    const manifest = join(nodeModules, name, 'package.json');
    if (!existsSync(manifest)) continue;
    seen.add(name);
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { dependencies?: Record<string, string> };
    queue.push(...Object.keys(pkg.dependencies ?? {}));
  }
  return [...seen].sort();
}

/**
 * The checkout when `uid` can run its CLI, else a readable copy; `{ skip }` with the reason when neither
 * works (the caller then skips, naming it).
 */
export function installFor(packageRoot: string, uid: number, gid: number): UserInstall | { skip: string } {
  const cli = join(packageRoot, 'dist', 'src', 'cli.js');
  const direct = runsAs(uid, gid, cli);
  if (direct.ok) return { root: packageRoot, nodeModules: join(packageRoot, 'node_modules'), dispose: () => undefined };
  const copy = mkdtempSync(join(tmpdir(), 'moodlsr-user-install-'));
  chmodSync(copy, 0o755);
  const dispose = (): void => rmSync(copy, { recursive: true, force: true });
  cpSync(join(packageRoot, 'dist'), join(copy, 'dist'), { recursive: true, dereference: true });
  writeFileSync(join(copy, 'package.json'), readFileSync(join(packageRoot, 'package.json')));
  const source = join(packageRoot, 'node_modules');
  for (const name of closure(source, RUNTIME_PACKAGES)) {
    cpSync(join(source, name), join(copy, 'node_modules', name), { recursive: true, dereference: true });
  }
  const copied = runsAs(uid, gid, join(copy, 'dist', 'src', 'cli.js'));
  if (!copied.ok) {
    dispose();
    return { skip: `uid ${uid} cannot run the CLI from the checkout (${direct.why}) nor from a copy (${copied.why})` };
  }
  return { root: copy, nodeModules: join(copy, 'node_modules'), dispose };
}
