/**
 * Named float32 tensors on disk, without TF.js: `<dir>/<name>.json` (manifest: format, version, kind,
 * config, package version, extra such as calibration, tensor table) + `<dir>/<name>.bin` (the tensors,
 * little-endian, concatenated in sorted-name order). The binary is written first and both
 * writes are atomic, so a manifest on disk always has its complete binary. Model weights
 * (src/models/weights.ts) and the baselines' statistics share this format.
 *
 * Each tensor entry names its storage dtype: 'float32' (4 bytes a value) or 'float16' (IEEE 754
 * binary16, 2 bytes a value, for shipped weights: `moodlsr weights pack`). float16 values are widened
 * to float32 on read, so callers always get Float32Array. The format version stayed 1 when float16
 * was added: float32-only files read as before, but a float16 entry needs a reader from this version
 * of the package on (an older one refuses it as a bad tensor entry).
 *
 * Integrity: the manifest records `binarySha256`, the SHA-256 of the .bin file, and every read checks it,
 * so a damaged or altered binary of the right size (one flipped bit) is refused with a clear error instead
 * of silently changing scores. Bundles written before the checksum existed still load, with a one-time
 * warning naming the command that adds it (`moodlsr weights checksum --dir DIR`, src/io/weights-checksum.ts).
 * Older readers ignore the extra field.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fsReason, InputFileError } from '../errors.js';
import { atomicWriteFile } from './atomic.js';
import { FLOAT16_MAX, firstOutOfFloat16Range, readFloat16Array, writeFloat16Array } from './float16.js';

export const BUNDLE_FORMAT = 'moodlsr-weights';
export const BUNDLE_FORMAT_VERSION = 1;

/** How a tensor's values are stored in the .bin file. */
export type BundleDtype = 'float32' | 'float16';
export const BUNDLE_DTYPES: readonly BundleDtype[] = ['float32', 'float16'];

/** Bytes per stored value. */
export function bytesPerValue(dtype: BundleDtype): number {
  return dtype === 'float16' ? 2 : 4;
}

export interface TensorEntry {
  name: string;
  shape: number[];
  dtype: BundleDtype;
  /** Byte offset in the .bin file. */
  offset: number;
  /** Byte length in the .bin file: size × 4 (float32) or size × 2 (float16). */
  length: number;
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  formatVersion: number;
  kind: string;
  packageVersion: string;
  config: unknown;
  extra?: Record<string, unknown>;
  /** SHA-256 of the .bin file, lowercase hex; absent in bundles written before checksums existed. */
  binarySha256?: string;
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

export interface EncodeOptions {
  /** Storage dtype of every tensor (default float32). float16 refuses finite values with |x| > 65504. */
  readonly dtype?: BundleDtype;
}

/** The manifest text and binary of a bundle; tensors in sorted-name order. */
export function encodeTensorBundle(bundle: BundleContent, options: EncodeOptions = {}): { manifestText: string; binary: Uint8Array } {
  const dtype = options.dtype ?? 'float32';
  if (!BUNDLE_DTYPES.includes(dtype)) throw new RangeError(`unknown tensor dtype '${String(dtype)}' (float32 or float16)`);
  const width = bytesPerValue(dtype);
  const names = [...bundle.tensors.keys()].sort();
  const entries: TensorEntry[] = [];
  let offset = 0;
  for (const tensorName of names) {
    const t = bundle.tensors.get(tensorName)!;
    if (t.values.length !== sizeOf(t.shape)) {
      throw new RangeError(`tensor ${tensorName}: ${t.values.length} values for shape [${t.shape.join(', ')}]`);
    }
    if (dtype === 'float16') {
      const bad = firstOutOfFloat16Range(t.values);
      if (bad >= 0) {
        throw new RangeError(
          `tensor ${tensorName}: value ${t.values[bad]} at index ${bad} is outside the float16 range (|x| ≤ ${FLOAT16_MAX}); keep this bundle float32`,
        );
      }
    }
    entries.push({ name: tensorName, shape: [...t.shape], dtype, offset, length: width * t.values.length });
    offset += width * t.values.length;
  }
  const binary = new Uint8Array(offset);
  const view = new DataView(binary.buffer);
  for (const e of entries) {
    const values = bundle.tensors.get(e.name)!.values;
    if (dtype === 'float16') writeFloat16Array(view, e.offset, values);
    else for (let i = 0; i < values.length; i++) view.setFloat32(e.offset + 4 * i, values[i]!, true);
  }
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    formatVersion: BUNDLE_FORMAT_VERSION,
    kind: bundle.kind,
    packageVersion: packageVersion(),
    config: bundle.config,
    ...(bundle.extra !== undefined ? { extra: bundle.extra } : {}),
    binarySha256: sha256Hex(binary),
    tensors: entries,
  };
  return { manifestText: `${JSON.stringify(manifest, null, 1)}\n`, binary };
}

/** Writes `<dir>/<name>.bin` then `<dir>/<name>.json`, each atomically. Returns the two paths. */
export async function writeTensorBundle(
  dir: string,
  name: string,
  bundle: BundleContent,
  options: EncodeOptions = {},
): Promise<{ manifest: string; binary: string }> {
  const { manifestText, binary } = encodeTensorBundle(bundle, options);
  const files = { manifest: manifestPath(dir, name), binary: binaryPath(dir, name) };
  await mkdir(dir, { recursive: true });
  await atomicWriteFile(files.binary, binary);
  await atomicWriteFile(files.manifest, manifestText);
  return files;
}

/** SHA-256 of bytes, lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The manifest text with `binarySha256` set (before the tensor table, as the writer puts it). */
export function withChecksum(m: BundleManifest, binary: Uint8Array): string {
  const { tensors, binarySha256: _old, ...head } = m;
  void _old;
  return `${JSON.stringify({ ...head, binarySha256: sha256Hex(binary), tensors }, null, 1)}\n`;
}

const warnedUnchecked = new Set<string>();

/** Called once per file for bundles without a checksum; default: one line on stderr. */
let uncheckedWarning = (manifestFile: string): void => {
  process.stderr.write(
    `moodlsr: warning: ${manifestFile} has no checksum (written by an older moodlsr), so damage to its binary cannot be detected; ` +
      `add one with: moodlsr weights checksum --dir ${dirname(manifestFile)}\n`,
  );
};

/** Replaces the warning for bundles without a checksum (tests, callers with their own log). */
export function onUncheckedBundle(warn: (manifestFile: string) => void): void {
  uncheckedWarning = warn;
}

function tensorEntryProblem(t: Partial<TensorEntry> | null): string | null {
  if (t === null || typeof t !== 'object' || typeof t.name !== 'string') return 'no name';
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) return 'shape is not a list of sizes';
  if (!BUNDLE_DTYPES.includes(t.dtype as BundleDtype)) return `dtype must be ${BUNDLE_DTYPES.join(' or ')}`;
  if (!Number.isInteger(t.offset) || t.offset! < 0) return 'offset is not a byte offset';
  const expected = bytesPerValue(t.dtype!) * sizeOf(t.shape);
  if (t.length !== expected) return `length must be ${expected} bytes for ${sizeOf(t.shape)} ${t.dtype} values`;
  return null;
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
  if (m.binarySha256 !== undefined && (typeof m.binarySha256 !== 'string' || !/^[0-9a-f]{64}$/.test(m.binarySha256))) {
    throw new InputFileError(file, `binarySha256 must be 64 lowercase hex digits, got ${JSON.stringify(m.binarySha256)}`);
  }
  for (const t of m.tensors) {
    const problem = tensorEntryProblem(t);
    if (problem !== null) throw new InputFileError(file, `bad tensor entry ${JSON.stringify(t)}: ${problem}`);
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
    throw new InputFileError(file, `cannot read weights manifest: ${fsReason(err)}`);
  }
  const m = parseBundleManifest(file, text);
  if (expectedKind !== undefined && m.kind !== expectedKind) throw new InputFileError(file, `holds a '${m.kind}' model, expected '${expectedKind}'`);
  const binFile = binaryPath(dir, name);
  let bytes: Buffer;
  try {
    bytes = readFileSync(binFile);
  } catch (err) {
    throw new InputFileError(binFile, `cannot read weights binary: ${fsReason(err)}`);
  }
  return decodeTensorBundle(m, file, binFile, bytes);
}

/** The tensors of a checked manifest from its binary; a size mismatch names the binary file. */
export function decodeTensorBundle(
  m: BundleManifest,
  manifestFile: string,
  binFile: string,
  bytes: Uint8Array,
  options: { readonly warnUnchecked?: boolean } = {},
): TensorBundle {
  const expectedBytes = m.tensors.reduce((end, t) => Math.max(end, t.offset + t.length), 0);
  if (bytes.byteLength !== expectedBytes) {
    throw new InputFileError(binFile, `has ${bytes.byteLength} bytes, the manifest ${basename(manifestFile)} describes ${expectedBytes}`);
  }
  if (m.binarySha256 !== undefined) {
    const actual = sha256Hex(bytes);
    if (actual !== m.binarySha256) {
      throw new InputFileError(
        binFile,
        `checksum mismatch: SHA-256 ${actual.slice(0, 12)}…, the manifest ${basename(manifestFile)} records ${m.binarySha256.slice(0, 12)}…; ` +
          'the file is damaged or was changed after it was written: restore it (git checkout, a fresh copy) or retrain',
      );
    }
  } else if (options.warnUnchecked !== false && !warnedUnchecked.has(manifestFile)) {
    warnedUnchecked.add(manifestFile);
    uncheckedWarning(manifestFile);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tensors = new Map<string, HostTensor>();
  for (const t of m.tensors) {
    let values: Float32Array;
    if (t.dtype === 'float16') values = readFloat16Array(view, t.offset, t.length / 2);
    else {
      values = new Float32Array(t.length / 4);
      for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(t.offset + 4 * i, true);
    }
    tensors.set(t.name, { shape: t.shape, values });
  }
  return { kind: m.kind, config: m.config, ...(m.extra !== undefined ? { extra: m.extra } : {}), tensors, packageVersion: m.packageVersion };
}
