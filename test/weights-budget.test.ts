/**
 * What the Docker image ships from weights/ (everything but weights/REGION/training, which .dockerignore
 * keeps out) stays within the 20 MB budget, and every method's shipped folder loads its networks.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REGISTRY, shippedWeightsDir } from '../src/methods/index.js';

const root = join(import.meta.dirname, '..');
const weights = join(root, 'weights');

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('shipped weights', () => {
  it('fit in 20 MB without the training folders, which .dockerignore excludes', () => {
    expect(readFileSync(join(root, '.dockerignore'), 'utf8').split('\n')).toContain('weights/*/training');
    const shipped = filesUnder(weights).filter((f) => !/^[^/]+\/training\//.test(relative(weights, f)));
    const bytes = shipped.reduce((sum, f) => sum + statSync(f).size, 0);
    expect(shipped.length).toBeGreaterThan(20);
    expect(bytes).toBeLessThanOrEqual(20 * 1024 * 1024);
  });

  it('every network method of both regions has its float16 weights, training record and calibration', () => {
    const expected: Record<string, string[]> = {
      lsr: ['vqvae.json', 'vqvae.bin', 'pixelsnail.json', 'pixelsnail.bin', 'lsr-calibration.json', 'vqvae.training.json', 'pixelsnail.training.json'],
      lsgs: ['vqvae.json', 'vqvae.bin', 'transformer.json', 'transformer.bin', 'lsgs-calibration.json', 'aggregate.json', 'transformer.training.json'],
      'vae-rec': ['vae.json', 'vae.bin', 'vae-calibration.json', 'vae.training.json'],
    };
    for (const region of ['brain', 'abdom'] as const) {
      for (const [method, files] of Object.entries(expected)) {
        const dir = shippedWeightsDir(region, method);
        const present = readdirSync(dir);
        for (const f of files) expect(present, `${dir}/${f}`).toContain(f);
        for (const f of present.filter((name) => name.endsWith('.json') && !name.includes('.training') && !name.includes('calibration') && name !== 'aggregate.json')) {
          const manifest = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { tensors: { dtype: string }[] };
          expect(manifest.tensors.every((t) => t.dtype === 'float16'), `${dir}/${f}`).toBe(true);
        }
      }
    }
  });

  it('disyre ships, for every region it lists, float16 weights, its training record and calibration', () => {
    const disyre = REGISTRY.find((m) => m.id === 'disyre')!;
    expect(disyre.regions.length).toBeGreaterThan(0);
    for (const region of disyre.regions) {
      const dir = shippedWeightsDir(region, 'disyre');
      const present = readdirSync(dir);
      for (const f of ['disyre.json', 'disyre.bin', 'disyre-calibration.json', 'disyre.training.json']) expect(present, `${dir}/${f}`).toContain(f);
      const manifest = JSON.parse(readFileSync(join(dir, 'disyre.json'), 'utf8')) as { tensors: { dtype: string }[] };
      expect(manifest.tensors.every((t) => t.dtype === 'float16')).toBe(true);
    }
  });
});
