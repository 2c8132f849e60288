/**
 * The `lsgs` method: a weights folder (vqvae.json/.bin, transformer.json/.bin, lsgs-calibration.json)
 * and the predictor that scores volumes with it.
 *
 * Sample score: NLL of every code of the (unmodified) code maps under the transformer, one pass per
 * batch of slices; Σ of the NLL above λs over codes and slices (or the chain's other aggregate,
 * ./scoring.ts), mapped to [0, 1] by the monotone calibration of src/score/calibration.ts (as `lsr`).
 * The networks run on an inference engine (./engine.ts): ONNX Runtime (in-process, intra-op
 * threads on every core) or TF.js.
 * Pixel score: parallel restoration and residuals against the plain reconstruction
 * (./restoration.ts) on slice chunks (worker threads with TF.js on wasm; each slice's random stream is
 * keyed by its z index, so chunking and workers do not change the bytes), foreground mask, min-pool 3
 * / avg-pool 7×7×3 (or the chain's kernels in voxels), back onto the input grid with exact slice
 * alignment, AS / (AS + c) with the calibrated c, as `lsr` (src/score/pixel-score.ts explains why this
 * monotone map replaces a hard clip), and the chain's body mask when it has one.
 */
import path from 'node:path';
import type { InferencePool } from '../../engine/pool.js';
import type { CaseContext, Predictor } from '../../mood/predictor.js';
import { normalisationFor, type Region } from '../../volume/normalise.js';
import { normalisedBackground } from '../../volume/preprocess.js';
import type { SliceSelection } from '../../volume/slices.js';
import type { Volume } from '../../volume/volume.js';
import { applySampleCalibration, isSampleCalibration, type SampleCalibration } from '../../score/calibration.js';
import { createLsgsEngine, type LsgsEngine } from './engine.js';
import { disposeLsgsNetworks, loadLsgsNetworks, type LsgsNetworks } from './networks.js';
import { lsgsScores, type LsgsScoreResult, type LsgsScoreTask, type ParallelRestorationStats } from './restoration.js';
import {
  chunkRunners,
  createScorePool,
  scoreJobModule,
  inProcessChunkRunner,
  loadMethod,
  type LoadedMethod,
  type LoadMethodOptions,
  type WeightsJobInit,
} from '../../inference/method-runtime.js';
import { stackScoresToVolume } from '../../score/pixel-score.js';
import { encodeVolume, rawSampleScore, type EncodedVolume } from '../../score/sample-score.js';
import { isSliceSelection, readCalibrationFile } from '../../score/calibration-file.js';
import { runSliceChunks, type ChunkRunner } from '../../score/slice-chunks.js';
import { PAPER_SMOOTHING } from '../../score/pixel-score.js';
import { stackKernels, type VoxelSmoothing } from '../../score/smoothing.js';
import { localMaxExcess, topFractionMean } from '../../score/sample-aggregates.js';
import type { Settings } from '../../score/settings.js';
import { applyMask, bodyMask } from '../../volume/body-mask.js';
import { applyLsgsSettings, isLsgsScoring, ORIGINAL_LSGS_SCORING, type LsgsScoring } from './scoring.js';
import { combinedSampleRaw, samplePartsOf, samplePartsProblem, type SampleParts } from '../../score/reference-chain.js';
import { interiorSampleRaw } from '../../score/code-nll-reference.js';
import { standardisedResidual } from '../../score/residual-reference.js';
import { loadChainReferences, type ChainReferenceSources } from '../../score/chain-references.js';
import { stackToVolume } from '../../volume/resample.js';
import { LSGS_NLL_REFERENCE, LSGS_RESIDUAL_REFERENCE, lsgsNetworksFingerprint, readLsgsNllReference, readLsgsResidualReference, transformerFingerprint, type LsgsResidualRecipe } from './references.js';

export const LSGS_CALIBRATION_FILE = 'lsgs-calibration.json';
export const LSGS_CALIBRATION_FORMAT = 'moodlsr-lsgs-calibration';
export const LSGS_CALIBRATION_VERSION = 1;
export const DEFAULT_LSGS_COPIES = 15;
export const DEFAULT_LSGS_ROUNDS = 3;

export interface LsgsCalibration {
  readonly format: typeof LSGS_CALIBRATION_FORMAT;
  readonly version: number;
  readonly region: Region;
  readonly slices: SliceSelection;
  /** S: restorations per slice. */
  readonly copies: number;
  /** Most parallel resampling rounds. */
  readonly rounds: number;
  /** k of the residual weights softmax(k / mean residual). */
  readonly k: number;
  /** λs (nats): codes above it count in the sample score. */
  readonly lambdaS: number;
  /** λ (nats): codes above it are resampled in the restoration. */
  readonly lambdaP: number;
  /** Zero the pixel score outside the input's foreground before smoothing. */
  readonly foregroundMask: boolean;
  readonly sampleCalibration: SampleCalibration;
  /**
   * For a combined aggregate (sample=sum+interior): each part's calibration on the same held-out
   * normals; the raw combined score is the largest calibrated part, then `sampleCalibration` applies.
   */
  readonly sampleParts?: SampleParts;
  /** c of the pixel map AS / (AS + c), in normalised intensity units. */
  readonly pixelScale: number;
  /** Smoothing, mask, sample aggregate and residual reference (absent: the original chain, ORIGINAL_LSGS_SCORING). */
  readonly scoring?: LsgsScoring;
  readonly heldOut?: Record<string, unknown>;
}

export function lsgsCalibrationPath(dir: string): string {
  return path.join(dir, LSGS_CALIBRATION_FILE);
}

export function validateLsgsCalibration(raw: unknown): LsgsCalibration {
  const c = raw as Partial<LsgsCalibration>;
  if (c === null || typeof c !== 'object' || c.format !== LSGS_CALIBRATION_FORMAT) throw new Error(`not a ${LSGS_CALIBRATION_FORMAT} file`);
  if (c.version !== LSGS_CALIBRATION_VERSION) throw new Error(`version ${c.version} is not supported (expected ${LSGS_CALIBRATION_VERSION})`);
  if (c.region !== 'brain' && c.region !== 'abdomen') throw new Error(`region must be 'brain' or 'abdomen', got ${JSON.stringify(c.region)}`);
  if (!isSliceSelection(c.slices)) throw new Error(`slices must be 'all', {every: n} or {count: n}, got ${JSON.stringify(c.slices)}`);
  if (typeof c.copies !== 'number' || !Number.isInteger(c.copies) || c.copies < 1) throw new Error('copies must be a positive integer');
  if (typeof c.rounds !== 'number' || !Number.isInteger(c.rounds) || c.rounds < 0) throw new Error('rounds must be a non-negative integer');
  for (const key of ['k', 'lambdaS', 'lambdaP'] as const) {
    if (typeof c[key] !== 'number' || !Number.isFinite(c[key])) throw new Error(`${key} must be a finite number`);
  }
  if (typeof c.foregroundMask !== 'boolean') throw new Error('foregroundMask must be true or false');
  if (typeof c.pixelScale !== 'number' || !(c.pixelScale > 0) || !Number.isFinite(c.pixelScale)) throw new Error('pixelScale must be a positive number');
  if (!isSampleCalibration(c.sampleCalibration)) throw new Error('sampleCalibration is missing or malformed');
  if (c.scoring !== undefined && !isLsgsScoring(c.scoring)) throw new Error('scoring is malformed (smoothing {min, avg}, mask, sample, sampleTop, reference, referenceFloor)');
  const partsProblem = samplePartsProblem(c.sampleParts, c.scoring?.sample);
  if (partsProblem !== null) throw new Error(partsProblem);
  return c as LsgsCalibration;
}

export function readLsgsCalibration(dir: string): LsgsCalibration {
  return readCalibrationFile(lsgsCalibrationPath(dir), dir, 'lsgs', validateLsgsCalibration);
}

export type EncodedStack = EncodedVolume;

export async function encodeForLsgs(engine: LsgsEngine, volume: Volume, region: Region, slices: SliceSelection): Promise<EncodedStack> {
  return encodeVolume(engine, volume, region, slices);
}

export type LsgsRunner = ChunkRunner<LsgsScoreTask, LsgsScoreResult>;

export function inProcessLsgsRunner(engine: LsgsEngine): LsgsRunner {
  return inProcessChunkRunner((task) => lsgsScores(engine, task));
}

export type LsgsJobInit = WeightsJobInit;

export async function createLsgsPool(weightsDir: string, workers: number): Promise<InferencePool<LsgsScoreTask, LsgsScoreResult>> {
  return createScorePool(scoreJobModule(import.meta.url, 'job'), weightsDir, workers);
}

export interface LsgsPixelParameters {
  readonly region: Region;
  readonly slices: SliceSelection;
  readonly copies: number;
  readonly rounds: number;
  readonly lambdaP: number;
  readonly k: number;
  readonly foregroundMask: boolean;
  /** Kernels with a z-extent in voxels (absent: the paper's kernels counted in slices). */
  readonly smoothing?: VoxelSmoothing;
  readonly seed: number;
  /** Slice chunks handed to the runner; slice i goes to chunk i mod chunks. */
  readonly chunks: number;
}

export interface LsgsPixelStack {
  readonly encoded: EncodedStack;
  /** Smoothed AS at model resolution, count × S × S, before scaling. */
  readonly smoothed: Float32Array;
  readonly stats: ParallelRestorationStats;
  readonly restoreWall: number;
  /** Summed over chunks (workers overlap): transformer rounds, then decoding. */
  readonly restoreSeconds: number;
  readonly decodeSeconds: number;
  readonly decodedMaps: number;
}

function sumStats(parts: readonly ParallelRestorationStats[]): ParallelRestorationStats {
  const add = (key: keyof ParallelRestorationStats) => parts.reduce((a, s) => a + s[key], 0);
  return {
    slices: add('slices'),
    copies: parts[0]?.copies ?? 0,
    positions: parts[0]?.positions ?? 0,
    roundsRun: parts.reduce((a, s) => Math.max(a, s.roundsRun), 0),
    mapPasses: add('mapPasses'),
    naiveCopyPasses: add('naiveCopyPasses'),
    resampled: add('resampled'),
    changed: add('changed'),
    transformerSeconds: add('transformerSeconds'),
  };
}

export function describeLsgsRestoration(s: ParallelRestorationStats): string {
  return `${s.roundsRun} rounds, ${s.mapPasses} transformer map passes (vs ${s.naiveCopyPasses} copy-passes unshared), ${s.resampled} resampled, ${s.changed} changed`;
}

/** Encode, restore (chunked), decode, residuals against X̂, mask and smooth: the pixel score before the volume grid. */
export async function lsgsPixelStack(engine: LsgsEngine, volume: Volume, params: LsgsPixelParameters, runner: LsgsRunner): Promise<LsgsPixelStack> {
  const encoded = await encodeForLsgs(engine, volume, params.region, params.slices);
  const transformer = engine.nets.transformer.cfg;
  const background = normalisedBackground(normalisationFor(params.region));
  const { results, smoothed, restoreWall } = await runSliceChunks(
    encoded.stack,
    encoded.codes,
    transformer.height * transformer.width,
    params.chunks,
    (chunk): LsgsScoreTask => ({
      images: chunk.images,
      codes: chunk.codes,
      slicePositions: chunk.slicePositions,
      restoration: { copies: params.copies, lambda: params.lambdaP, rounds: params.rounds, seed: params.seed, sliceKeys: chunk.sliceKeys },
      k: params.k,
      foregroundMask: params.foregroundMask,
      background,
    }),
    runner,
    params.smoothing ? stackKernels(params.smoothing, encoded.stack.zs) : PAPER_SMOOTHING,
  );
  const total = (pick: (r: LsgsScoreResult) => number): number => results.reduce((a, r) => a + pick(r), 0);
  return {
    encoded,
    smoothed,
    stats: sumStats(results.map((r) => r.stats)),
    restoreWall,
    restoreSeconds: total((r) => r.restoreSeconds),
    decodeSeconds: total((r) => r.decodeSeconds),
    decodedMaps: total((r) => r.decodedMaps),
  };
}

/** The weights folder loaded onto its inference engine. */
export type LsgsModel = LoadedMethod<LsgsNetworks, LsgsEngine, LsgsCalibration>;

export type LoadLsgsOptions = LoadMethodOptions;

export async function loadLsgsModel(dir: string, opts: LoadLsgsOptions = {}): Promise<LsgsModel> {
  return loadMethod(dir, { readCalibration: readLsgsCalibration, loadNetworks: loadLsgsNetworks, disposeNetworks: disposeLsgsNetworks, createEngine: createLsgsEngine }, opts);
}

export interface LsgsPredictorOptions {
  /** Worker threads for the pixel score with TF.js; 0 = in-process. Default: one per core on wasm with ≥ 2 cores; none on ONNX Runtime. */
  readonly workers?: number;
  readonly copies?: number;
  readonly rounds?: number;
  readonly slices?: SliceSelection;
  /** `--set` overrides of the calibration's numbers and scoring (see ./scoring.ts). */
  readonly settings?: Settings;
}

export function lsgsPredictor(model: LsgsModel, opts: LsgsPredictorOptions = {}): Predictor {
  const base = model.calibration;
  const cal = applyLsgsSettings(
    {
      ...base,
      scoring: base.scoring ?? ORIGINAL_LSGS_SCORING,
      ...(opts.slices ? { slices: opts.slices } : {}),
      ...(opts.copies !== undefined ? { copies: opts.copies } : {}),
      ...(opts.rounds !== undefined ? { rounds: opts.rounds } : {}),
    },
    opts.settings,
  );
  const { slices, copies, rounds, scoring } = cal;
  const runners = chunkRunners(model.engine, opts.workers, inProcessLsgsRunner(model.engine), (workers) => createLsgsPool(model.dir, workers));
  // The references the chosen chain reads, loaded now: a missing one fails before any case is scored.
  const refs = loadChainReferences(lsgsChainReferences(model.dir), {
    sample: scoring.sample,
    reference: scoring.reference === true,
    recipe: { lambdaP: cal.lambdaP, copies: cal.copies, rounds: cal.rounds, k: cal.k, foregroundMask: cal.foregroundMask, smoothing: scoring.smoothing ?? null },
    calibration: cal,
    calibratedSample: base.scoring?.sample ?? ORIGINAL_LSGS_SCORING.sample,
  });
  let warned = false;
  const warnOnce = (ctx: CaseContext): void => {
    if (warned) return;
    warned = true;
    for (const w of refs.warnings) ctx.log(w);
  };

  async function pixelMap(volume: Volume, ctx: CaseContext): Promise<Float32Array> {
    warnOnce(ctx);
    const { run, chunks } = await runners.get();
    const result = await lsgsPixelStack(
      model.engine,
      volume,
      {
        region: cal.region,
        slices,
        copies,
        rounds,
        lambdaP: cal.lambdaP,
        k: cal.k,
        foregroundMask: cal.foregroundMask,
        ...(scoring.smoothing ? { smoothing: scoring.smoothing } : {}),
        seed: ctx.seed,
        chunks,
      },
      run,
    );
    const stack = result.encoded.stack;
    const map = refs.residual !== null
      ? stackToVolume({ ...stack, data: standardisedResidual(result.smoothed, stack, refs.residual, cal.pixelScale, scoring.referenceFloor) }, volume.shape)
      : stackScoresToVolume(result.smoothed, stack, volume.shape, cal.pixelScale);
    if (scoring.mask === 'body') applyMask(map, bodyMask(volume.data, volume.shape));
    ctx.log(`lsgs pixel (${model.engine.name}): encode ${result.encoded.encodeSeconds.toFixed(2)} s, restore+decode ${result.restoreWall.toFixed(2)} s wall (restore ${result.restoreSeconds.toFixed(2)} s, decode ${result.decodeSeconds.toFixed(2)} s of ${result.decodedMaps} maps); ${describeLsgsRestoration(result.stats)}`);
    return map;
  }

  return {
    name: 'lsgs',
    tasks: ['sample', 'pixel'],
    async sampleScore(volume: Volume, ctx: CaseContext): Promise<number> {
      warnOnce(ctx);
      if (scoring.sample === 'top') {
        const map = await pixelMap(volume, ctx);
        const raw = topFractionMean(map, scoring.sampleTop, scoring.mask === 'body' ? bodyMask(volume.data, volume.shape) : undefined);
        const score = applySampleCalibration(refs.sampleCalibration, raw);
        ctx.log(`lsgs sample (top ${scoring.sampleTop} of the pixel map): raw ${raw.toFixed(4)} → ${score.toFixed(4)}`);
        return score;
      }
      const encoded = await encodeForLsgs(model.engine, volume, cal.region, slices);
      const t0 = performance.now();
      const nll = await model.engine.transformer.nlls(encoded.codes, encoded.stack.positions);
      const { height, width } = model.engine.nets.transformer.cfg;
      const rawOf = (aggregate: string): number => {
        if (aggregate === 'localmax') return localMaxExcess(nll, [width, height, encoded.stack.count], cal.lambdaS);
        if (aggregate === 'interior') return interiorSampleRaw(nll, encoded.stack, width, normalisedBackground(normalisationFor(cal.region)), refs.nll!);
        return rawSampleScore(nll, cal.lambdaS);
      };
      const parts = samplePartsOf(scoring.sample);
      const raw = parts !== undefined ? combinedSampleRaw(parts.map((part) => [part, rawOf(part)]), cal.sampleParts, 'lsgs') : rawOf(scoring.sample);
      const score = applySampleCalibration(refs.sampleCalibration, raw);
      ctx.log(`lsgs sample (${model.engine.name}${scoring.sample === 'sum' ? '' : `, ${scoring.sample}`}): raw ${raw.toFixed(2)} → ${score.toFixed(4)}; encode ${encoded.encodeSeconds.toFixed(2)} s, transformer ${((performance.now() - t0) / 1000).toFixed(2)} s`);
      return score;
    },
    pixelScore: pixelMap,
    async dispose(): Promise<void> {
      await runners.close();
      await model.engine.dispose();
      disposeLsgsNetworks(model.nets);
    },
  };
}

/** Where LSGS keeps its normal references (built by `calibrate lsgs --reference-data DIR`) and its calibration. */
function lsgsChainReferences(weightsDir: string): ChainReferenceSources<LsgsResidualRecipe> {
  return {
    method: 'lsgs',
    weightsDir,
    nllFile: LSGS_NLL_REFERENCE,
    readNll: readLsgsNllReference,
    priorName: 'transformer',
    priorFingerprint: transformerFingerprint,
    residualFile: LSGS_RESIDUAL_REFERENCE,
    readResidual: readLsgsResidualReference,
    networksFingerprint: lsgsNetworksFingerprint,
    calibrationFile: lsgsCalibrationPath(weightsDir),
  };
}

/** For the METHODS registry. */
export async function createLsgsPredictor(weightsDir: string, opts: LoadLsgsOptions & { readonly settings?: Settings } = {}): Promise<Predictor> {
  const { settings, ...load } = opts;
  return lsgsPredictor(await loadLsgsModel(weightsDir, load), settings ? { settings } : {});
}
