/**
 * Re-encodes a folder of weights bundles with another storage dtype (`moodlsr weights pack`):
 * every `*.json` that is a moodlsr-weights manifest (network weights, z-score statistics, …) is read,
 * its tensors written again as float16 or float32 into the target folder (binary first, both atomic),
 * and every other regular file is copied unchanged. Sub-folders are packed the same way only with
 * `recursive`. Each bundle's rounding error is measured on what a reader of the new files gets.
 */
import { readdir, readFile, mkdir, realpath, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { fsReason, InputFileError } from '../errors.js';
import { atomicWriteFile } from './atomic.js';
import { FLOAT16_MIN_NORMAL } from './float16.js';
import {
  BUNDLE_FORMAT,
  binaryPath,
  decodeTensorBundle,
  encodeTensorBundle,
  manifestPath,
  parseBundleManifest,
  readTensorBundle,
  type BundleDtype,
} from './tensor-bundle.js';

export interface PackedBundle {
  /** Manifest path relative to the source folder, e.g. `vqvae.json` or `training/lsr/vqvae.json`. */
  readonly file: string;
  readonly kind: string;
  /** .json + .bin bytes, before and after. */
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  readonly values: number;
  readonly maxAbsError: number;
  /** Largest |packed − original| / |original| over the values with |original| ≥ 2^-14 (float16's normal range). */
  readonly maxRelError: number;
  /** Non-zero values with |x| < 2^-14: float16 keeps them as subnormals (or 0) with absolute error ≤ 2^-25. */
  readonly tinyValues: number;
}

export interface PackReport {
  readonly dtype: BundleDtype;
  readonly bundles: PackedBundle[];
  /** Other files copied unchanged (relative paths). */
  readonly copied: string[];
  /** Sub-folders left out (without `recursive`) and entries that are not regular files. */
  readonly skipped: string[];
}

export interface PackOptions {
  readonly from: string;
  readonly to: string;
  readonly dtype: BundleDtype;
  readonly recursive?: boolean;
}

export interface RoundingError {
  maxAbsError: number;
  maxRelError: number;
  tinyValues: number;
}

/** How far `packed` is from `original` (same length); NaN ↔ NaN and equal infinities count as exact. */
export function measureRounding(original: Float32Array, packed: Float32Array, into?: RoundingError): RoundingError {
  const acc = into ?? { maxAbsError: 0, maxRelError: 0, tinyValues: 0 };
  for (let i = 0; i < original.length; i++) {
    const a = original[i]!;
    const b = packed[i]!;
    const magnitude = Math.abs(a);
    if (a !== 0 && magnitude < FLOAT16_MIN_NORMAL) acc.tinyValues++;
    if (a === b || (Number.isNaN(a) && Number.isNaN(b))) continue;
    const err = Math.abs(a - b);
    if (err > acc.maxAbsError || Number.isNaN(err)) acc.maxAbsError = err;
    if (magnitude >= FLOAT16_MIN_NORMAL && err / magnitude > acc.maxRelError) acc.maxRelError = err / magnitude;
  }
  return acc;
}

async function realOrResolved(p: string): Promise<string> {
  return realpath(p).catch(() => resolve(p));
}

/** Whether `text` is a moodlsr-weights manifest (anything else, JSON or not, is an ordinary file). */
export function isBundleManifest(text: string): boolean {
  try {
    const raw = JSON.parse(text) as { format?: unknown } | null;
    return raw !== null && typeof raw === 'object' && raw.format === BUNDLE_FORMAT;
  } catch {
    return false;
  }
}

interface PlannedBundle {
  readonly report: PackedBundle;
  readonly toDir: string;
  readonly name: string;
  readonly manifestText: string;
  readonly binary: Uint8Array;
}

interface PlannedCopy {
  readonly rel: string;
  readonly source: string;
  readonly target: string;
}

interface Plan {
  readonly bundles: PlannedBundle[];
  readonly copies: PlannedCopy[];
  readonly folders: string[];
  readonly skipped: string[];
}

/** Reads a bundle, encodes it with `dtype` and measures the rounding on the decoded new bytes. */
async function encodeBundle(fromDir: string, toDir: string, name: string, rel: string, dtype: BundleDtype): Promise<PlannedBundle> {
  const source = readTensorBundle(fromDir, name);
  const sourceFile = manifestPath(fromDir, name);
  const bytesBefore = (await stat(sourceFile)).size + (await stat(binaryPath(fromDir, name))).size;
  let encoded: { manifestText: string; binary: Uint8Array };
  try {
    encoded = encodeTensorBundle(
      { kind: source.kind, config: source.config, ...(source.extra !== undefined ? { extra: source.extra } : {}), tensors: source.tensors },
      { dtype },
    );
  } catch (err) {
    throw new InputFileError(sourceFile, (err as Error).message);
  }
  // Read the new bytes back exactly as a loader will, so the reported error is the one users get.
  const targetFile = manifestPath(toDir, name);
  const packed = decodeTensorBundle(parseBundleManifest(targetFile, encoded.manifestText), targetFile, binaryPath(toDir, name), encoded.binary);
  const error: RoundingError = { maxAbsError: 0, maxRelError: 0, tinyValues: 0 };
  let values = 0;
  for (const [tensorName, t] of source.tensors) {
    measureRounding(t.values, packed.tensors.get(tensorName)!.values, error);
    values += t.values.length;
  }
  const report: PackedBundle = {
    file: rel,
    kind: source.kind,
    bytesBefore,
    bytesAfter: encoded.binary.byteLength + Buffer.byteLength(encoded.manifestText, 'utf8'),
    values,
    ...error,
  };
  return { report, toDir, name, ...encoded };
}

async function planFolder(fromDir: string, toDir: string, prefix: string, options: PackOptions, plan: Plan): Promise<void> {
  let entries: string[];
  try {
    entries = (await readdir(fromDir)).sort();
  } catch (err) {
    throw new InputFileError(fromDir, `cannot list the weights folder: ${fsReason(err)}`);
  }
  plan.folders.push(toDir);
  const bundleNames: string[] = [];
  const others: string[] = [];
  for (const entry of entries) {
    const path = join(fromDir, entry);
    const info = await stat(path).catch(() => null);
    if (info?.isDirectory()) {
      if (options.recursive) await planFolder(path, join(toDir, entry), `${prefix}${entry}/`, options, plan);
      else plan.skipped.push(`${prefix}${entry}/`);
    } else if (!info?.isFile()) {
      plan.skipped.push(`${prefix}${entry}`);
    } else if (entry.endsWith('.json') && isBundleManifest(await readFile(path, 'utf8'))) {
      bundleNames.push(entry.slice(0, -'.json'.length));
    } else {
      others.push(entry);
    }
  }
  for (const name of bundleNames) {
    plan.bundles.push(await encodeBundle(fromDir, toDir, name, `${prefix}${name}.json`, options.dtype));
  }
  for (const entry of others) {
    if (entry.endsWith('.bin') && bundleNames.includes(entry.slice(0, -'.bin'.length))) continue;
    plan.copies.push({ rel: `${prefix}${entry}`, source: join(fromDir, entry), target: join(toDir, entry) });
  }
}

/**
 * Packs `from` into `to` (created if missing). Every bundle is read, checked and encoded before the
 * first file is written, so a bad bundle (unreadable, out of float16 range) leaves `to` untouched.
 */
export async function packWeightsFolder(options: PackOptions): Promise<PackReport> {
  const fromInfo = await stat(options.from).catch(() => null);
  if (fromInfo === null || !fromInfo.isDirectory()) throw new InputFileError(options.from, 'is not a folder');
  const from = await realOrResolved(options.from);
  const to = await realOrResolved(options.to);
  if (from === to) throw new InputFileError(options.to, 'is the source folder itself; pack into another folder (--to ≠ --from)');
  if (options.recursive && to.startsWith(`${from}${sep}`)) {
    throw new InputFileError(options.to, 'lies inside the source folder, which is packed recursively; pick a folder outside it');
  }
  const plan: Plan = { bundles: [], copies: [], folders: [], skipped: [] };
  await planFolder(options.from, options.to, '', options, plan);
  if (plan.bundles.length === 0) {
    throw new InputFileError(options.from, `holds no ${BUNDLE_FORMAT} manifest (*.json)${options.recursive ? '' : ' at its top level'}`);
  }
  for (const folder of plan.folders) await mkdir(folder, { recursive: true });
  for (const b of plan.bundles) {
    await atomicWriteFile(binaryPath(b.toDir, b.name), b.binary);
    await atomicWriteFile(manifestPath(b.toDir, b.name), b.manifestText);
  }
  for (const c of plan.copies) {
    let bytes: Buffer;
    try {
      bytes = await readFile(c.source);
    } catch (err) {
      throw new InputFileError(c.source, `cannot read: ${fsReason(err)}`);
    }
    await atomicWriteFile(c.target, bytes);
  }
  return { dtype: options.dtype, bundles: plan.bundles.map((b) => b.report), copied: plan.copies.map((c) => c.rel), skipped: plan.skipped };
}
