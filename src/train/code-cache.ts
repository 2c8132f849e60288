/**
 * The prior trains on codes of a frozen VQ-VAE: every slice of every volume is encoded ONCE (in
 * parallel over the training engine's workers) and kept as int32 code maps with their slice
 * positions. The cache is saved next to the prior's checkpoints (`codes.json` + `codes.bin`, atomic)
 * under a key made of the VQ-VAE's bytes and the volume list, so `--resume` does not re-encode.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { atomicWriteFile } from '../io/atomic.js';
import type { SliceStack } from '../volume/slices.js';
import type { ImageBatch } from './loop-worker.js';

export interface VolumeCodes {
  file: string;
  count: number;
  /** count × height × width code indices. */
  codes: Int32Array;
  positions: Float32Array;
}

export interface CodeCache {
  key: string;
  height: number;
  width: number;
  volumes: VolumeCodes[];
}

/** Key of a cache: hash of the VQ-VAE files' bytes and the volume files (in order). */
export function codeCacheKey(vqvaeFiles: readonly string[], volumeFiles: readonly string[]): string {
  const h = createHash('sha256');
  for (const f of vqvaeFiles) h.update(readFileSync(f));
  h.update(JSON.stringify(volumeFiles));
  return h.digest('hex').slice(0, 24);
}

/** Encodes every slice of every stack with `encode` (batches of `batch` slices, run concurrently). */
export async function buildCodeCache(
  volumes: readonly { file: string; stack: SliceStack }[],
  encode: (batches: ImageBatch[]) => Promise<Int32Array[]>,
  opts: { key: string; latent: number; batch: number },
): Promise<CodeCache> {
  const batches: ImageBatch[] = [];
  const owner: { volume: number; first: number }[] = [];
  volumes.forEach(({ stack }, v) => {
    const plane = stack.height * stack.width;
    for (let first = 0; first < stack.count; first += opts.batch) {
      const count = Math.min(opts.batch, stack.count - first);
      batches.push({
        kind: 'images',
        images: stack.data.slice(first * plane, (first + count) * plane),
        positions: stack.positions.slice(first, first + count),
        count,
        size: stack.height,
      });
      owner.push({ volume: v, first });
    }
  });
  const encoded = await encode(batches);
  const mapSize = opts.latent * opts.latent;
  const out: VolumeCodes[] = volumes.map(({ file, stack }) => ({
    file,
    count: stack.count,
    codes: new Int32Array(stack.count * mapSize),
    positions: Float32Array.from(stack.positions),
  }));
  encoded.forEach((codes, i) => out[owner[i]!.volume]!.codes.set(codes, owner[i]!.first * mapSize));
  return { key: opts.key, height: opts.latent, width: opts.latent, volumes: out };
}

interface CacheManifest {
  format: 'moodlsr-code-cache';
  key: string;
  height: number;
  width: number;
  volumes: { file: string; count: number }[];
}

export async function saveCodeCache(dir: string, cache: CodeCache): Promise<void> {
  const mapSize = cache.height * cache.width;
  const total = cache.volumes.reduce((a, v) => a + v.count, 0);
  const bytes = new Uint8Array(total * (mapSize + 1) * 4);
  const view = new DataView(bytes.buffer);
  let at = 0;
  for (const v of cache.volumes) {
    for (const c of v.codes) (view.setInt32(at, c, true), (at += 4));
    for (const p of v.positions) (view.setFloat32(at, p, true), (at += 4));
  }
  await atomicWriteFile(path.join(dir, 'codes.bin'), bytes);
  const manifest: CacheManifest = {
    format: 'moodlsr-code-cache',
    key: cache.key,
    height: cache.height,
    width: cache.width,
    volumes: cache.volumes.map((v) => ({ file: v.file, count: v.count })),
  };
  await atomicWriteFile(path.join(dir, 'codes.json'), JSON.stringify(manifest) + '\n');
}

/** The cache saved in `dir` when its key is `key` and its files are intact; otherwise null. */
export function loadCodeCache(dir: string, key: string): CodeCache | null {
  const manifestFile = path.join(dir, 'codes.json');
  const binFile = path.join(dir, 'codes.bin');
  if (!existsSync(manifestFile) || !existsSync(binFile)) return null;
  let m: CacheManifest;
  try {
    m = JSON.parse(readFileSync(manifestFile, 'utf8')) as CacheManifest;
  } catch {
    return null;
  }
  if (m.format !== 'moodlsr-code-cache' || m.key !== key) return null;
  const bytes = readFileSync(binFile);
  const mapSize = m.height * m.width;
  const total = m.volumes.reduce((a, v) => a + v.count, 0);
  if (bytes.byteLength !== total * (mapSize + 1) * 4) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const volumes = m.volumes.map(({ file, count }) => {
    const codes = new Int32Array(count * mapSize);
    for (let i = 0; i < codes.length; i++, at += 4) codes[i] = view.getInt32(at, true);
    const positions = new Float32Array(count);
    for (let i = 0; i < count; i++, at += 4) positions[i] = view.getFloat32(at, true);
    return { file, count, codes, positions };
  });
  return { key: m.key, height: m.height, width: m.width, volumes };
}
