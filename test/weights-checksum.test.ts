/**
 * Checksums of weights bundles: the manifest records the SHA-256 of its binary, every load verifies it
 * (one flipped bit of a same-size binary is refused, naming the file), bundles written before checksums
 * existed load with a warning, and `moodlsr weights checksum` adds or checks them. The shipped weights
 * all carry one.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { InputFileError } from '../src/errors.js';
import { checksumWeightsFolder } from '../src/io/weights-checksum.js';
import { onUncheckedBundle, readTensorBundle, sha256Hex, writeTensorBundle, type HostTensor } from '../src/io/tensor-bundle.js';
import { runChild } from './helpers/run-node.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'moodlsr-checksum-'));

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function tensors(): Map<string, HostTensor> {
  const values = new Float32Array(64).map((_, i) => Math.sin(i) * 3);
  return new Map([['w', { shape: [8, 8], values }]]);
}

async function bundle(name: string): Promise<string> {
  const dir = path.join(root, name);
  await writeTensorBundle(dir, 'net', { kind: 'test-net', config: { size: 8 }, tensors: tensors() });
  return dir;
}

/** The manifest as bundles were written before checksums existed. */
function stripChecksum(dir: string): void {
  const file = path.join(dir, 'net.json');
  const m = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  delete m.binarySha256;
  fs.writeFileSync(file, `${JSON.stringify(m, null, 1)}\n`);
}

describe('bundle checksums', () => {
  it('a written bundle records the SHA-256 of its binary and reads back', async () => {
    const dir = await bundle('fresh');
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'net.json'), 'utf8')) as { binarySha256: string };
    expect(m.binarySha256).toBe(sha256Hex(fs.readFileSync(path.join(dir, 'net.bin'))));
    expect(readTensorBundle(dir, 'net').tensors.get('w')!.values).toEqual(tensors().get('w')!.values);
  });

  it('one flipped bit in a same-size binary is refused, naming the binary and the cause', async () => {
    const dir = await bundle('flipped');
    const bin = path.join(dir, 'net.bin');
    const bytes = fs.readFileSync(bin);
    bytes[77]! ^= 0x04;
    fs.writeFileSync(bin, bytes);
    let caught: unknown;
    try {
      readTensorBundle(dir, 'net');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InputFileError);
    expect((caught as InputFileError).file).toBe(bin);
    expect((caught as Error).message).toMatch(/checksum mismatch: .*net\.json records .*damaged or was changed/);
  });

  it('a bundle without a checksum still loads, with one warning naming the command that adds it', async () => {
    const dir = await bundle('old');
    stripChecksum(dir);
    const warned: string[] = [];
    onUncheckedBundle((file) => warned.push(file));
    readTensorBundle(dir, 'net');
    readTensorBundle(dir, 'net');
    expect(warned).toEqual([path.join(dir, 'net.json')]);
  });

  it('checksumWeightsFolder adds missing checksums, verifies present ones, refuses a damaged binary without writing', async () => {
    const dir = await bundle('folder');
    stripChecksum(dir);
    const checkOnly = await checksumWeightsFolder(dir, { check: true });
    expect(checkOnly).toEqual({ added: ['net.json'], verified: [] });
    expect(fs.readFileSync(path.join(dir, 'net.json'), 'utf8')).not.toContain('binarySha256');
    expect(await checksumWeightsFolder(dir)).toEqual({ added: ['net.json'], verified: [] });
    expect(await checksumWeightsFolder(dir)).toEqual({ added: [], verified: ['net.json'] });
    const bin = path.join(dir, 'net.bin');
    const bytes = fs.readFileSync(bin);
    bytes[3]! ^= 0x80;
    fs.writeFileSync(bin, bytes);
    await expect(checksumWeightsFolder(dir)).rejects.toThrow(/net\.bin: checksum mismatch/);
  });
});

describe('shipped weights', () => {
  it('every shipped bundle carries a checksum that matches (moodlsr weights checksum --check)', async () => {
    const r = await runChild(process.execPath, [CLI, 'weights', 'checksum', '--dir', path.join(ROOT, 'weights'), '--recursive', '--check']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ok {7}brain\/lsr\/vqvae\.json$/m);
    expect(r.stdout).not.toMatch(/MISSING/);
  });
});
