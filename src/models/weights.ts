/**
 * Model weights on disk, in the tensor-bundle format of src/io/tensor-bundle.ts: `<dir>/<name>.json`
 * (format version, kind, config, package version, extra data such as calibration, tensor table) +
 * `<dir>/<name>.bin` (float32, or float16 after `moodlsr weights pack`; little-endian). Both are written
 * atomically, the binary first.
 * Loading checks the config, and the tensor names/shapes against those the config implies.
 */
import * as fs from 'node:fs';
import { InputFileError } from '../errors.js';
import { atomicWriteFileSync } from '../io/atomic.js';
import {
  binaryPath,
  encodeTensorBundle,
  manifestPath,
  readTensorBundle,
  type BundleManifest,
  type HostTensor,
} from '../io/tensor-bundle.js';
import { validatePixelSnailConfig, validateVqvaeConfig } from './config.js';
import { describeMismatch, variableFrom, type ParamMap, type ParamSpec } from './params.js';
import { pixelsnailParamSpecs } from '../methods/lsr/pixelsnail.js';
import { vqvaeParamSpecs } from './vqvae.js';
import { validateVaeConfig } from '../methods/vae/config.js';
import { vaeParamSpecs } from '../methods/vae/vae.js';
import { transformerParamSpecs, validateTransformerConfig } from '../methods/lsgs/transformer.js';

export { packageVersion, manifestPath, binaryPath, BUNDLE_FORMAT_VERSION as WEIGHTS_FORMAT_VERSION } from '../io/tensor-bundle.js';
export type { TensorEntry } from '../io/tensor-bundle.js';
export type WeightsManifest = BundleManifest;

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
  ['vae', { validateConfig: validateVaeConfig, paramSpecs: vaeParamSpecs as (c: never) => ParamSpec[] }],
  ['transformer', { validateConfig: validateTransformerConfig, paramSpecs: transformerParamSpecs as (c: never) => ParamSpec[] }],
]);

/** Lets other model families (VAE, transformer prior, …) get the same load-time validation. */
export function registerModelKind(kind: string, definition: ModelKindDefinition): void {
  kinds.set(kind, definition);
}

/** Writes `<dir>/<name>.json` and `<dir>/<name>.bin`; tensors in sorted-name order. */
export function saveModel(dir: string, name: string, model: ModelToSave): { manifest: string; binary: string } {
  const tensors = new Map<string, HostTensor>();
  for (const [tensorName, v] of Object.entries(model.params)) {
    if (v.dtype !== 'float32') throw new Error(`cannot save ${tensorName}: dtype ${v.dtype} (only float32)`);
    tensors.set(tensorName, { shape: v.shape, values: v.dataSync() as Float32Array });
  }
  const { manifestText, binary } = encodeTensorBundle({ kind: model.kind, config: model.config, extra: model.extra, tensors });
  fs.mkdirSync(dir, { recursive: true });
  const files = { manifest: manifestPath(dir, name), binary: binaryPath(dir, name) };
  atomicWriteFileSync(files.binary, binary);
  atomicWriteFileSync(files.manifest, manifestText);
  return files;
}

/**
 * Loads `<dir>/<name>.json` + `.bin` into fresh variables on the current backend. With
 * `expectedKind`, a manifest of another kind is refused. Errors name the file and the problem.
 */
export function loadModel<C = unknown>(dir: string, name: string, expectedKind?: string): LoadedModel<C> {
  const bundle = readTensorBundle(dir, name, expectedKind);
  const file = manifestPath(dir, name);
  const definition = kinds.get(bundle.kind);
  let config: unknown = bundle.config;
  if (definition !== undefined) {
    try {
      config = definition.validateConfig(bundle.config);
    } catch (err) {
      throw new InputFileError(file, (err as Error).message);
    }
    const shapes = new Map([...bundle.tensors].map(([tensorName, t]) => [tensorName, t.shape] as const));
    const problems = describeMismatch(definition.paramSpecs(config as never), shapes);
    if (problems.length > 0) {
      const shown = problems.slice(0, 5).join('; ');
      throw new InputFileError(file, `tensors do not match the config: ${shown}${problems.length > 5 ? `; … (${problems.length} problems)` : ''}`);
    }
  }
  const params: ParamMap = {};
  for (const [tensorName, t] of bundle.tensors) params[tensorName] = variableFrom(t.values, [...t.shape]);
  return {
    kind: bundle.kind,
    config: config as C,
    params,
    ...(bundle.extra !== undefined ? { extra: bundle.extra } : {}),
    packageVersion: bundle.packageVersion,
  };
}
