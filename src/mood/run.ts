/**
 * The MOOD submission contract: score every case of an input folder into an output folder.
 *
 * - cases: every *.nii / *.nii.gz in IN, sorted; other entries are ignored with one note;
 * - sample task → OUT/F.txt holding one finite float in [0, 1]; pixel task → OUT/F, a NIfTI of the
 *   input's shape on the input's grid (header copied), finite values in [0, 1];
 * - every temporary file lives in the run's scratch folder OUT/.moodlsr-tmp-XXXXXX (src/mood/scratch.ts;
 *   unique per run, so shards on several hosts sharing OUT never remove each other's): outputs are
 *   written there and renamed into OUT when complete; TMPDIR points there while the run lasts (the root
 *   FS may be read-only); it is removed at the end, on SIGINT/SIGTERM/SIGHUP (src/mood/interrupt.ts),
 *   and by the next run when its owner died without removing it;
 * - the output folder is created level by level, never on a kernel file system (src/io/make-folder.ts);
 * - a bad case gets one log line and no output file (a stale one from an earlier run is removed); the
 *   other cases are still written.
 */
import { rmSync } from 'node:fs';
import { realpath, rename, rm, access, constants, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { createRng } from '../engine/random.js';
import { describeError, fsReason, InputFileError } from '../errors.js';
import { atomicWriteFile } from '../io/atomic.js';
import { FolderError, makeFolder } from '../io/make-folder.js';
import { countNonFinite, readNifti, writeNifti } from '../io/nifti.js';
import { voxelCount, withData } from '../volume/volume.js';
import { listCases, outputPathFor, selectShard, type Shard } from './cases.js';
import { interruptible } from './interrupt.js';
import type { MoodTask, Predictor } from './predictor.js';
import { createScratch, removeStaleScratch, SCRATCH_PREFIX, touchScratch } from './scratch.js';

export { SCRATCH_PREFIX };

export interface PredictionRequest {
  readonly task: MoodTask;
  readonly inDir: string;
  readonly outDir: string;
  readonly predictor: Predictor;
  readonly seed: number;
  readonly shard?: Shard;
  /** NIfTI datatype of pixel maps: float32 (exact) or uint16 with slope 1/65535 (half the size). */
  readonly pixelDtype?: 'float32' | 'uint16';
  readonly log: (line: string) => void;
  /** Called before each case (1-based index), e.g. for a progress line on a terminal. */
  readonly onCaseStart?: (index: number, total: number, name: string) => void;
}

export interface CaseFailure {
  readonly name: string;
  readonly reason: string;
}

export interface PredictionSummary {
  readonly task: MoodTask;
  readonly cases: readonly string[];
  readonly written: readonly string[];
  readonly failed: readonly CaseFailure[];
  readonly seconds: number;
}

/** A setup problem that stops the whole run before any case (unreadable IN, unwritable OUT, no cases). */
export class PredictionSetupError extends Error {
  override name = 'PredictionSetupError';
}

/** Seed of one case: depends on the run's seed and the case name only, so shards agree with a full run. */
export function caseSeed(runSeed: number, caseName: string): number {
  return createRng(`${runSeed}:${caseName}`).seed();
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' | ');
}

export async function runPrediction(req: PredictionRequest): Promise<PredictionSummary> {
  const started = performance.now();
  const inDir = resolve(req.inDir);
  const outDir = resolve(req.outDir);
  if (!req.predictor.tasks.includes(req.task)) {
    throw new PredictionSetupError(`method ${req.predictor.name} has no ${req.task} score`);
  }
  let listing;
  try {
    listing = await listCases(inDir);
  } catch (err) {
    throw new PredictionSetupError(`cannot read input folder ${inDir}: ${fsReason(err)}`);
  }
  if (listing.cases.length === 0) throw new PredictionSetupError(`no .nii or .nii.gz files in ${inDir}`);
  if (listing.ignored.length > 0) {
    const shown = listing.ignored.slice(0, 5).join(', ');
    req.log(`ignoring ${listing.ignored.length} non-NIfTI entr${listing.ignored.length === 1 ? 'y' : 'ies'} of ${inDir}: ${shown}${listing.ignored.length > 5 ? ', …' : ''}`);
  }
  const cases = req.shard ? selectShard(listing.cases, req.shard) : listing.cases;
  if (req.shard) req.log(`shard ${req.shard.index}/${req.shard.count}: ${cases.length} of ${listing.cases.length} cases`);

  const scratch = await prepareOutput(outDir, req.log);
  if (req.task === 'pixel' && (await realpath(outDir)) === (await realpath(inDir))) {
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
    throw new PredictionSetupError(`the output folder is the input folder (${inDir}): pixel maps would overwrite the cases`);
  }
  const previousTmp = process.env.TMPDIR;
  process.env.TMPDIR = scratch;
  const restoreTmp = (): void => {
    if (previousTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previousTmp;
  };

  const written: string[] = [];
  const failed: CaseFailure[] = [];
  req.log(`${req.predictor.name} ${req.task}: ${cases.length} case${cases.length === 1 ? '' : 's'} to score into ${outDir}`);
  const scoreAll = async (): Promise<void> => {
    for (const [i, name] of cases.entries()) {
      const t0 = performance.now();
      const progress = `[${i + 1}/${cases.length}]`;
      req.onCaseStart?.(i + 1, cases.length, name);
      try {
        await predictCase(req, join(inDir, name), name, outDir, scratch);
        written.push(name);
        req.log(`${progress} ${name}: ${req.task} written (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (err) {
        const reason = oneLine(err instanceof InputFileError ? err.reason : describeError(err));
        failed.push({ name, reason });
        await rm(outputPathFor(outDir, name, req.task), { force: true }).catch(() => undefined);
        req.log(`${progress} ${name}: FAILED, no output written: ${reason}`);
      }
      await touchScratch(scratch);
    }
  };
  try {
    await interruptible(
      scoreAll,
      () => {
        restoreTmp();
        rmSync(scratch, { recursive: true, force: true });
      },
      (signal) => req.log(`${signal}: stopping after ${written.length + failed.length} of ${cases.length} cases; removing the temporary files`),
    );
  } finally {
    restoreTmp();
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
  const seconds = (performance.now() - started) / 1000;
  req.log(
    `${req.predictor.name} ${req.task}: ${written.length}/${cases.length} cases written, ${failed.length} failed, ` +
      `${seconds.toFixed(1)} s total, ${(seconds / Math.max(1, cases.length)).toFixed(2)} s per case`,
  );
  return { task: req.task, cases, written, failed, seconds };
}

/**
 * Creates OUT (never on a kernel file system), checks that it is writable, removes the scratch folders of
 * dead runs and creates this run's. Every failure is a PredictionSetupError naming the folder and the cause.
 */
async function prepareOutput(outDir: string, log: (line: string) => void): Promise<string> {
  try {
    await makeFolder(outDir);
  } catch (err) {
    const reason = err instanceof FolderError ? (err.folder === outDir ? err.reason : err.message) : describeError(err);
    throw new PredictionSetupError(`cannot use output folder ${outDir}: ${reason}`);
  }
  try {
    await access(outDir, constants.W_OK);
  } catch (err) {
    throw new PredictionSetupError(`cannot write to output folder ${outDir}: ${fsReason(err)}`);
  }
  const stale = await removeStaleScratch(outDir);
  if (stale.length > 0) log(`removed ${stale.length} scratch folder${stale.length === 1 ? '' : 's'} of interrupted runs: ${stale.join(', ')}`);
  let scratch: string | null = null;
  try {
    scratch = await createScratch(outDir);
    await writeFile(join(scratch, 'probe'), '');
    return scratch;
  } catch (err) {
    if (scratch !== null) await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
    throw new PredictionSetupError(`cannot write to output folder ${outDir}: ${fsReason(err)}`);
  }
}

async function predictCase(req: PredictionRequest, path: string, name: string, outDir: string, scratch: string): Promise<void> {
  const { volume, header } = await readNifti(path);
  const bad = countNonFinite(volume.data);
  if (bad > 0) throw new InputFileError(path, `${bad} voxel${bad === 1 ? ' is' : 's are'} NaN or infinite`);
  const ctx = { name, seed: caseSeed(req.seed, name), log: (line: string) => req.log(`${name}: ${line}`) };
  const target = outputPathFor(outDir, name, req.task);
  // written complete in the scratch folder (same file system), then renamed into OUT
  const staged = join(scratch, basename(target));
  if (req.task === 'sample') {
    const score = await req.predictor.sampleScore!(volume, ctx);
    if (!Number.isFinite(score)) throw new Error(`${req.predictor.name} produced a non-finite sample score (${score})`);
    if (score === 0) warnAllZero(req, ctx.log, volume.shape, 'gave a sample score of exactly 0');
    await atomicWriteFile(staged, `${formatScore(Math.min(1, Math.max(0, score)))}\n`);
    await rename(staged, target);
    return;
  }
  const map = await req.predictor.pixelScore!(volume, ctx);
  if (map.length !== voxelCount(volume.shape)) {
    throw new Error(`${req.predictor.name} produced ${map.length} voxels for a ${volume.shape.join('×')} volume`);
  }
  const nonFinite = countNonFinite(map);
  if (nonFinite > 0) throw new Error(`${req.predictor.name} produced ${nonFinite} non-finite voxel scores`);
  let positive = 0;
  for (let i = 0; i < map.length; i++) {
    map[i] = Math.min(1, Math.max(0, map[i]!));
    if (map[i]! > 0) positive++;
  }
  if (positive === 0) warnAllZero(req, ctx.log, volume.shape, 'scored every voxel exactly 0');
  await writeNifti(staged, withData(volume, map), {
    dtype: req.pixelDtype ?? 'float32',
    reference: header,
    description: `moodlsr ${req.predictor.name} pixel score`,
  });
  await rename(staged, target);
}

/** Sides below this many voxels are far smaller than any MOOD volume (256³ brain, 512³ abdomen). */
const SMALL_SIDE = 32;

/**
 * An all-zero result of a tiny volume carries no ranking at all: say so, naming the size as the cause.
 * (On MOOD-sized volumes an all-zero map is a legitimate "nothing anomalous here".)
 */
function warnAllZero(req: PredictionRequest, log: (line: string) => void, shape: readonly number[], what: string): void {
  if (Math.min(...shape) >= SMALL_SIDE) return;
  log(`warning: ${req.predictor.name} ${what}: the volume is only ${shape.join('×')} voxels, too small for the method to see any structure (MOOD volumes are 256³ or 512³)`);
}

/** Shortest decimal that reads back as the same float64 (JSON number syntax, never exponent-less NaN). */
export function formatScore(x: number): string {
  return String(x);
}
