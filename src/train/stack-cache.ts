/**
 * An on-disk cache of preprocessed training slice stacks, so that a resumed run (or the prior after
 * the VQ-VAE, on the same data) does not decompress and preprocess every volume again: reading 80
 * gzipped 256³ volumes and resizing ~170 slices each costs minutes of CPU, the cached floats a
 * second. One pair of files per volume and preparation: `<key>.json` (shape, slice positions and z
 * indices) and `<key>.bin` (the slices, float32 little-endian), written atomically. The key hashes
 * the volume's path, size and modification time with every option that shapes the stack, so a
 * changed file or option misses instead of reading stale slices.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { atomicWriteFile } from '../io/atomic.js';
import type { SliceStack } from '../volume/slices.js';
import type { Shape3 } from '../volume/volume.js';

const FORMAT = 'moodlsr-stack-cache-1';

/** The key of one volume's stack under the given preparation options (any JSON-serialisable object). */
export function stackCacheKey(file: string, preparation: unknown): string {
  const info = statSync(file);
  return createHash('sha256')
    .update(JSON.stringify({ format: FORMAT, file: path.resolve(file), bytes: info.size, mtimeMs: info.mtimeMs, preparation }))
    .digest('hex')
    .slice(0, 24);
}

interface Header {
  format: string;
  shape: Shape3;
  count: number;
  height: number;
  width: number;
  zs: number[];
  positions: number[];
}

/** The cached stack under `key`, or null when absent or damaged. */
export function readCachedStack(dir: string, key: string): { shape: Shape3; stack: SliceStack } | null {
  const headerFile = path.join(dir, `${key}.json`);
  const binFile = path.join(dir, `${key}.bin`);
  if (!existsSync(headerFile) || !existsSync(binFile)) return null;
  let h: Header;
  try {
    h = JSON.parse(readFileSync(headerFile, 'utf8')) as Header;
  } catch {
    return null;
  }
  if (h.format !== FORMAT) return null;
  const bytes = readFileSync(binFile);
  if (bytes.byteLength !== h.count * h.height * h.width * 4) return null;
  const data = new Float32Array(h.count * h.height * h.width);
  new Uint8Array(data.buffer).set(bytes);
  const stack: SliceStack = { data, count: h.count, height: h.height, width: h.width, positions: Float32Array.from(h.positions), zs: h.zs };
  return { shape: h.shape, stack };
}

export async function writeCachedStack(dir: string, key: string, shape: Shape3, stack: SliceStack): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await atomicWriteFile(path.join(dir, `${key}.bin`), new Uint8Array(stack.data.buffer, stack.data.byteOffset, stack.data.byteLength));
  const header: Header = {
    format: FORMAT,
    shape,
    count: stack.count,
    height: stack.height,
    width: stack.width,
    zs: [...stack.zs],
    positions: Array.from(stack.positions),
  };
  // The header last: a reader that finds it finds the whole .bin.
  await atomicWriteFile(path.join(dir, `${key}.json`), `${JSON.stringify(header)}\n`);
}
