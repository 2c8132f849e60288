/**
 * Weights on disk: `<dir>/<name>.json` (manifest: format version, kind, config, package version,
 * extra data such as calibration, tensor table) + `<dir>/<name>.bin` (all tensors, float32,
 * little-endian, concatenated in table order). Both are written atomically (temp file in the same
 * folder + rename), the binary first, so a manifest on disk always has its complete binary.
 * Loading checks the config, and the tensor names/shapes against those the config implies.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputFileError } from '../errors.js';
import { validatePixelSnailConfig, validateVqvaeConfig } from './config.js';
import { describeMismatch, sizeOf, variableFrom, type ParamMap, type ParamSpec } from './params.js';
import { pixelsnailParamSpecs } from './pixelsnail.js';
import { vqvaeParamSpecs } from './vqvae.js';

export const WEIGHTS_FORMAT = 'moodlsr-weights';
export const WEIGHTS_FORMAT_VERSION = 1;

export interface TensorEntry {
  name: string;
  shape: number[];
  dtype: 'float32';
  /** Byte offset in the .bin file. */
  offset: number;
  /** Byte length in the .bin file. */
  length: number;
}

export interface WeightsManifest {
  format: typeof WEIGHTS_FORMAT;
  formatVersion: number;
  kind: string;
  packageVersion: string;
  config: unknown;
  extra?: Record<string, unknown>;
  tensors: TensorEntry[];
}

export interface ModelToSave {
  kind: string;
  config: unknown;
  params: ParamMap;
  /** Anything JSON-serialisable stored with the model (calibration, training summary, …). */
  extra?: Record<string, unknown>;
}

export interface LoadedModel<C = unknown> {
  kind: string;
  config: C;
  params: ParamMap;
  extra?: Record<string, unknown>;
  packageVersion: string;
}

/** How a model kind validates its config and lists the parameters the config implies. */
export interface ModelKindDefinition {
  validateConfig(raw: unknown): unknown;
  paramSpecs(config: never): ParamSpec[];
}

const kinds = new Map<string, ModelKindDefinition>([
  ['vqvae', { validateConfig: validateVqvaeConfig, paramSpecs: vqvaeParamSpecs as (c: never) => ParamSpec[] }],
  ['pixelsnail', { validateConfig: validatePixelSnailConfig, paramSpecs: pixelsnailParamSpecs as (c: never) => ParamSpec[] }],
]);

/** Lets other model families (VAE, transformer prior, …) get the same load-time validation. */
export function registerModelKind(kind: string, definition: ModelKindDefinition): void {
  kinds.set(kind, definition);
}

let cachedVersion: string | null = null;

/** Version of the moodlsr package, from the nearest package.json above this module. */
export function packageVersion(): string {
  if (cachedVersion !== null) return cachedVersion;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate)) {
      const pkg = JSON.parse(fs.readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'moodlsr' && typeof pkg.version === 'string') return (cachedVersion = pkg.version);
    }
    const parent = path.dirname(dir);
    if (parent === dir) return (cachedVersion = 'unknown');
    dir = parent;
  }
}

function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

function toLittleEndian(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (os.endianness() === 'LE') return bytes;
  const out = new Uint8Array(values.byteLength);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat32(4 * i, v, true));
  return out;
}

function fromLittleEndian(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

export function manifestPath(dir: string, name: string): string {
  return path.join(dir, `${name}.json`);
}

export function binaryPath(dir: string, name: string): string {
  return path.join(dir, `${name}.bin`);
}

/** Writes `<dir>/<name>.json` and `<dir>/<name>.bin`; tensors in sorted-name order. */
export function saveModel(dir: string, name: string, model: ModelToSave): { manifest: string; binary: string } {
  fs.mkdirSync(dir, { recursive: true });
  const names = Object.keys(model.params).sort();
  const chunks: Uint8Array[] = [];
  const tensors: TensorEntry[] = [];
  let offset = 0;
  for (const tensorName of names) {
    const v = model.params[tensorName]!;
    if (v.dtype !== 'float32') throw new Error(`cannot save ${tensorName}: dtype ${v.dtype} (only float32)`);
    const bytes = toLittleEndian(v.dataSync() as Float32Array);
    chunks.push(bytes);
    tensors.push({ name: tensorName, shape: [...v.shape], dtype: 'float32', offset, length: bytes.byteLength });
    offset += bytes.byteLength;
  }
  const binary = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) {
    binary.set(c, at);
    at += c.byteLength;
  }
  const manifest: WeightsManifest = {
    format: WEIGHTS_FORMAT,
    formatVersion: WEIGHTS_FORMAT_VERSION,
    kind: model.kind,
    packageVersion: packageVersion(),
    config: model.config,
    ...(model.extra !== undefined ? { extra: model.extra } : {}),
    tensors,
  };
  const files = { manifest: manifestPath(dir, name), binary: binaryPath(dir, name) };
  writeAtomic(files.binary, binary);
  writeAtomic(files.manifest, JSON.stringify(manifest, null, 1) + '\n');
  return files;
}

function readManifest(file: string): WeightsManifest {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputFileError(file, `cannot read weights manifest (${(err as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InputFileError(file, `weights manifest is not valid JSON (${(err as Error).message})`);
  }
  const m = raw as Partial<WeightsManifest>;
  if (m === null || typeof m !== 'object' || m.format !== WEIGHTS_FORMAT) {
    throw new InputFileError(file, `not a ${WEIGHTS_FORMAT} manifest`);
  }
  if (m.formatVersion !== WEIGHTS_FORMAT_VERSION) {
    throw new InputFileError(file, `weights format version ${m.formatVersion} is not supported (expected ${WEIGHTS_FORMAT_VERSION})`);
  }
  if (typeof m.kind !== 'string' || !Array.isArray(m.tensors)) throw new InputFileError(file, 'manifest lacks kind or tensors');
  for (const t of m.tensors) {
    const ok =
      t && typeof t.name === 'string' && Array.isArray(t.shape) && t.shape.every((d) => Number.isInteger(d) && d >= 0) &&
      t.dtype === 'float32' && Number.isInteger(t.offset) && t.length === 4 * sizeOf(t.shape);
    if (!ok) throw new InputFileError(file, `bad tensor entry ${JSON.stringify(t)}`);
  }
  return m as WeightsManifest;
}

/**
 * Loads `<dir>/<name>.json` + `.bin` into fresh variables on the current backend. With
 * `expectedKind`, a manifest of another kind is refused. Errors name the file and the problem.
 */
export function loadModel<C = unknown>(dir: string, name: string, expectedKind?: string): LoadedModel<C> {
  const file = manifestPath(dir, name);
  const m = readManifest(file);
  if (expectedKind !== undefined && m.kind !== expectedKind) {
    throw new InputFileError(file, `holds a '${m.kind}' model, expected '${expectedKind}'`);
  }
  const definition = kinds.get(m.kind);
  let config: unknown = m.config;
  if (definition !== undefined) {
    try {
      config = definition.validateConfig(m.config);
    } catch (err) {
      throw new InputFileError(file, (err as Error).message);
    }
    const shapes = new Map(m.tensors.map((t) => [t.name, t.shape] as const));
    const problems = describeMismatch(definition.paramSpecs(config as never), shapes);
    if (problems.length > 0) {
      const shown = problems.slice(0, 5).join('; ');
      throw new InputFileError(file, `tensors do not match the config: ${shown}${problems.length > 5 ? `; … (${problems.length} problems)` : ''}`);
    }
  }
  const binFile = binaryPath(dir, name);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(binFile);
  } catch (err) {
    throw new InputFileError(binFile, `cannot read weights binary (${(err as Error).message})`);
  }
  const expectedBytes = m.tensors.reduce((end, t) => Math.max(end, t.offset + t.length), 0);
  if (bytes.byteLength !== expectedBytes) {
    throw new InputFileError(binFile, `has ${bytes.byteLength} bytes, the manifest ${path.basename(file)} describes ${expectedBytes}`);
  }
  const params: ParamMap = {};
  for (const t of m.tensors) {
    const values = fromLittleEndian(bytes.subarray(t.offset, t.offset + t.length));
    params[t.name] = variableFrom(values, t.shape);
  }
  return {
    kind: m.kind,
    config: config as C,
    params,
    ...(m.extra !== undefined ? { extra: m.extra } : {}),
    packageVersion: m.packageVersion,
  };
}
