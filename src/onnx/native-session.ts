/**
 * ONNX Runtime sessions through this project's own binding (native/ort-kernels, built by
 * scripts/setup.sh): the same libonnxruntime that onnxruntime-node ships, with the project's custom
 * operators registered, which onnxruntime-node cannot do. The training engine uses it for gradient
 * graphs when it loads; everything else, and every machine where it was not built, keeps onnxruntime-node.
 *
 * MOODLSR_ORT_KERNELS=0 turns it off.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spinByDefault } from './runtime.js';

type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

/** A tensor as both bindings describe it: element type name, data, dimensions. */
export interface NativeTensor {
  readonly type: string;
  readonly data: TypedArray;
  readonly dims: readonly number[];
}

interface Addon {
  load(libraryPath: string): { version: string; vectorised: boolean };
  createSession(model: Uint8Array, threads: number, profilePrefix: string | undefined, spin: boolean): unknown;
  endProfiling(session: unknown): string;
  run(session: unknown, inputNames: string[], inputs: NativeTensor[], outputNames: string[]): NativeTensor[];
  releaseSession(session: unknown): void;
  convWeightGrad(x: Float32Array, dy: Float32Array, geometry: number[], vectorised: boolean): Float32Array;
  eluExp(x: Float32Array, vectorised: boolean): [Float32Array, Float32Array];
}

/** The geometry of one ConvWeightGrad call: x [batch, inChannels, height, width], dy [batch, outChannels, outHeight, outWidth]. */
export interface ConvWeightGradGeometry {
  readonly batch: number;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly height: number;
  readonly width: number;
  readonly outHeight: number;
  readonly outWidth: number;
  readonly kernel: readonly [number, number];
  /** ONNX order: top, left, bottom, right. */
  readonly pads: readonly [number, number, number, number];
}

/** A session with the part of onnxruntime-node's InferenceSession the trainers use. */
export interface NativeSession {
  run(feeds: Readonly<Record<string, NativeTensor>>): Promise<Record<string, NativeTensor>>;
  release(): Promise<void>;
  /** Ends ONNX Runtime's profiling (a session opened with `profilePrefix`) and returns the profile's file. */
  endProfiling(): string;
}

export interface NativeKernels {
  /** ONNX Runtime's version string. */
  readonly version: string;
  /** Whether the custom kernels run vectorised here (AVX-512); the graphs use them only then. */
  readonly vectorised: boolean;
  /** `profilePrefix`: ONNX Runtime profiles every run into a JSON file with this prefix (see NativeSession.endProfiling). */
  createSession(model: Uint8Array, outputNames: readonly string[], threads: number, profilePrefix?: string): NativeSession;
  /** The ConvWeightGrad kernel called directly (tests): dW [outChannels, inChannels, kh, kw]; `vectorised` false takes the scalar loop. */
  convWeightGrad(x: Float32Array, dy: Float32Array, geometry: ConvWeightGradGeometry, vectorised: boolean): Float32Array;
  /** The EluExp kernel called directly (tests): [max(x, e − 1), e = exp(min(x, 0))]. */
  eluExp(x: Float32Array, vectorised: boolean): [Float32Array, Float32Array];
}

/** The package root: the nearest folder above this module that holds native/ort-kernels. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'native', 'ort-kernels'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('native/ort-kernels is not part of this installation');
    dir = up;
  }
}

/** The libonnxruntime that onnxruntime-node loads, so both bindings share one runtime. */
function onnxRuntimeLibrary(): string {
  const require = createRequire(import.meta.url);
  const root = path.dirname(require.resolve('onnxruntime-node/package.json'));
  const name = process.platform === 'darwin' ? 'libonnxruntime.1.dylib' : 'libonnxruntime.so.1';
  const file = path.join(root, 'bin', 'napi-v6', process.platform, process.arch, name);
  if (!fs.existsSync(file)) throw new Error(`no ${name} in onnxruntime-node (${file})`);
  return file;
}

let loaded: { kernels: NativeKernels } | { error: string } | null = null;

/** The binding, or why it cannot be used here (not built, disabled, or the runtime would not load). */
export function loadNativeKernels(): { kernels: NativeKernels } | { error: string } {
  if (loaded !== null) return loaded;
  if (process.env.MOODLSR_ORT_KERNELS === '0') return (loaded = { error: 'turned off by MOODLSR_ORT_KERNELS=0' });
  try {
    const file = path.join(packageRoot(), 'native', 'ort-kernels', 'build', 'ort_kernels.node');
    if (!fs.existsSync(file)) return (loaded = { error: `not built (${file}; sh native/ort-kernels/build.sh builds it)` });
    const addon = createRequire(import.meta.url)(file) as Addon;
    const { version, vectorised } = addon.load(onnxRuntimeLibrary());
    loaded = {
      kernels: {
        version,
        vectorised,
        createSession: (model, outputNames, threads, profilePrefix) => openSession(addon, model, outputNames, threads, profilePrefix),
        convWeightGrad: (x, dy, g, vec) =>
          addon.convWeightGrad(x, dy, [g.batch, g.inChannels, g.outChannels, g.height, g.width, g.outHeight, g.outWidth, g.kernel[0], g.kernel[1], ...g.pads], vec),
        eluExp: (x, vec) => addon.eluExp(x, vec),
      },
    };
  } catch (err) {
    loaded = { error: (err as Error).message };
  }
  return loaded;
}

function openSession(addon: Addon, model: Uint8Array, outputNames: readonly string[], threads: number, profilePrefix?: string): NativeSession {
  // The other options are createSession's (./runtime.ts), spinning included.
  let handle: unknown = addon.createSession(model, threads, profilePrefix, spinByDefault());
  const outputs = [...outputNames];
  return {
    run(feeds) {
      if (handle === null) return Promise.reject(new Error('native ONNX Runtime session: run after release'));
      try {
        const names = Object.keys(feeds);
        const values = addon.run(handle, names, names.map((n) => feeds[n]!), outputs);
        const result: Record<string, NativeTensor> = {};
        outputs.forEach((name, i) => (result[name] = values[i]!));
        return Promise.resolve(result);
      } catch (err) {
        return Promise.reject(err as Error);
      }
    },
    endProfiling() {
      if (handle === null) throw new Error('native ONNX Runtime session: endProfiling after release');
      return addon.endProfiling(handle);
    },
    release() {
      if (handle !== null) addon.releaseSession(handle);
      handle = null;
      return Promise.resolve();
    },
  };
}
