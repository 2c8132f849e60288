/**
 * The `vae-*` methods: a weights folder (vae.json/.bin from `moodlsr train vae`, vae-calibration.json
 * from `moodlsr calibrate vae`) and the predictors that score volumes with it.
 *
 * Path of a volume, shared with LSR: `preprocessForModel` (the slices and normalisation training
 * used, the calibration's slice selection) → per-slice scores (./score.ts) → pixel maps:
 * min-pool 3×3×3 then average-pool 7×7×3 on the slice stack (src/score/pixel-score.ts; or the scoring
 * chain's kernels in voxels, ./scoring.ts) → back onto the input grid with each slice on its own z
 * (src/volume/resample.ts) → v / (v + c) with c the method's calibrated pixel scale → the chain's body
 * mask, if any; sample scores: the chain's aggregate (mean over slices by default) through the
 * monotone calibration fitted on held-out normal volumes (src/score/calibration.ts).
 *
 * Methods and tasks:
 *   vae-elbo, vae-kl      sample only (mean over slices of KL + rec, of KL)
 *   vae-rec               sample (mean rec term) and pixel (reconstruction error)
 *   vae-elbograd, vae-klgrad, vae-recgrad, vae-combi   pixel only (gradient maps, Combi)
 *
 * Engines (`--engine`): the forward-only work (x̂, KL, rec: every sample score and the vae-rec map)
 * runs on ONNX Runtime under 'onnx' / 'auto' (./onnx-engine.ts); the gradient maps need input
 * gradients, which ONNX Runtime cannot compute, so they always run on TF.js (workers on wasm).
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initEngine } from '../../engine/backend.js';
import { createInferencePool, type InferencePool } from '../../engine/pool.js';
import { InputFileError } from '../../errors.js';
import { atomicWriteFileSync } from '../../io/atomic.js';
import { disposeParams } from '../../models/params.js';
import type { VaeConfig } from './config.js';
import { binaryPath, loadModel, manifestPath } from '../../models/weights.js';
import type { CaseContext, MoodTask, Predictor } from '../../mood/predictor.js';
import { applySampleCalibration, isSampleCalibration, type SampleCalibration } from '../../score/calibration.js';
import { PAPER_SMOOTHING, smoothScoreStack, stackScoresToVolume } from '../../score/pixel-score.js';
import type { Region } from '../../volume/normalise.js';
import { preprocessForModel } from '../../volume/preprocess.js';
import type { SliceSelection, SliceStack } from '../../volume/slices.js';
import type { Volume } from '../../volume/volume.js';
import type { EngineChoice, EngineName } from '../../inference/engine-choice.js';
import { resolveEngine } from '../../inference/resolve-engine.js';
import { forwardOnly, onnxVaeForward, onnxVaePieces, type VaeOnnxForward } from './onnx-engine.js';
import {
  composeVaeMaps,
  piecesFor,
  rawVaeSampleScores,
  vaeStackPieces,
  VAE_PIXEL_MAPS,
  VAE_SAMPLE_SCORES,
  type PieceRequest,
  type SliceTerms,
  type VaeNetwork,
  type VaePixelMap,
  type VaeSampleScore,
  type VaeStackPieces,
} from './score.js';
import { isSliceSelection, readCalibrationFile } from '../../score/calibration-file.js';
import { vaeMethod, vaeMethodTasks } from './variants.js';
import { stackKernels, type VoxelSmoothing } from '../../score/smoothing.js';
import { topFractionMean } from '../../score/sample-aggregates.js';
import type { Settings } from '../../score/settings.js';
import { applyMask, bodyMask } from '../../volume/body-mask.js';
import { localMaxVaeSampleScores } from './sample-aggregates.js';
import { applyVaeSettings, isVaeScoring, ORIGINAL_VAE_SCORING, VAE_TOP_MAP, type VaeScoring } from './scoring.js';

export { VAE_METHODS, vaeMethod, type VaeMethod } from './variants.js';

export const VAE_NAME = 'vae';
export const VAE_CALIBRATION_FILE = 'vae-calibration.json';
export const VAE_CALIBRATION_FORMAT = 'moodlsr-vae-calibration';
export const VAE_CALIBRATION_VERSION = 1;

export interface VaeCalibration {
  readonly format: typeof VAE_CALIBRATION_FORMAT;
  readonly version: number;
  readonly region: Region;
  readonly slices: SliceSelection;
  /** One monotone calibration per sample score, fitted on the same held-out normals. */
  readonly sample: Record<VaeSampleScore, SampleCalibration>;
  /** c of v / (v + c) per pixel map: 99th percentile of the post-processed map over the foreground of held-out normals. */
  readonly pixelScale: Record<VaePixelMap, number>;
  /** Smoothing, mask and sample aggregate (absent: the original chain, ORIGINAL_VAE_SCORING). */
  readonly scoring?: VaeScoring;
  readonly heldOut?: Record<string, unknown>;
}

export function vaeCalibrationPath(dir: string): string {
  return path.join(dir, VAE_CALIBRATION_FILE);
}

/** Throws a reason for the first bad field; returns the typed calibration. */
export function validateVaeCalibration(raw: unknown): VaeCalibration {
  const c = raw as Partial<VaeCalibration>;
  if (c === null || typeof c !== 'object' || c.format !== VAE_CALIBRATION_FORMAT) throw new Error(`not a ${VAE_CALIBRATION_FORMAT} file`);
  if (c.version !== VAE_CALIBRATION_VERSION) throw new Error(`version ${c.version} is not supported (expected ${VAE_CALIBRATION_VERSION})`);
  if (c.region !== 'brain' && c.region !== 'abdomen') throw new Error(`region must be 'brain' or 'abdomen', got ${JSON.stringify(c.region)}`);
  if (!isSliceSelection(c.slices)) throw new Error(`slices must be 'all', {every: n} or {count: n}, got ${JSON.stringify(c.slices)}`);
  for (const s of VAE_SAMPLE_SCORES) {
    if (!isSampleCalibration(c.sample?.[s])) throw new Error(`sample.${s} is missing or malformed`);
  }
  for (const m of VAE_PIXEL_MAPS) {
    const v = c.pixelScale?.[m];
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new Error(`pixelScale.${m} must be a positive number`);
  }
  if (c.scoring !== undefined && !isVaeScoring(c.scoring)) throw new Error('scoring is malformed (smoothing {min, avg}, mask, sample, sampleTop)');
  return c as VaeCalibration;
}

export function readVaeCalibration(dir: string): VaeCalibration {
  return readCalibrationFile(vaeCalibrationPath(dir), dir, 'vae', validateVaeCalibration);
}

export function writeVaeCalibration(dir: string, calibration: VaeCalibration): string {
  const file = vaeCalibrationPath(dir);
  atomicWriteFileSync(file, JSON.stringify(validateVaeCalibration(calibration), null, 1) + '\n');
  return file;
}

/** Loads `<dir>/vae.{json,bin}` (engine must be initialised); errors name the file. */
export function loadVaeNetwork(dir: string): VaeNetwork {
  if (!existsSync(dir)) throw new InputFileError(dir, 'weights folder does not exist');
  for (const file of [manifestPath(dir, VAE_NAME), binaryPath(dir, VAE_NAME)]) {
    if (!existsSync(file)) throw new InputFileError(file, `missing: the vae methods need ${VAE_NAME}.json and ${VAE_NAME}.bin in ${dir}`);
  }
  const m = loadModel<VaeConfig>(dir, VAE_NAME, 'vae');
  return { cfg: m.config, params: m.params };
}

export interface VaeJobInit {
  readonly weightsDir: string;
}

/** A chunk of slices for the networks (in-process or on a worker). */
export interface VaeJobTask {
  readonly images: Float32Array;
  readonly positions: Float32Array;
  readonly request: PieceRequest;
}

/** Runs chunks of slices; results in task order. */
export interface VaePieceRunner {
  run(tasks: readonly VaeJobTask[]): Promise<VaeStackPieces[]>;
  /** Chunks a stack is split into (one per worker). */
  readonly chunks: number;
}

export function inProcessVaeRunner(net: VaeNetwork): VaePieceRunner {
  return { run: async (tasks) => tasks.map((t) => vaeStackPieces(net, t.images, t.positions, t.request)), chunks: 1 };
}

/** The worker job module (src/methods/vae/job.ts, compiled to dist by the pool). */
export function vaeJobModule(): string {
  const here = fileURLToPath(import.meta.url);
  return path.join(path.dirname(here), here.endsWith('.ts') ? 'job.ts' : 'job.js');
}

export async function createVaePool(weightsDir: string, workers: number): Promise<InferencePool<VaeJobTask, VaeStackPieces>> {
  return createInferencePool<VaeJobInit, VaeJobTask, VaeStackPieces>({
    jobModule: vaeJobModule(),
    initArg: { weightsDir: path.resolve(weightsDir) },
    workers,
  });
}

/** Default worker threads: one per core on wasm with ≥ 2 cores, else 0 (in-process). */
export async function defaultVaeWorkers(): Promise<number> {
  const engine = await initEngine();
  const cores = os.availableParallelism();
  return engine.backend === 'wasm' && cores >= 2 ? cores : 0;
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The pieces of a whole stack, computed on contiguous chunks of slices and put back in order. */
export async function stackPieces(runner: VaePieceRunner, stack: SliceStack, request: PieceRequest): Promise<VaeStackPieces> {
  const plane = stack.height * stack.width;
  const chunks = Math.max(1, Math.min(runner.chunks, stack.count));
  const tasks: VaeJobTask[] = [];
  for (let c = 0; c < chunks; c++) {
    const a = Math.floor((c * stack.count) / chunks);
    const b = Math.floor(((c + 1) * stack.count) / chunks);
    tasks.push({ images: stack.data.slice(a * plane, b * plane), positions: stack.positions.slice(a, b), request });
  }
  const parts = await runner.run(tasks);
  const pick = (key: 'gradKl' | 'gradRec') => (parts.every((p) => p[key] !== undefined) ? { [key]: concat(parts.map((p) => p[key]!)) } : {});
  return {
    kl: concat(parts.map((p) => p.kl)),
    rec: concat(parts.map((p) => p.rec)),
    xhat: concat(parts.map((p) => p.xhat)),
    ...pick('gradKl'),
    ...pick('gradRec'),
    forwardSeconds: parts.reduce((a, p) => a + p.forwardSeconds, 0),
    gradientSeconds: parts.reduce((a, p) => a + p.gradientSeconds, 0),
  };
}

export interface VaeVolumeScores {
  readonly stack: SliceStack;
  readonly terms: SliceTerms;
  /** Post-processed (min-pool then avg-pool: the paper's 3³ and 7×7×3 slices, or `smoothing`) maps on the slice stack, before scaling. */
  readonly maps: Partial<Record<VaePixelMap, Float32Array>>;
  /** forward / gradients: summed over chunks (CPU seconds when chunks run in parallel); networks: wall time. */
  readonly seconds: { preprocess: number; networks: number; forward: number; gradients: number; smooth: number };
}

/** Preprocess → networks (chunked on the runner) → pixel maps → stack post-processing (`smoothing` absent: the paper's kernels in slices). */
export async function vaeVolumeScores(
  net: VaeNetwork,
  volume: Volume,
  region: Region,
  slices: SliceSelection,
  maps: readonly VaePixelMap[],
  runner: VaePieceRunner = inProcessVaeRunner(net),
  smoothing?: VoxelSmoothing,
): Promise<VaeVolumeScores> {
  const t0 = performance.now();
  const stack = preprocessForModel(volume, { region, slices, size: net.cfg.inputSize });
  const t1 = performance.now();
  const pieces = await stackPieces(runner, stack, piecesFor(maps));
  const t2 = performance.now();
  const raw = composeVaeMaps(stack.data, pieces, stack.count, stack.width, net.cfg.recStd, maps);
  const smoothed: Partial<Record<VaePixelMap, Float32Array>> = {};
  const kernels = smoothing ? stackKernels(smoothing, stack.zs) : PAPER_SMOOTHING;
  for (const [name, map] of Object.entries(raw) as Array<[VaePixelMap, Float32Array]>) {
    smoothed[name] = smoothScoreStack(map, stack.count, stack.height, stack.width, kernels);
  }
  return {
    stack,
    terms: { kl: pieces.kl, rec: pieces.rec, xhat: pieces.xhat },
    maps: smoothed,
    seconds: {
      preprocess: (t1 - t0) / 1000,
      networks: (t2 - t1) / 1000,
      forward: pieces.forwardSeconds,
      gradients: pieces.gradientSeconds,
      smooth: (performance.now() - t2) / 1000,
    },
  };
}

export interface VaeModel {
  readonly dir: string;
  readonly net: VaeNetwork;
  readonly calibration: VaeCalibration;
  /** Engine of the forward-only scores (the gradient maps always run on TF.js). */
  readonly engine: EngineName;
  /** The ONNX Runtime forward pass when `engine` is 'onnx'. */
  readonly onnx: VaeOnnxForward | null;
}

export interface LoadVaeOptions {
  /** Engine of the forward-only scores: 'auto' (default) = ONNX Runtime when it loads, else TF.js. */
  readonly engine?: EngineChoice;
  readonly log?: (line: string) => void;
}

export async function loadVaeModel(dir: string, opts: LoadVaeOptions = {}): Promise<VaeModel> {
  if (!existsSync(dir)) throw new InputFileError(dir, 'weights folder does not exist');
  const calibration = readVaeCalibration(dir);
  const tf = await initEngine();
  const net = loadVaeNetwork(dir);
  try {
    const resolved = await resolveEngine(opts.engine ?? 'auto', { tfjsBackend: tf.backend, ...(opts.log ? { log: opts.log } : {}) });
    const onnx = resolved.name === 'onnx' ? await onnxVaeForward(net, { threads: resolved.threads, ...(resolved.saveTo ? { saveTo: resolved.saveTo } : {}) }) : null;
    return { dir, net, calibration, engine: resolved.name, onnx };
  } catch (err) {
    disposeParams(net.params);
    throw err;
  }
}

/** Forward-only requests on ONNX Runtime, in-process (it uses every core itself). */
export function onnxVaeRunner(forward: VaeOnnxForward): VaePieceRunner {
  return {
    run: async (tasks) => {
      const out: VaeStackPieces[] = [];
      for (const t of tasks) out.push(await onnxVaePieces(forward, t.images, t.positions, t.request));
      return out;
    },
    chunks: 1,
  };
}

export interface VaePredictorOptions {
  /** Worker threads for the networks; 0 = in-process. Default: one per core when ≥ 2 cores and the backend is wasm. */
  readonly workers?: number;
  /** `--set` overrides of the calibration's scoring chain (see ./scoring.ts). */
  readonly settings?: Settings;
}

export function vaePredictor(model: VaeModel, methodName: string, opts: VaePredictorOptions = {}): Predictor {
  const method = vaeMethod(methodName);
  const cal = model.calibration;
  const scoring = applyVaeSettings(cal.scoring ?? ORIGINAL_VAE_SCORING, opts.settings);
  const smoothing = scoring.smoothing;
  const tasks = vaeMethodTasks(method);
  const s = (x: number) => `${x.toFixed(2)} s`;
  let pool: InferencePool<VaeJobTask, VaeStackPieces> | null = null;
  let workers: number | null = opts.workers ?? null;
  const runner = async (maps: readonly VaePixelMap[]): Promise<VaePieceRunner> => {
    if (model.onnx !== null && forwardOnly(piecesFor(maps))) return onnxVaeRunner(model.onnx);
    workers ??= await defaultVaeWorkers();
    if (workers === 0) return inProcessVaeRunner(model.net);
    pool ??= await createVaePool(model.dir, workers);
    const active = pool;
    return { run: (t) => active.runAll(t), chunks: workers };
  };
  const engineOf = (maps: readonly VaePixelMap[]) => (model.onnx !== null && forwardOnly(piecesFor(maps)) ? 'onnx' : 'tfjs');
  const timing = (v: VaeVolumeScores) =>
    `preprocess ${s(v.seconds.preprocess)}, networks ${s(v.seconds.networks)} wall (forward ${s(v.seconds.forward)}, gradients ${s(v.seconds.gradients)} summed over chunks)`;
  /** The pixel map `name` on the volume grid, scaled and masked as the chain says. */
  async function volumeMap(volume: Volume, name: VaePixelMap): Promise<{ map: Float32Array; scores: VaeVolumeScores; resample: number }> {
    const scores = await vaeVolumeScores(model.net, volume, cal.region, cal.slices, [name], await runner([name]), smoothing);
    const t0 = performance.now();
    const map = stackScoresToVolume(scores.maps[name]!, scores.stack, volume.shape, cal.pixelScale[name]);
    if (scoring.mask === 'body') applyMask(map, bodyMask(volume.data, volume.shape));
    return { map, scores, resample: (performance.now() - t0) / 1000 };
  }
  return {
    name: method.name,
    tasks,
    ...(method.sample !== undefined
      ? {
          async sampleScore(volume: Volume, ctx: CaseContext): Promise<number> {
            const term = method.sample!;
            if (scoring.sample === 'top') {
              const name = VAE_TOP_MAP[term];
              const { map, scores } = await volumeMap(volume, name);
              const raw = topFractionMean(map, scoring.sampleTop, scoring.mask === 'body' ? bodyMask(volume.data, volume.shape) : undefined);
              const score = applySampleCalibration(cal.sample[term], raw);
              ctx.log(`${method.name} sample (${engineOf([name])}, top ${scoring.sampleTop} of the ${name} map): raw ${raw.toFixed(4)} → ${score.toFixed(4)}; ${timing(scores)}`);
              return score;
            }
            const scores = await vaeVolumeScores(model.net, volume, cal.region, cal.slices, [], await runner([]));
            const raw =
              scoring.sample === 'localmax'
                ? localMaxVaeSampleScores(scores.terms, scores.stack.data, scores.stack.width, model.net.cfg.recStd)[term]
                : rawVaeSampleScores(scores.terms)[term];
            const score = applySampleCalibration(cal.sample[term], raw);
            ctx.log(`${method.name} sample (${model.onnx !== null ? 'onnx' : 'tfjs'}${scoring.sample === 'mean' ? '' : `, ${scoring.sample}`}): raw ${raw.toFixed(3)} → ${score.toFixed(4)}; ${timing(scores)}`);
            return score;
          },
        }
      : {}),
    ...(method.pixel !== undefined
      ? {
          async pixelScore(volume: Volume, ctx: CaseContext): Promise<Float32Array> {
            const { map, scores, resample } = await volumeMap(volume, method.pixel!);
            ctx.log(`${method.name} pixel (${engineOf([method.pixel!])}): ${timing(scores)}, smooth ${s(scores.seconds.smooth)}, resample ${s(resample)}`);
            return map;
          },
        }
      : {}),
    async dispose(): Promise<void> {
      if (pool !== null) await pool.close();
      pool = null;
      await model.onnx?.release();
      disposeParams(model.net.params);
    },
  };
}

/** For the METHODS registry: one loaded model per predictor. */
export async function createVaePredictor(weightsDir: string, methodName: string, opts: LoadVaeOptions & { readonly settings?: Settings } = {}): Promise<Predictor> {
  const { settings, ...load } = opts;
  const method = vaeMethod(methodName);
  // A gradient map runs on TF.js only: no ONNX session for it.
  const gradientOnly = method.sample === undefined && method.pixel !== undefined && !forwardOnly(piecesFor([method.pixel]));
  if (gradientOnly && opts.engine === 'onnx') {
    const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    log(`engine: ${methodName} needs input gradients, which ONNX Runtime cannot compute; using tfjs`);
  }
  return vaePredictor(await loadVaeModel(weightsDir, gradientOnly ? { ...load, engine: 'tfjs' } : load), methodName, settings ? { settings } : {});
}
