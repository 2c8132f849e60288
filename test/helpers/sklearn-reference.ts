import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Debian's interpreter, which has python3-sklearn and numpy (the pyenv python3 on PATH does not). */
const SYSTEM_PYTHON = '/usr/bin/python3';
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'sklearn_reference.py');

export interface ReferenceMetrics {
  /** null when sklearn's value is not defined (no positives). */
  ap: number | null;
  /** null when a class is absent (sklearn raises). */
  auroc: number | null;
}

/** Fails loudly (never skips) when the reference stack is missing. */
export function assertSklearnAvailable(): void {
  try {
    execFileSync(SYSTEM_PYTHON, ['-c', 'import numpy, sklearn'], { stdio: 'pipe' });
  } catch (error) {
    throw new Error(
      `${SYSTEM_PYTHON} cannot import numpy and sklearn, which the metric reference tests need: ` +
        `run "apt-get install python3-sklearn" (${String(error)})`,
    );
  }
}

function withTempDir<T>(body: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'moodlsr-metrics-'));
  try {
    return body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function bytesOf(array: Float64Array | Float32Array | Uint8Array): Buffer {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
}

function runReference(mode: 'sample' | 'pixel', scores: Float64Array | Float32Array, labels: Uint8Array): ReferenceMetrics {
  return withTempDir((dir) => {
    const scoresPath = join(dir, 'scores.bin');
    const labelsPath = join(dir, 'labels.bin');
    writeFileSync(scoresPath, bytesOf(scores));
    writeFileSync(labelsPath, bytesOf(labels));
    const stdout = execFileSync(SYSTEM_PYTHON, [SCRIPT, mode, scoresPath, labelsPath], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return JSON.parse(stdout) as ReferenceMetrics;
  });
}

/** sklearn AP/AUROC of float64 scores clipped to [0, 1] (the organisers' sample evaluation). */
export function sklearnSampleMetrics(scores: Float64Array, labels: Uint8Array): ReferenceMetrics {
  return runReference('sample', scores, labels);
}

/** sklearn AP/AUROC of float32 predictions read as float16 and clipped (the organisers' pixel evaluation). */
export function sklearnPixelMetrics(predictions: Float32Array, labels: Uint8Array): ReferenceMetrics {
  return runReference('pixel', predictions, labels);
}

/** numpy's float32 → float16 bit patterns. */
export function numpyFloat16Bits(values: Float32Array): Uint16Array {
  return withTempDir((dir) => {
    const inputPath = join(dir, 'values.f32');
    const outputPath = join(dir, 'bits.u16');
    writeFileSync(inputPath, bytesOf(values));
    execFileSync(SYSTEM_PYTHON, [SCRIPT, 'float16', inputPath, outputPath], { stdio: 'pipe' });
    const bytes = readFileSync(outputPath);
    return new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  });
}
