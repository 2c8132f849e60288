/**
 * The MOOD submission contract: score every case of an input folder into an output folder.
 *
 * - cases: every *.nii / *.nii.gz in IN, sorted; other entries are ignored with one note;
 * - sample task → OUT/F.txt holding one finite float in [0, 1]; pixel task → OUT/F, a NIfTI of the
 *   input's shape on the input's grid (header copied), finite values in [0, 1];
 * - every write is atomic (temp file in OUT + rename); scratch files live in OUT/.moodlsr-tmp-XXXXXX
 *   (unique per run, so shards on several hosts sharing OUT never remove each other's), removed at the
 *   end, and TMPDIR points there while the run lasts (the root FS may be read-only);
 * - a bad case gets one log line and no output file (a stale one from an earlier run is removed); the
 *   other cases are still written.
 */
import { mkdir, mkdtemp, realpath, rm, access, constants, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createRng } from '../engine/random.js';
import { describeError, InputFileError } from '../errors.js';
import { atomicWriteFile } from '../io/atomic.js';
import { countNonFinite, readNifti, writeNifti } from '../io/nifti.js';
import { voxelCount, withData } from '../volume/volume.js';
import { listCases, outputPathFor, selectShard, type Shard } from './cases.js';
import type { MoodTask, Predictor } from './predictor.js';

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

/** Scratch folders are OUT/<prefix><random>; temp files of atomic writes end in `.tmp`. */
export const SCRATCH_PREFIX = '.moodlsr-tmp-';

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
    throw new PredictionSetupError(`cannot read input folder ${inDir}: ${(err as Error).message}`);
  }
  if (listing.cases.length === 0) throw new PredictionSetupError(`no .nii or .nii.gz files in ${inDir}`);
  if (listing.ignored.length > 0) {
    const shown = listing.ignored.slice(0, 5).join(', ');
    req.log(`ignoring ${listing.ignored.length} non-NIfTI entr${listing.ignored.length === 1 ? 'y' : 'ies'} of ${inDir}: ${shown}${listing.ignored.length > 5 ? ', …' : ''}`);
  }
  const cases = req.shard ? selectShard(listing.cases, req.shard) : listing.cases;
  if (req.shard) req.log(`shard ${req.shard.index}/${req.shard.count}: ${cases.length} of ${listing.cases.length} cases`);

  let scratch: string | null = null;
  try {
    await mkdir(outDir, { recursive: true });
    await access(outDir, constants.W_OK);
    scratch = await mkdtemp(join(outDir, SCRATCH_PREFIX));
    await writeFile(join(scratch, 'probe'), '');
  } catch (err) {
    if (scratch !== null) await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
    throw new PredictionSetupError(`cannot write to output folder ${outDir}: ${(err as Error).message}`);
  }
  if (req.task === 'pixel' && (await realpath(outDir)) === (await realpath(inDir))) {
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
    throw new PredictionSetupError(`the output folder is the input folder (${inDir}): pixel maps would overwrite the cases`);
  }
  const previousTmp = process.env.TMPDIR;
  process.env.TMPDIR = scratch;

  const written: string[] = [];
  const failed: CaseFailure[] = [];
  try {
    for (const name of cases) {
      const t0 = performance.now();
      try {
        await predictCase(req, join(inDir, name), name, outDir);
        written.push(name);
        req.log(`${name}: ${req.task} written (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (err) {
        const reason = oneLine(err instanceof InputFileError ? err.reason : describeError(err));
        failed.push({ name, reason });
        await rm(outputPathFor(outDir, name, req.task), { force: true }).catch(() => undefined);
        req.log(`${name}: FAILED, no output written: ${reason}`);
      }
    }
  } finally {
    if (previousTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previousTmp;
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
  const seconds = (performance.now() - started) / 1000;
  req.log(
    `${req.predictor.name} ${req.task}: ${written.length}/${cases.length} cases written, ${failed.length} failed, ` +
      `${seconds.toFixed(1)} s total, ${(seconds / Math.max(1, cases.length)).toFixed(2)} s per case`,
  );
  return { task: req.task, cases, written, failed, seconds };
}

async function predictCase(req: PredictionRequest, path: string, name: string, outDir: string): Promise<void> {
  const { volume, header } = await readNifti(path);
  const bad = countNonFinite(volume.data);
  if (bad > 0) throw new InputFileError(path, `${bad} voxel${bad === 1 ? ' is' : 's are'} NaN or infinite`);
  const ctx = { name, seed: caseSeed(req.seed, name), log: (line: string) => req.log(`${name}: ${line}`) };
  const target = outputPathFor(outDir, name, req.task);
  if (req.task === 'sample') {
    const score = await req.predictor.sampleScore!(volume, ctx);
    if (!Number.isFinite(score)) throw new Error(`${req.predictor.name} produced a non-finite sample score (${score})`);
    await atomicWriteFile(target, `${formatScore(Math.min(1, Math.max(0, score)))}\n`);
    return;
  }
  const map = await req.predictor.pixelScore!(volume, ctx);
  if (map.length !== voxelCount(volume.shape)) {
    throw new Error(`${req.predictor.name} produced ${map.length} voxels for a ${volume.shape.join('×')} volume`);
  }
  const nonFinite = countNonFinite(map);
  if (nonFinite > 0) throw new Error(`${req.predictor.name} produced ${nonFinite} non-finite voxel scores`);
  for (let i = 0; i < map.length; i++) map[i] = Math.min(1, Math.max(0, map[i]!));
  await writeNifti(target, withData(volume, map), {
    dtype: req.pixelDtype ?? 'float32',
    reference: header,
    description: `moodlsr ${req.predictor.name} pixel score`,
  });
}

/** Shortest decimal that reads back as the same float64 (JSON number syntax, never exponent-less NaN). */
export function formatScore(x: number): string {
  return String(x);
}
