/**
 * One case of a `predict` run: read it once, score every task of the run on that same Volume object
 * (a predictor may keep its per-volume work between sampleScore and pixelScore of one volume), write
 * each output complete into its folder's scratch folder, and rename them into place only when every task
 * succeeded: a case that fails in one task leaves no output in any task's folder.
 */
import { rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { describeError, InputFileError } from '../errors.js';
import { atomicWriteFile } from '../io/atomic.js';
import { countNonFinite, readNifti, writeNifti, type NiftiHeaderInfo } from '../io/nifti.js';
import { voxelCount, withData, type Volume } from '../volume/volume.js';
import { outputPathFor } from './cases.js';
import type { CaseContext, MoodTask, Predictor } from './predictor.js';

/** One task of a run, as a case sees it. */
export interface CaseTarget {
  readonly task: MoodTask;
  readonly outDir: string;
  readonly predictor: Predictor;
  /** The run's scratch folder inside outDir (same file system: the final rename is atomic). */
  readonly scratch: string;
}

export interface CaseJob {
  readonly path: string;
  readonly name: string;
  readonly seed: number;
  readonly pixelDtype: 'float32' | 'uint16';
  readonly log: (line: string) => void;
}

interface StagedOutput {
  readonly staged: string;
  readonly target: string;
}

/** One line saying why a case failed: an input file's reason without its path (the log line names the case). */
export function failureReason(err: unknown): string {
  const text = err instanceof InputFileError ? err.reason : describeError(err);
  return text.replace(/\s*[\r\n]+\s*/g, ' | ');
}

/**
 * Scores `job` for every target, in order, and moves the outputs into place. Throws on the first failure,
 * having removed what it staged; with several targets the error names the task that failed.
 */
export async function scoreCase(job: CaseJob, targets: readonly CaseTarget[]): Promise<void> {
  const { volume, header } = await readNifti(job.path);
  const bad = countNonFinite(volume.data);
  if (bad > 0) throw new InputFileError(job.path, `${bad} voxel${bad === 1 ? ' is' : 's are'} NaN or infinite`);
  const ctx: CaseContext = { name: job.name, seed: job.seed, log: (line: string) => job.log(`${job.name}: ${line}`) };
  const staged: StagedOutput[] = [];
  try {
    for (const t of targets) {
      const target = outputPathFor(t.outDir, job.name, t.task);
      const output = { staged: join(t.scratch, basename(target)), target };
      try {
        if (t.task === 'sample') await stageSampleScore(t.predictor, volume, ctx, output.staged);
        else await stagePixelMap(t.predictor, volume, header, ctx, output.staged, job.pixelDtype);
      } catch (err) {
        throw targets.length > 1 ? new Error(`${t.task}: ${failureReason(err)}`) : err;
      }
      staged.push(output);
    }
    for (const s of staged) await rename(s.staged, s.target);
  } catch (err) {
    await Promise.all(staged.map((s) => rm(s.staged, { force: true }).catch(() => undefined)));
    throw err;
  }
}

async function stageSampleScore(predictor: Predictor, volume: Volume, ctx: CaseContext, staged: string): Promise<void> {
  const score = await predictor.sampleScore!(volume, ctx);
  if (!Number.isFinite(score)) throw new Error(`${predictor.name} produced a non-finite sample score (${score})`);
  if (score === 0) warnAllZero(predictor, ctx.log, volume.shape, 'gave a sample score of exactly 0');
  await atomicWriteFile(staged, `${formatScore(Math.min(1, Math.max(0, score)))}\n`);
}

async function stagePixelMap(
  predictor: Predictor,
  volume: Volume,
  header: NiftiHeaderInfo,
  ctx: CaseContext,
  staged: string,
  dtype: 'float32' | 'uint16',
): Promise<void> {
  const map = await predictor.pixelScore!(volume, ctx);
  if (map.length !== voxelCount(volume.shape)) {
    throw new Error(`${predictor.name} produced ${map.length} voxels for a ${volume.shape.join('×')} volume`);
  }
  const nonFinite = countNonFinite(map);
  if (nonFinite > 0) throw new Error(`${predictor.name} produced ${nonFinite} non-finite voxel scores`);
  let positive = 0;
  for (let i = 0; i < map.length; i++) {
    map[i] = Math.min(1, Math.max(0, map[i]!));
    if (map[i]! > 0) positive++;
  }
  if (positive === 0) warnAllZero(predictor, ctx.log, volume.shape, 'scored every voxel exactly 0');
  await writeNifti(staged, withData(volume, map), {
    dtype,
    reference: header,
    description: `moodlsr ${predictor.name} pixel score`,
  });
}

/** Sides below this many voxels are far smaller than any MOOD volume (256³ brain, 512³ abdomen). */
const SMALL_SIDE = 32;

/**
 * An all-zero result of a tiny volume carries no ranking at all: say so, naming the size as the cause.
 * (On MOOD-sized volumes an all-zero map is a legitimate "nothing anomalous here".)
 */
function warnAllZero(predictor: Predictor, log: (line: string) => void, shape: readonly number[], what: string): void {
  if (Math.min(...shape) >= SMALL_SIDE) return;
  log(`warning: ${predictor.name} ${what}: the volume is only ${shape.join('×')} voxels, too small for the method to see any structure (MOOD volumes are 256³ or 512³)`);
}

/** Shortest decimal that reads back as the same float64 (JSON number syntax, never exponent-less NaN). */
export function formatScore(x: number): string {
  return String(x);
}
