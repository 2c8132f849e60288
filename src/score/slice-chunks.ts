/**
 * Slice chunks of the restoration-based pixel scores (lsr, lsgs): slice i of a stack goes to chunk
 * i mod chunks, each chunk becomes one task for a runner (in-process or a worker), and the chunks'
 * score maps go back into stack order and are smoothed. Each slice's random stream is keyed by its
 * z index, so the chunking does not change the result.
 */
import type { SliceStack } from '../volume/slices.js';
import { PAPER_SMOOTHING, smoothScoreStack, type SmoothingKernels } from './pixel-score.js';

/** Runs tasks (slice chunks), in-process or on workers; results in task order. */
export type ChunkRunner<TTask, TResult> = (tasks: readonly TTask[]) => Promise<TResult[]>;

/** The slices of one chunk, gathered from the stack. */
export interface ChunkSlices {
  /** Images of the chunk's slices, count × S × S. */
  readonly images: Float32Array;
  /** Their code maps, count × cells. */
  readonly codes: Int32Array;
  readonly slicePositions: Float32Array;
  /** z indices: the keys of the slices' random streams. */
  readonly sliceKeys: number[];
}

export interface ChunkedScores<TResult> {
  /** Runner results, one per chunk. */
  readonly results: TResult[];
  /** Smoothed score at model resolution, count × S × S, in stack order. */
  readonly smoothed: Float32Array;
  /** Wall time of the runner (all chunks, parallel when on workers). */
  readonly restoreWall: number;
  readonly smoothSeconds: number;
}

/** Chunks of slice indices 0 … count − 1: slice i goes to chunk i mod chunks (1 ≤ chunks ≤ count). */
export function sliceChunks(count: number, chunks: number): number[][] {
  const n = Math.max(1, Math.min(chunks, count));
  const members: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < count; i++) members[i % n]!.push(i);
  return members;
}

function gatherChunk(stack: SliceStack, codes: Int32Array, cells: number, slices: readonly number[]): ChunkSlices {
  const plane = stack.width * stack.width;
  const images = new Float32Array(slices.length * plane);
  const chunkCodes = new Int32Array(slices.length * cells);
  slices.forEach((s, i) => {
    images.set(stack.data.subarray(s * plane, (s + 1) * plane), i * plane);
    chunkCodes.set(codes.subarray(s * cells, (s + 1) * cells), i * cells);
  });
  return {
    images,
    codes: chunkCodes,
    slicePositions: Float32Array.from(slices, (s) => stack.positions[s]!),
    sliceKeys: slices.map((s) => stack.zs[s]!),
  };
}

/**
 * Splits the stack (square slices, `cells` codes per slice) into `chunks` tasks made by `makeTask`,
 * runs them, puts the score maps back in stack order and smooths them.
 */
export async function runSliceChunks<TTask, TResult extends { readonly scores: Float32Array }>(
  stack: SliceStack,
  codes: Int32Array,
  cells: number,
  chunks: number,
  makeTask: (chunk: ChunkSlices) => TTask,
  runner: ChunkRunner<TTask, TResult>,
  smoothing: SmoothingKernels = PAPER_SMOOTHING,
): Promise<ChunkedScores<TResult>> {
  const size = stack.width;
  const plane = size * size;
  const members = sliceChunks(stack.count, chunks);
  const tasks = members.map((slices) => makeTask(gatherChunk(stack, codes, cells, slices)));
  const t0 = performance.now();
  const results = await runner(tasks);
  const restoreWall = (performance.now() - t0) / 1000;
  const scores = new Float32Array(stack.count * plane);
  members.forEach((slices, c) => slices.forEach((s, i) => scores.set(results[c]!.scores.subarray(i * plane, (i + 1) * plane), s * plane)));
  const t1 = performance.now();
  const smoothed = smoothScoreStack(scores, stack.count, size, size, smoothing);
  return { results, smoothed, restoreWall, smoothSeconds: (performance.now() - t1) / 1000 };
}
