/**
 * The `disyre` method's weights folder and predictor.
 *
 * Folder: disyre.json/.bin (`moodlsr train disyre`: kind 'disyre', the U-Net's config and weights)
 * and disyre-calibration.json (`moodlsr calibrate disyre`: the scoring it was fitted with and the
 * sample calibration on held-out normal volumes).
 *
 * Path of a volume: slices every `every`-th z, resized to the network's side, raw intensities
 * (src/volume/preprocess.ts with the config's normalisation) → the network restores every slice at each
 * level t (ONNX Runtime on every core, or TF.js) → mean |x − x̂| → ./score.ts (smoothing, volume grid,
 * mask) → pixel map; sample score = the calibrated top-fraction mean of that map. Sample and pixel
 * scores of the same volume share one computation (the last volume's map is kept).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../../engine/backend.js';
import { InputFileError } from '../../errors.js';
import { atomicWriteFileSync } from '../../io/atomic.js';
import type { EngineChoice, EngineName } from '../../inference/engine-choice.js';
import { lazySession, type LazySession } from '../../inference/onnx-sessions.js';
import { resolveEngine } from '../../inference/resolve-engine.js';
import { disposeParams, type ParamMap } from '../../models/params.js';
import { binaryPath, loadModel, manifestPath, packageVersion, registerModelKind } from '../../models/weights.js';
import type { CaseContext, Predictor } from '../../mood/predictor.js';
import { hostParams } from '../../onnx/emit-blocks.js';
import { requireOnnxRuntime } from '../../onnx/runtime.js';
import { applySampleCalibration, isSampleCalibration, type SampleCalibration } from '../../score/calibration.js';
import { readCalibrationFile } from '../../score/calibration-file.js';
import type { Region } from '../../volume/normalise.js';
import { preprocessForModel } from '../../volume/preprocess.js';
import type { SliceStack } from '../../volume/slices.js';
import type { Volume } from '../../volume/volume.js';
import { condInputSize, DISYRE_KIND, DISYRE_NAME, hasSegmentationHead, validateDisyreConfig, type DisyreConfig } from './config.js';
import { conditionInput } from './embedding.js';
import { emitDisyreForward } from './emit-unet.js';
import { disyreRawSampleScore, disyreStackMap, disyreVolumePixels, restorationMaps, type DisyreVolumeMap, type Restorer } from './score.js';
import { completeDisyreScoring, disyreScoring, isDisyreScoring, type DisyreScoring } from './settings.js';
import { readPlaceReference, writePlaceReference } from '../../score/place-reference-file.js';
import type { ResidualReference } from '../../score/place-reference.js';
import { disyreHeads, disyreParamSpecs } from './unet.js';

export const DISYRE_CALIBRATION_FILE = 'disyre-calibration.json';
export const DISYRE_CALIBRATION_FORMAT = 'moodlsr-disyre-calibration';
export const DISYRE_CALIBRATION_VERSION = 1;

registerModelKind(DISYRE_KIND, { validateConfig: validateDisyreConfig, paramSpecs: disyreParamSpecs as (c: never) => ReturnType<typeof disyreParamSpecs> });

export interface DisyreCalibration {
  readonly format: typeof DISYRE_CALIBRATION_FORMAT;
  readonly version: number;
  readonly region: Region;
  /** The scoring the calibration was fitted with (the predictor's defaults; `--set` overrides it). */
  readonly scoring: DisyreScoring;
  readonly sample: SampleCalibration;
  readonly heldOut?: Record<string, unknown>;
}

export function disyreCalibrationPath(dir: string): string {
  return path.join(dir, DISYRE_CALIBRATION_FILE);
}

export function validateDisyreCalibration(raw: unknown): DisyreCalibration {
  const c = raw as Partial<DisyreCalibration>;
  if (c === null || typeof c !== 'object' || c.format !== DISYRE_CALIBRATION_FORMAT) throw new Error(`not a ${DISYRE_CALIBRATION_FORMAT} file`);
  if (c.version !== DISYRE_CALIBRATION_VERSION) throw new Error(`version ${c.version} is not supported (expected ${DISYRE_CALIBRATION_VERSION})`);
  if (c.region !== 'brain' && c.region !== 'abdomen') throw new Error(`region must be 'brain' or 'abdomen', got ${JSON.stringify(c.region)}`);
  const scoring = completeDisyreScoring(c.scoring);
  if (!isDisyreScoring(scoring)) throw new Error('scoring is missing or malformed');
  if (!isSampleCalibration(c.sample)) throw new Error('sample is missing or malformed');
  return { ...(c as DisyreCalibration), scoring };
}

export function readDisyreCalibration(dir: string): DisyreCalibration {
  return readCalibrationFile(disyreCalibrationPath(dir), dir, 'disyre', validateDisyreCalibration);
}

export function writeDisyreCalibration(dir: string, calibration: DisyreCalibration): string {
  const file = disyreCalibrationPath(dir);
  atomicWriteFileSync(file, JSON.stringify(validateDisyreCalibration(calibration), null, 1) + '\n');
  return file;
}

/** The normal residual reference's bundle in a weights folder: disyre-reference.json/.bin. */
export const DISYRE_REFERENCE_NAME = 'disyre-reference';
export const DISYRE_REFERENCE_KIND = 'disyre-reference';

export interface DisyreReferenceRecord {
  readonly reference: ResidualReference;
  /** The scoring whose maps it averages (levels, every, pooling, mask). */
  readonly scoring: DisyreScoring;
  readonly files: readonly string[];
}

/** The reference of a weights folder, or null when it has none; a damaged one is an error naming its file. */
export function readDisyreReference(dir: string): DisyreReferenceRecord | null {
  const stored = readPlaceReference(dir, DISYRE_REFERENCE_NAME, DISYRE_REFERENCE_KIND);
  if (stored === null) return null;
  const scoring = completeDisyreScoring(stored.config.scoring);
  if (!isDisyreScoring(scoring)) throw new InputFileError(stored.file, 'config.scoring is missing or malformed');
  const files = stored.config.files;
  return { reference: stored.reference, scoring, files: Array.isArray(files) ? (files as string[]) : [] };
}

/** Writes the reference as float16 next to the weights (atomic: binary first, then the manifest). */
export async function writeDisyreReference(dir: string, record: DisyreReferenceRecord): Promise<string> {
  return writePlaceReference(dir, DISYRE_REFERENCE_NAME, DISYRE_REFERENCE_KIND, record.reference, { scoring: record.scoring, files: record.files });
}

export interface DisyreNetwork {
  readonly cfg: DisyreConfig;
  readonly params: ParamMap;
}

/** Loads `<dir>/disyre.{json,bin}` (TF.js must be initialised); errors name the file. */
export function loadDisyreNetwork(dir: string): DisyreNetwork {
  if (!existsSync(dir)) throw new InputFileError(dir, 'weights folder does not exist');
  for (const file of [manifestPath(dir, DISYRE_NAME), binaryPath(dir, DISYRE_NAME)]) {
    if (!existsSync(file)) throw new InputFileError(file, `missing: the disyre method needs ${DISYRE_NAME}.json and ${DISYRE_NAME}.bin in ${dir} (moodlsr train disyre)`);
  }
  const m = loadModel<DisyreConfig>(dir, DISYRE_NAME, DISYRE_KIND);
  return { cfg: m.config, params: m.params };
}

/** Slices per network call. */
const BATCH = 16;

/** x̂ of every slice at level t with TF.js. */
export function tfjsRestorer(net: DisyreNetwork): Restorer {
  const s = net.cfg.inputSize;
  const plane = s * s;
  return async (images, positions, level) => {
    const count = positions.length;
    const out = new Float32Array(count * plane);
    const seg = hasSegmentationHead(net.cfg) ? new Float32Array(count * plane) : null;
    for (let a = 0; a < count; a += BATCH) {
      const b = Math.min(count, a + BATCH);
      const cond = conditionInput(net.cfg, new Float32Array(b - a).fill(level), positions.subarray(a, b));
      const heads = disyreHeads(net.params, net.cfg, tf.tensor4d(images.subarray(a * plane, b * plane), [b - a, s, s, 1]), tf.tensor2d(cond, [b - a, condInputSize(net.cfg)]));
      out.set(heads.xhat.dataSync() as Float32Array, a * plane);
      if (seg !== null && heads.seg !== null) seg.set(heads.seg.dataSync() as Float32Array, a * plane);
      heads.xhat.dispose();
      heads.seg?.dispose();
    }
    return { xhat: out, segmentation: seg };
  };
}

/** x̂ of every slice at level t with ONNX Runtime (the graph of ./emit-unet.ts). */
export async function onnxRestorer(net: DisyreNetwork, opts: { readonly threads: number; readonly saveTo?: string }): Promise<{ restore: Restorer; session: LazySession }> {
  const ort = await requireOnnxRuntime();
  const model = emitDisyreForward(hostParams(net.params), net.cfg).encode({ producerVersion: packageVersion() });
  if (opts.saveTo !== undefined) atomicWriteFileSync(path.join(opts.saveTo, 'disyre-unet.onnx'), model);
  const session = lazySession(model, opts.threads);
  const s = net.cfg.inputSize;
  const plane = s * s;
  const e = condInputSize(net.cfg);
  const restore: Restorer = async (images, positions, level) => {
    const run = await session();
    const count = positions.length;
    const out = new Float32Array(count * plane);
    const seg = hasSegmentationHead(net.cfg) ? new Float32Array(count * plane) : null;
    for (let a = 0; a < count; a += BATCH) {
      const b = Math.min(count, a + BATCH);
      const cond = conditionInput(net.cfg, new Float32Array(b - a).fill(level), positions.subarray(a, b));
      const result = await run.run({
        image: new ort.Tensor('float32', images.slice(a * plane, b * plane), [b - a, s, s, 1]),
        cond: new ort.Tensor('float32', cond, [b - a, e]),
      });
      out.set(result.xhat!.data as Float32Array, a * plane);
      if (seg !== null) seg.set(result.segmentation!.data as Float32Array, a * plane);
    }
    return { xhat: out, segmentation: seg };
  };
  return { restore, session };
}

export interface DisyreModel {
  readonly dir: string;
  readonly net: DisyreNetwork;
  readonly region: Region;
  readonly engine: EngineName;
  readonly restore: Restorer;
  release(): Promise<void>;
}

export interface LoadDisyreOptions {
  readonly engine?: EngineChoice;
  readonly log?: (line: string) => void;
}

/** The network on the chosen engine (no calibration needed: `calibrate disyre` uses this). */
export async function loadDisyreModel(dir: string, region: Region, opts: LoadDisyreOptions = {}): Promise<DisyreModel> {
  const engine = await initEngine({ prefer: 'auto', log: () => undefined });
  const net = loadDisyreNetwork(dir);
  try {
    const resolved = await resolveEngine(opts.engine ?? 'auto', { tfjsBackend: engine.backend, ...(opts.log ? { log: opts.log } : {}) });
    if (resolved.name === 'onnx') {
      const { restore, session } = await onnxRestorer(net, { threads: resolved.threads, ...(resolved.saveTo ? { saveTo: resolved.saveTo } : {}) });
      return { dir, net, region, engine: 'onnx', restore, release: () => session.release() };
    }
    return { dir, net, region, engine: 'tfjs', restore: tfjsRestorer(net), release: async () => undefined };
  } catch (err) {
    disposeParams(net.params);
    throw err;
  }
}

/** Refuses a map the network cannot give (segmentation, mean, max without the segmentation head). */
export function requireMapSource(cfg: DisyreConfig, scoring: Pick<DisyreScoring, 'map'>, weightsDir: string): void {
  if (scoring.map !== 'residual' && !hasSegmentationHead(cfg)) {
    throw new InputFileError(manifestPath(weightsDir, DISYRE_NAME), `map=${scoring.map} needs the segmentation head, and this network has none (train disyre --segmentation-weight W)`);
  }
}

export interface DisyreVolumeScores extends DisyreVolumeMap {
  readonly stack: SliceStack;
  readonly seconds: { readonly preprocess: number; readonly network: number; readonly map: number };
}

/** Preprocess → restorations at every level → the volume map. */
export async function disyreVolumeScores(
  model: Pick<DisyreModel, 'net' | 'region' | 'restore'>,
  volume: Volume,
  scoring: DisyreScoring,
  reference: ResidualReference | null = null,
): Promise<DisyreVolumeScores> {
  const t0 = performance.now();
  const stack = preprocessForModel(volume, { region: model.region, slices: { every: scoring.every }, size: model.net.cfg.inputSize, normalisation: model.net.cfg.normalisation });
  const t1 = performance.now();
  const maps = await restorationMaps(stack, scoring.levels, model.restore);
  const t2 = performance.now();
  const map = disyreStackMap(maps, stack, scoring, reference);
  return { ...map, stack, seconds: { preprocess: (t1 - t0) / 1000, network: (t2 - t1) / 1000, map: (performance.now() - t2) / 1000 } };
}

export function disyrePredictor(model: DisyreModel, calibration: DisyreCalibration, scoring: DisyreScoring, reference: ResidualReference | null = null): Predictor {
  let last: { volume: Volume; scores: DisyreVolumeScores } | null = null;
  const scoresOf = async (volume: Volume): Promise<{ scores: DisyreVolumeScores; cached: boolean }> => {
    if (last !== null && last.volume === volume) return { scores: last.scores, cached: true };
    const scores = await disyreVolumeScores(model, volume, scoring, reference);
    last = { volume, scores };
    return { scores, cached: false };
  };
  const timing = (v: DisyreVolumeScores, cached: boolean) =>
    cached ? 'map reused' : `preprocess ${v.seconds.preprocess.toFixed(2)} s, network ${v.seconds.network.toFixed(2)} s (${model.engine}, ${v.stack.count} slices × ${scoring.levels.length} levels), map ${v.seconds.map.toFixed(2)} s`;
  return {
    name: 'disyre',
    tasks: ['sample', 'pixel'],
    async sampleScore(volume: Volume, ctx: CaseContext): Promise<number> {
      const { scores, cached } = await scoresOf(volume);
      const raw = disyreRawSampleScore(scores, scoring.fraction);
      const score = applySampleCalibration(calibration.sample, raw);
      ctx.log(`disyre sample: raw ${raw.toFixed(4)} → ${score.toFixed(4)}; ${timing(scores, cached)}`);
      return score;
    },
    async pixelScore(volume: Volume, ctx: CaseContext): Promise<Float32Array> {
      const { scores, cached } = await scoresOf(volume);
      const t0 = performance.now();
      const map = disyreVolumePixels(scores, scores.stack, volume.shape);
      ctx.log(`disyre pixel: ${timing(scores, cached)}, to the volume grid ${((performance.now() - t0) / 1000).toFixed(2)} s`);
      return map;
    },
    async dispose(): Promise<void> {
      last = null;
      await model.release();
      disposeParams(model.net.params);
    },
  };
}

/** For the method registry: the weights folder's network, calibration and scoring (with `settings` applied). */
export async function createDisyrePredictor(
  weightsDir: string,
  opts: { readonly engine?: EngineChoice; readonly settings?: Readonly<Record<string, string>>; readonly log?: (line: string) => void; readonly warn?: (line: string) => void } = {},
): Promise<Predictor> {
  if (!existsSync(weightsDir)) throw new InputFileError(weightsDir, 'weights folder does not exist');
  const calibration = readDisyreCalibration(weightsDir);
  const scoring = disyreScoring(calibration.scoring, opts.settings ?? {});
  const record = scoring.reference ? readDisyreReference(weightsDir) : null;
  if (record !== null) {
    const differs = (['levels', 'every', 'min', 'avg', 'mask'] as const).filter((k) => JSON.stringify(record.scoring[k]) !== JSON.stringify(scoring[k]));
    if (differs.length > 0) (opts.warn ?? opts.log)?.(`warning: the normal residual reference of ${weightsDir} was built with other ${differs.join(', ')}; its standardisation is approximate (rebuild it: calibrate disyre --reference-data …)`);
  }
  const model = await loadDisyreModel(weightsDir, calibration.region, opts);
  try {
    requireMapSource(model.net.cfg, scoring, weightsDir);
  } catch (err) {
    await model.release();
    disposeParams(model.net.params);
    throw err;
  }
  return disyrePredictor(model, calibration, scoring, record?.reference ?? null);
}

