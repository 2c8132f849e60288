/** Tiny synthetic NIfTI folders and configs for the training tests. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng } from '../../src/engine/random.js';
import { writeNifti } from '../../src/io/nifti.js';
import type { PixelSnailConfig, VqvaeConfig } from '../../src/models/config.js';
import type { ProgressSink } from '../../src/train/progress.js';
import { makeVolume, type Shape3, type Volume } from '../../src/volume/volume.js';

export const TINY_SHAPE: Shape3 = [20, 18, 12];

export const TINY_VQVAE: VqvaeConfig = {
  inputSize: 16,
  inChannels: 1,
  condChannels: 1,
  channels: [4, 8, 8],
  blocksPerLevel: 1,
  codebookSize: 16,
  codeDim: 8,
  dropout: 0.1,
  upsample: 'nearest-conv',
  normGroups: 2,
  commitmentWeight: 1,
};

export const TINY_PRIOR: PixelSnailConfig = {
  codebookSize: 16,
  height: 4,
  width: 4,
  channels: 8,
  blocks: 1,
  resBlocksPerBlock: 1,
  attention: { keyChannels: 4, valueChannels: 8, downsample: 1 },
  dropout: 0.1,
  condChannels: 1,
};

/** A head-like ellipsoid in [0, 1] whose size and intensity vary with the seed; background 0. */
export function headVolume(seed: number, shape: Shape3 = TINY_SHAPE): Volume {
  const [nx, ny, nz] = shape;
  const rng = createRng(seed);
  const rx = 0.3 + 0.12 * rng.next();
  const ry = 0.3 + 0.12 * rng.next();
  const base = 0.3 + 0.3 * rng.next();
  const data = new Float32Array(nx * ny * nz);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const u = (x - nx / 2) / (nx * rx);
        const v = (y - ny / 2) / (ny * ry);
        const w = (z - nz / 2) / (nz * 0.45);
        const r = u * u + v * v + w * w;
        if (r < 1) data[x + nx * (y + ny * z)] = base + 0.4 * (1 - r) + 0.05 * rng.next();
      }
    }
  }
  return makeVolume(shape, data);
}

export async function tempRoot(prefix: string): Promise<{ root: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  return { root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/** Writes `files` (volumes as .nii.gz, strings as raw bytes) into `root/name`. */
export async function writeFolder(root: string, name: string, files: Record<string, Volume | string>): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) {
    if (typeof content === 'string') await writeFile(join(dir, file), content);
    else await writeNifti(join(dir, file), content);
  }
  return dir;
}

export async function normalFolder(root: string, name: string, count: number, seed = 1): Promise<string> {
  const files: Record<string, Volume> = {};
  for (let i = 0; i < count; i++) files[`normal_${i}.nii.gz`] = headVolume(seed * 100 + i);
  return writeFolder(root, name, files);
}

/** Collects log lines and progress output. */
export function capture(): { lines: string[]; log: (line: string) => void; sink: ProgressSink } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line), sink: { isTTY: false, write: (text) => lines.push(text.trimEnd()) } };
}
