/**
 * Named float32 tensors on disk, without TF.js: `<dir>/<name>.json` (manifest: format, version, kind,
 * config, package version, extra such as calibration, tensor table) + `<dir>/<name>.bin` (the tensors,
 * little-endian float32, concatenated in sorted-name order). The binary is written first and both
 * writes are atomic, so a manifest on disk always has its complete binary. Model weights
 * (src/models/weights.ts) and the baselines' statistics share this format.
 */
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { InputFileError } from '../errors.js';
import { atomicWriteFile } from './atomic.js';

export const BUNDLE_FORMAT = 'moodlsr-weights';
export const BUNDLE_FORMAT_VERSION = 1;

export interface TensorEntry {
  name: string;
  shape: number[];
  dtype: 'float32';
  /** Byte offset in the .bin file. */
  offset: number;
  /** Byte length in the .bin file. */
  length: number;
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  formatVersion: number;
  kind: string;
  packageVersion: string;
  config: unknown;
  extra?: Record<string, unknown>;
  tensors: TensorEntry[];
}

export interface HostTensor {
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

export interface TensorBundle {
  readonly kind: string;
  readonly config: unknown;
  readonly extra?: Record<string, unknown>;
  readonly tensors: ReadonlyMap<string, HostTensor>;
  readonly packageVersion: string;
}

export function manifestPath(dir: string, name: string): string {
  return join(dir, `${name}.json`);
}

export function binaryPath(dir: string, name: string): string {
  return join(dir, `${name}.bin`);
}

let cachedVersion: string | null = null;

/** Version of the moodlsr package (package.json two levels above src/io or dist/src/io). */
export function packageVersion(): string {
  if (cachedVersion !== null) return cachedVersion;
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'moodlsr' && typeof pkg.version === 'string') return (cachedVersion = pkg.version);
    } catch {
      // try the next candidate
    }
  }
  return (cachedVersion = 'unknown');
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export interface BundleContent {
  readonly kind: string;
  readonly config: unknown;
  readonly extra?: Record<string, unknown>;
  readonly tensors: ReadonlyMap<string, HostTensor>;
}

/** The manifest text and binary of a bundle; tensors in sorted-name order. */
export function encodeTensorBundle(bundle: BundleContent): { manifestText: string; binary: Uint8Array } {
  const names = [...bundle.tensors.keys()].sort();
  const entries: TensorEntry[] = [];
  let offset = 0;
  for (const tensorName of names) {
    const t = bundle.tensors.get(tensorName)!;
    if (t.values.length !== sizeOf(t.shape)) {
      throw new RangeError(`tensor ${tensorName}: ${t.values.length} values for shape [${t.shape.join(', ')}]`);
    }
    entries.push({ name: tensorName, shape: [...t.shape], dtype: 'float32', offset, length: 4 * t.values.length });
    offset += 4 * t.values.length;
  }
  const binary = new Uint8Array(offset);
  const view = new DataView(binary.buffer);
  for (const e of entries) {
    const values = bundle.tensors.get(e.name)!.values;
    for (let i = 0; i < values.length; i++) view.setFloat32(e.offset + 4 * i, values[i]!, true);
  }
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    formatVersion: BUNDLE_FORMAT_VERSION,
    kind: bundle.kind,
    packageVersion: packageVersion(),
    config: bundle.config,
    ...(bundle.extra !== undefined ? { extra: bundle.extra } : {}),
    tensors: entries,
  };
  return { manifestText: `${JSON.stringify(manifest, null, 1)}\n`, binary };
}

/** Writes `<dir>/<name>.bin` then `<dir>/<name>.json`, each atomically. Returns the two paths. */
export async function writeTensorBundle(dir: string, name: string, bundle: BundleContent): Promise<{ manifest: string; binary: string }> {
  const { manifestText, binary } = encodeTensorBundle(bundle);
  const files = { manifest: manifestPath(dir, name), binary: binaryPath(dir, name) };
  await mkdir(dir, { recursive: true });
  await atomicWriteFile(files.binary, binary);
  await atomicWriteFile(files.manifest, manifestText);
  return files;
}

/** Parses and checks a manifest; every problem is an InputFileError naming the file. */
export function parseBundleManifest(file: string, text: string): BundleManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InputFileError(file, `weights manifest is not valid JSON (${(err as Error).message})`);
  }
  const m = raw as Partial<BundleManifest>;
  if (m === null || typeof m !== 'object' || m.format !== BUNDLE_FORMAT) throw new InputFileError(file, `not a ${BUNDLE_FORMAT} manifest`);
  if (m.formatVersion !== BUNDLE_FORMAT_VERSION) {
    throw new InputFileError(file, `weights format version ${m.formatVersion} is not supported (expected ${BUNDLE_FORMAT_VERSION})`);
  }
  if (typeof m.kind !== 'string' || !Array.isArray(m.tensors)) throw new InputFileError(file, 'manifest lacks kind or tensors');
  for (const t of m.tensors) {
    const ok =
      t && typeof t.name === 'string' && Array.isArray(t.shape) && t.shape.every((d) => Number.isInteger(d) && d >= 0) &&
      t.dtype === 'float32' && Number.isInteger(t.offset) && t.length === 4 * sizeOf(t.shape);
    if (!ok) throw new InputFileError(file, `bad tensor entry ${JSON.stringify(t)}`);
  }
  return m as BundleManifest;
}

/** Reads a bundle (synchronously: weights are small); with `expectedKind`, a bundle of another kind is refused. */
export function readTensorBundle(dir: string, name: string, expectedKind?: string): TensorBundle {
  const file = manifestPath(dir, name);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputFileError(file, `cannot read weights manifest (${(err as Error).message})`);
  }
  const m = parseBundleManifest(file, text);
  if (expectedKind !== undefined && m.kind !== expectedKind) throw new InputFileError(file, `holds a '${m.kind}' model, expected '${expectedKind}'`);
  const binFile = binaryPath(dir, name);
  let bytes: Buffer;
  try {
    bytes = readFileSync(binFile);
  } catch (err) {
    throw new InputFileError(binFile, `cannot read weights binary (${(err as Error).message})`);
  }
  return decodeTensorBundle(m, file, binFile, bytes);
}

/** The tensors of a checked manifest from its binary; a size mismatch names the binary file. */
export function decodeTensorBundle(m: BundleManifest, manifestFile: string, binFile: string, bytes: Uint8Array): TensorBundle {
  const expectedBytes = m.tensors.reduce((end, t) => Math.max(end, t.offset + t.length), 0);
  if (bytes.byteLength !== expectedBytes) {
    throw new InputFileError(binFile, `has ${bytes.byteLength} bytes, the manifest ${basename(manifestFile)} describes ${expectedBytes}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tensors = new Map<string, HostTensor>();
  for (const t of m.tensors) {
    const values = new Float32Array(t.length / 4);
    for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(t.offset + 4 * i, true);
    tensors.set(t.name, { shape: t.shape, values });
  }
  return { kind: m.kind, config: m.config, ...(m.extra !== undefined ? { extra: m.extra } : {}), tensors, packageVersion: m.packageVersion };
}
