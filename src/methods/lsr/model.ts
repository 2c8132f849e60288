/**
 * The `lsr` method: a weights folder (vqvae.json/.bin, pixelsnail.json/.bin, lsr-calibration.json)
 * and the predictor that scores volumes with it.
 *
 * The networks run on an inference engine (./engine.ts): ONNX Runtime (in-process, intra-op threads on
 * every core) or TF.js. With TF.js on wasm, pixel scores run the restoration + decoding of slice
 * chunks on a pool of worker threads (one wasm backend per core, src/engine/pool.ts): slices are
 * independent, and each slice's random stream is keyed by its z index, so the chunking does not
 * change the result. With `workers: 0` (or tfjs-node-gpu, or ONNX Runtime) the same code runs
 * in-process.
 */
import path from 'node:path';
import type { InferencePool } from '../../engine/pool.js';
import type { CaseContext, Predictor } from '../../mood/predictor.js';
import type { Region } from '../../volume/normalise.js';
import { normalisedBackground } from '../../volume/preprocess.js';
import { normalisationFor } from '../../volume/normalise.js';
import type { SliceSelection } from '../../volume/slices.js';
import type { Volume } from '../../volume/volume.js';
import { isSampleCalibration, type SampleCalibration } from '../../score/calibration.js';
import { createLsrEngine, type LsrEngine } from './engine.js';
import {
  chunkRunners,
  createScorePool,
  inProcessChunkRunner,
  loadMethod,
  scoreJobModule,
  type LoadedMethod,
  type LoadMethodOptions,
  type WeightsJobInit,
} from '../../inference/method-runtime.js';
import { disposeLsrNetworks, latentGeometry, loadLsrNetworks, type LsrNetworks } from './networks.js';
import { PAPER_SMOOTHING, restorationScores, stackScoresToVolume, type RestorationScoreResult, type RestorationScoreTask } from '../../score/pixel-score.js';
import type { RestorationStats } from '../../score/restoration.js';
import { encodeVolume, sampleScoreOfCodes, type EncodedVolume } from '../../score/sample-score.js';
import { isSliceSelection, readCalibrationFile } from '../../score/calibration-file.js';
import { runSliceChunks, type ChunkRunner } from '../../score/slice-chunks.js';
import type { WeightingRule } from '../../score/residual-weights.js';
import { stackKernels, type VoxelSmoothing } from '../../score/smoothing.js';
import { localMaxExcess, topFractionMean } from '../../score/sample-aggregates.js';
import { applySampleCalibration } from '../../score/calibration.js';
import type { Settings } from '../../score/settings.js';
import { applyMask, bodyMask } from '../../volume/body-mask.js';
import { combinedSampleRaw as combinedPartsRaw, samplePartsOf, samplePartsProblem, type SampleParts } from '../../score/reference-chain.js';
import { interiorSampleRaw, LSR_NLL_REFERENCE_FILE, networksFingerprint, priorFingerprint, readLsrNllReference } from './nll-reference.js';
import { LSR_RESIDUAL_REFERENCE_FILE, readLsrResidualReference, standardisedResidual, type ResidualMapRecipe } from './residual-reference.js';
import { loadChainReferences, type ChainReferenceSources } from '../../score/chain-references.js';
import { stackToVolume } from '../../volume/resample.js';
import { applyLsrSettings, isLsrScoring, PAPER_LSR_SCORING, type LsrScoring } from './scoring.js';

export { defaultWorkerCount } from '../../inference/method-runtime.js';

export const LSR_CALIBRATION_FILE = 'lsr-calibration.json';
export const LSR_CALIBRATION_FORMAT = 'moodlsr-lsr-calibration';
export const LSR_CALIBRATION_VERSION = 1;
export const DEFAULT_COPIES = 15;

export interface LsrCalibration {
  readonly format: typeof LSR_CALIBRATION_FORMAT;
  readonly version: number;
  readonly region: Region;
  /** Slices scored per volume (the paper: every 8th brain slice, every 16th abdominal slice). */
  readonly slices: SliceSelection;
  /** S: restorations per slice. */
  readonly copies: number;
  /** k of the residual weights softmax(k / mean residual). */
  readonly k: number;
  /** λs (nats): codes above it count in the sample score (98th percentile of held-out normal NLL). */
  readonly lambdaS: number;
  /** λp (nats): codes above it are resampled in the restoration (90th percentile). */
  readonly lambdaP: number;
  readonly sampleCalibration: SampleCalibration;
  /**
   * For a combined aggregate (sample=sum+interior): each part's calibration on the same held-out
   * normals; the raw combined score is the largest calibrated part, then `sampleCalibration` applies.
   */
  readonly sampleParts?: SampleParts;
  /** c of the pixel map AS / (AS + c), in normalised intensity units. */
  readonly pixelScale: number;
  /** Weighting, smoothing, mask and sample aggregate (absent: the paper's chain, PAPER_LSR_SCORING). */
  readonly scoring?: LsrScoring;
  /** Provenance: what the numbers were fitted on. */
  readonly heldOut?: Record<string, unknown>;
}

export function calibrationPath(dir: string): string {
  return path.join(dir, LSR_CALIBRATION_FILE);
}

/** Throws a reason (string) for the first bad field; returns the typed calibration. */
export function validateLsrCalibration(raw: unknown): LsrCalibration {
  const c = raw as Partial<LsrCalibration>;
  if (c === null || typeof c !== 'object' || c.format !== LSR_CALIBRATION_FORMAT) throw new Error(`not a ${LSR_CALIBRATION_FORMAT} file`);
  if (c.version !== LSR_CALIBRATION_VERSION) throw new Error(`version ${c.version} is not supported (expected ${LSR_CALIBRATION_VERSION})`);
  if (c.region !== 'brain' && c.region !== 'abdomen') throw new Error(`region must be 'brain' or 'abdomen', got ${JSON.stringify(c.region)}`);
  if (!isSliceSelection(c.slices)) throw new Error(`slices must be 'all', {every: n} or {count: n}, got ${JSON.stringify(c.slices)}`);
  if (typeof c.copies !== 'number' || !Number.isInteger(c.copies) || c.copies < 1) throw new Error('copies must be a positive integer');
  for (const key of ['k', 'lambdaS', 'lambdaP'] as const) {
    if (typeof c[key] !== 'number' || !Number.isFinite(c[key])) throw new Error(`${key} must be a finite number`);
  }
  if (typeof c.pixelScale !== 'number' || !(c.pixelScale > 0) || !Number.isFinite(c.pixelScale)) throw new Error('pixelScale must be a positive number');
  if (!isSampleCalibration(c.sampleCalibration)) throw new Error('sampleCalibration is missing or malformed');
  if (c.scoring !== undefined && !isLsrScoring(c.scoring)) throw new Error('scoring is malformed (weighting, smoothing {min, avg}, mask, sample, sampleTop, reference, referenceFloor)');
  const partsProblem = samplePartsProblem(c.sampleParts, c.scoring?.sample);
  if (partsProblem !== null) throw new Error(partsProblem);
  return c as LsrCalibration;
}

export function readLsrCalibration(dir: string): LsrCalibration {
  return readCalibrationFile(calibrationPath(dir), dir, 'lsr', validateLsrCalibration);
}

/** The weights folder loaded onto its inference engine. */
export type LsrModel = LoadedMethod<LsrNetworks, LsrEngine, LsrCalibration>;

export type LoadLsrOptions = LoadMethodOptions;

/** Initialises the engines and loads the networks and the calibration; every problem names its file. */
export async function loadLsrModel(dir: string, opts: LoadLsrOptions = {}): Promise<LsrModel> {
  return loadMethod(dir, { readCalibration: readLsrCalibration, loadNetworks: loadLsrNetworks, disposeNetworks: disposeLsrNetworks, createEngine: createLsrEngine }, opts);
}

/** Runs restoration tasks (slice chunks), in-process or on workers; results in task order. */
export type RestorationRunner = ChunkRunner<RestorationScoreTask, RestorationScoreResult>;

export function inProcessRunner(engine: LsrEngine): RestorationRunner {
  return inProcessChunkRunner((task) => restorationScores(engine, task));
}

export type LsrJobInit = WeightsJobInit;

/** The worker job module (src/methods/lsr/job.ts, compiled to dist by the pool). */
export function lsrJobModule(): string {
  return scoreJobModule(import.meta.url, 'job');
}

export async function createLsrPool(weightsDir: string, workers: number): Promise<InferencePool<RestorationScoreTask, RestorationScoreResult>> {
  return createScorePool(lsrJobModule(), weightsDir, workers);
}

export interface PixelRunParameters {
  readonly region: Region;
  readonly slices: SliceSelection;
  readonly copies: number;
  readonly lambdaP: number;
  readonly k: number;
  /** Residual weights and smoothing (default: the paper's; smoothing absent = its kernels counted in slices). */
  readonly weighting?: WeightingRule;
  readonly smoothing?: VoxelSmoothing;
  readonly seed: number;
  /** Slice chunks handed to the runner (≥ 1); slice i goes to chunk i mod chunks. */
  readonly chunks: number;
}

export interface PixelTimings {
  preprocess: number;
  encode: number;
  /** Wall time of restoration + decoding + residuals (all chunks, parallel when on workers). */
  restoreWall: number;
  /** Summed over chunks (CPU seconds when chunks run in parallel). */
  restorePrior: number;
  restoreTotal: number;
  decode: number;
  /** Maps run through the decoder (identical copies of a slice count once). */
  decodedMaps: number;
  residual: number;
  smooth: number;
  resample?: number;
}

export interface PixelStackResult {
  readonly encoded: EncodedVolume;
  /** Smoothed AS at model resolution, count × S × S, before scaling. */
  readonly smoothed: Float32Array;
  readonly stats: RestorationStats;
  readonly timings: PixelTimings;
}

function sumStats(parts: readonly RestorationStats[]): RestorationStats {
  const add = (key: keyof RestorationStats) => parts.reduce((a, s) => a + s[key], 0);
  return {
    slices: add('slices'),
    copies: parts[0]?.copies ?? 0,
    positions: parts[0]?.positions ?? 0,
    naiveCopyPasses: add('naiveCopyPasses'),
    mapPasses: add('mapPasses'),
    priorCalls: add('priorCalls'),
    resampled: add('resampled'),
    changed: add('changed'),
    priorSeconds: add('priorSeconds'),
    seconds: add('seconds'),
  };
}

/** Encode, restore (chunked), decode, weigh residuals and smooth: the pixel score before the volume grid. */
export async function pixelScoreStack(engine: LsrEngine, volume: Volume, params: PixelRunParameters, runner: RestorationRunner): Promise<PixelStackResult> {
  const encoded = await encodeVolume(engine, volume, params.region, params.slices);
  const chunked = await runSliceChunks(
    encoded.stack,
    encoded.codes,
    latentGeometry(engine.nets.prior).positions,
    params.chunks,
    (chunk): RestorationScoreTask => ({
      images: chunk.images,
      codes: chunk.codes,
      slicePositions: chunk.slicePositions,
      restoration: { copies: params.copies, lambdaP: params.lambdaP, seed: params.seed, sliceKeys: chunk.sliceKeys },
      k: params.k,
      ...(params.weighting !== undefined ? { weighting: params.weighting } : {}),
    }),
    runner,
    params.smoothing ? stackKernels(params.smoothing, encoded.stack.zs) : PAPER_SMOOTHING,
  );
  const { results } = chunked;
  const stats = sumStats(results.map((r) => r.stats));
  return {
    encoded,
    smoothed: chunked.smoothed,
    stats,
    timings: {
      preprocess: encoded.preprocessSeconds,
      encode: encoded.encodeSeconds,
      restoreWall: chunked.restoreWall,
      restorePrior: stats.priorSeconds,
      restoreTotal: stats.seconds,
      decode: results.reduce((a, r) => a + r.decodeSeconds, 0),
      decodedMaps: results.reduce((a, r) => a + r.decodedMaps, 0),
      residual: results.reduce((a, r) => a + r.residualSeconds, 0),
      smooth: chunked.smoothSeconds,
    },
  };
}

/** Foreground of the normalised stack (voxels that differ from the normalised background value). */
export function stackForeground(encoded: EncodedVolume, region: Region): Uint8Array {
  const background = normalisedBackground(normalisationFor(region));
  return Uint8Array.from(encoded.stack.data, (v) => (v !== background ? 1 : 0));
}

export interface LsrPredictorOptions {
  /** Worker threads for the pixel score; 0 = in-process. Default: one per core when ≥ 2 cores and the engine is TF.js on wasm. */
  readonly workers?: number;
  /** Override the calibration's number of restorations per slice. */
  readonly copies?: number;
  /** Override the calibration's slice selection. */
  readonly slices?: SliceSelection;
  /** `--set` overrides of the calibration's numbers and scoring (see ./scoring.ts). */
  readonly settings?: Settings;
}

function formatSeconds(s: number): string {
  return `${s.toFixed(2)} s`;
}

export function describeRestoration(stats: RestorationStats): string {
  const saved = stats.naiveCopyPasses - stats.mapPasses;
  return (
    `prior passes ${stats.mapPasses} maps in ${stats.priorCalls} calls vs ${stats.naiveCopyPasses} copy-passes naive ` +
    `(${saved} saved, ${((100 * saved) / Math.max(1, stats.naiveCopyPasses)).toFixed(1)} %), ${stats.resampled} resampled, ${stats.changed} changed`
  );
}

/** Where LSR keeps its normal references (built by `calibrate lsr --reference-data DIR`) and its calibration. */
function lsrChainReferences(weightsDir: string): ChainReferenceSources<ResidualMapRecipe> {
  return {
    method: 'lsr',
    weightsDir,
    nllFile: LSR_NLL_REFERENCE_FILE,
    readNll: readLsrNllReference,
    priorName: 'prior',
    priorFingerprint,
    residualFile: LSR_RESIDUAL_REFERENCE_FILE,
    readResidual: readLsrResidualReference,
    networksFingerprint,
    calibrationFile: calibrationPath(weightsDir),
  };
}

export function lsrPredictor(model: LsrModel, opts: LsrPredictorOptions = {}): Predictor {
  const base = model.calibration;
  const cal = applyLsrSettings(
    { ...base, scoring: base.scoring ?? PAPER_LSR_SCORING, ...(opts.slices ? { slices: opts.slices } : {}), ...(opts.copies ? { copies: opts.copies } : {}) },
    opts.settings,
  );
  const { slices, copies, scoring } = cal;
  const runners = chunkRunners(model.engine, opts.workers, inProcessRunner(model.engine), (workers) => createLsrPool(model.dir, workers));
  // The references the chosen chain reads, loaded now: a missing one fails before any case is scored.
  const refs = loadChainReferences(lsrChainReferences(model.dir), {
    sample: scoring.sample,
    reference: scoring.reference === true,
    recipe: { lambdaP: cal.lambdaP, copies, k: cal.k, weighting: scoring.weighting, smoothing: scoring.smoothing ?? null },
    calibration: cal,
    calibratedSample: base.scoring?.sample ?? PAPER_LSR_SCORING.sample,
  });
  const { warnings, sampleCalibration } = refs;
  const nllRef = refs.nll;
  const residualRef = refs.residual;
  const parts = samplePartsOf(scoring.sample);
  let warned = false;
  const warnOnce = (ctx: CaseContext): void => {
    if (warned) return;
    warned = true;
    for (const w of warnings) ctx.log(w);
  };

  async function pixelMap(volume: Volume, ctx: CaseContext): Promise<Float32Array> {
    warnOnce(ctx);
    const { run, chunks } = await runners.get();
    const result = await pixelScoreStack(
      model.engine,
      volume,
      { region: cal.region, slices, copies, lambdaP: cal.lambdaP, k: cal.k, weighting: scoring.weighting, ...(scoring.smoothing ? { smoothing: scoring.smoothing } : {}), seed: ctx.seed, chunks },
      run,
    );
    const t0 = performance.now();
    const stack = result.encoded.stack;
    const map = scoring.reference
      ? stackToVolume({ ...stack, data: standardisedResidual(result.smoothed, stack, residualRef!, cal.pixelScale, scoring.referenceFloor) }, volume.shape)
      : stackScoresToVolume(result.smoothed, stack, volume.shape, cal.pixelScale);
    if (scoring.mask === 'body') applyMask(map, bodyMask(volume.data, volume.shape));
    const t = { ...result.timings, resample: (performance.now() - t0) / 1000 };
    ctx.log(
      `lsr pixel (${model.engine.name}): preprocess ${formatSeconds(t.preprocess)}, encode ${formatSeconds(t.encode)}, restore+decode ${formatSeconds(t.restoreWall)} wall ` +
        `(prior ${formatSeconds(t.restorePrior)}, decode ${formatSeconds(t.decode)} of ${t.decodedMaps} maps, summed over ${chunks} chunks), smooth ${formatSeconds(t.smooth)}, ` +
        `resample ${formatSeconds(t.resample)}; ${describeRestoration(result.stats)}`,
    );
    return map;
  }

  return {
    name: 'lsr',
    tasks: ['sample', 'pixel'],
    async sampleScore(volume: Volume, ctx: CaseContext): Promise<number> {
      warnOnce(ctx);
      if (scoring.sample === 'top') {
        const map = await pixelMap(volume, ctx);
        const raw = topFractionMean(map, scoring.sampleTop, scoring.mask === 'body' ? bodyMask(volume.data, volume.shape) : undefined);
        const score = applySampleCalibration(sampleCalibration, raw);
        ctx.log(`lsr sample (top ${scoring.sampleTop} of the pixel map): raw ${raw.toFixed(4)} → ${score.toFixed(4)}`);
        return score;
      }
      const encoded = await encodeVolume(model.engine, volume, cal.region, slices);
      const result = await sampleScoreOfCodes(model.engine, encoded, cal.lambdaS, cal.sampleCalibration);
      const rawOf = (aggregate: string): number => {
        const { width, height } = latentGeometry(model.engine.nets.prior);
        if (aggregate === 'localmax') return localMaxExcess(result.nll, [width, height, encoded.stack.count], cal.lambdaS);
        if (aggregate === 'interior') return interiorSampleRaw(result.nll, encoded.stack, width, normalisedBackground(normalisationFor(cal.region)), nllRef!);
        return result.raw;
      };
      const raw = parts !== undefined ? combinedSampleRaw(parts.map((part) => [part, rawOf(part)]), cal) : rawOf(scoring.sample);
      const score = applySampleCalibration(sampleCalibration, raw);
      ctx.log(
        `lsr sample (${model.engine.name}, ${scoring.sample}): raw ${raw.toFixed(2)} → ${score.toFixed(4)}; preprocess ${formatSeconds(encoded.preprocessSeconds)}, ` +
          `encode ${formatSeconds(encoded.encodeSeconds)}, prior ${formatSeconds(result.priorSeconds)}`,
      );
      return score;
    },
    pixelScore: pixelMap,
    async dispose(): Promise<void> {
      await runners.close();
      await model.engine.dispose();
      disposeLsrNetworks(model.nets);
    },
  };
}

/** The raw score of a combined aggregate: the largest of its parts' calibrated scores (`sampleParts`). */
export function combinedSampleRaw(parts: readonly (readonly [string, number])[], cal: Pick<LsrCalibration, 'sampleParts'>): number {
  return combinedPartsRaw(parts, cal.sampleParts, 'lsr');
}

/** For the METHODS registry. */
export async function createLsrPredictor(weightsDir: string, opts: LoadLsrOptions & { readonly settings?: Settings } = {}): Promise<Predictor> {
  const { settings, ...load } = opts;
  return lsrPredictor(await loadLsrModel(weightsDir, load), settings ? { settings } : {});
}
