/**
 * `moodlsr weights checksum`: records the SHA-256 of each bundle's binary in its manifest (bundles
 * written before checksums existed), or with `check` only verifies them. Every bundle is read and
 * checked before the first manifest is rewritten, so a damaged binary leaves the folder untouched:
 * a checksum is only ever recorded for bytes that pass the manifest's own size checks.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fsReason, InputFileError } from '../errors.js';
import { atomicWriteFile } from './atomic.js';
import { isBundleManifest } from './weights-pack.js';
import { BUNDLE_FORMAT, binaryPath, decodeTensorBundle, manifestPath, parseBundleManifest, withChecksum } from './tensor-bundle.js';

export interface ChecksumReport {
  /** Manifests (relative paths) that got a checksum (or, with `check`, lack one). */
  readonly added: string[];
  /** Manifests whose recorded checksum matches their binary. */
  readonly verified: string[];
}

interface Planned {
  readonly rel: string;
  readonly file: string;
  readonly text: string | null;
}

async function plan(dir: string, prefix: string, recursive: boolean, out: Planned[]): Promise<void> {
  let entries: string[];
  try {
    entries = (await readdir(dir)).sort();
  } catch (err) {
    throw new InputFileError(dir, `cannot list the weights folder: ${fsReason(err)}`);
  }
  for (const entry of entries) {
    const path = join(dir, entry);
    const info = await stat(path).catch(() => null);
    if (info?.isDirectory()) {
      if (recursive) await plan(path, `${prefix}${entry}/`, recursive, out);
      continue;
    }
    if (!info?.isFile() || !entry.endsWith('.json')) continue;
    const text = await readFile(path, 'utf8');
    if (!isBundleManifest(text)) continue;
    const name = entry.slice(0, -'.json'.length);
    const manifest = parseBundleManifest(path, text);
    let bytes: Buffer;
    try {
      bytes = await readFile(binaryPath(dir, name));
    } catch (err) {
      throw new InputFileError(binaryPath(dir, name), `cannot read weights binary: ${fsReason(err)}`);
    }
    // size checks, and the checksum check when one is recorded (a mismatch throws, naming the binary)
    decodeTensorBundle(manifest, path, binaryPath(dir, name), bytes, { warnUnchecked: false });
    const file = manifestPath(dir, name);
    out.push({ rel: `${prefix}${entry}`, file, text: manifest.binarySha256 === undefined ? withChecksum(manifest, bytes) : null });
  }
}

export async function checksumWeightsFolder(dir: string, options: { recursive?: boolean; check?: boolean } = {}): Promise<ChecksumReport> {
  const info = await stat(dir).catch(() => null);
  if (info === null || !info.isDirectory()) throw new InputFileError(dir, 'is not a folder');
  const planned: Planned[] = [];
  await plan(dir, '', options.recursive === true, planned);
  if (planned.length === 0) throw new InputFileError(dir, `holds no ${BUNDLE_FORMAT} manifest (*.json)${options.recursive ? '' : ' at its top level'}`);
  if (!options.check) for (const p of planned) if (p.text !== null) await atomicWriteFile(p.file, p.text);
  return { added: planned.filter((p) => p.text !== null).map((p) => p.rel), verified: planned.filter((p) => p.text === null).map((p) => p.rel) };
}
