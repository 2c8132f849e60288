import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { decodeDistinct, distinctCodeMaps } from '../src/score/decode-distinct.js';
import { decodeCodeMaps, disposeLsrNetworks, latentGeometry, type LsrNetworks } from '../src/methods/lsr/networks.js';
import { randomCodes, tinyNetworks } from './helpers/score-fixtures.js';

let nets: LsrNetworks;

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: () => undefined });
  nets = tinyNetworks(3);
});
afterAll(() => disposeLsrNetworks(nets));

describe('distinctCodeMaps', () => {
  it('groups maps by position and codes, in order of first appearance', () => {
    const cells = 3;
    const codes = Int32Array.from([1, 2, 3, 1, 2, 3, 1, 2, 4, 1, 2, 3]);
    const positions = Float32Array.from([0.5, 0.5, 0.5, 0.25]);
    const d = distinctCodeMaps(codes, positions, cells);
    expect([...d.rowOf]).toEqual([0, 0, 1, 2]);
    expect([...d.codes]).toEqual([1, 2, 3, 1, 2, 4, 1, 2, 3]);
    expect([...d.positions]).toEqual([0.5, 0.5, 0.25]);
    expect(() => distinctCodeMaps(codes, positions, 4)).toThrow(RangeError);
  });
});

describe('decodeDistinct', () => {
  it('gives exactly the images of decoding every map, with fewer maps decoded', async () => {
    const cells = latentGeometry(nets.prior).positions;
    const plane = nets.vqvae.cfg.inputSize ** 2;
    const k = nets.vqvae.cfg.codebookSize;
    // 12 maps: 3 distinct code maps, repeated, one of them also at a second slice position.
    const base = randomCodes(3, cells, k, 5);
    const order = [0, 0, 1, 0, 2, 2, 1, 0, 0, 1, 2, 0];
    const codes = new Int32Array(order.length * cells);
    order.forEach((m, i) => codes.set(base.subarray(m * cells, (m + 1) * cells), i * cells));
    const positions = Float32Array.from(order, (_, i) => (i === 11 ? 0.9 : 0.4));
    let asked = 0;
    const decode = async (c: Int32Array, p: Float32Array): Promise<Float32Array> => {
      asked += p.length;
      return decodeCodeMaps(nets.vqvae, c, p);
    };
    const { images, decoded } = await decodeDistinct(decode, codes, positions, cells, plane);
    expect(decoded).toBe(4);
    expect(asked).toBe(4);
    const plain = decodeCodeMaps(nets.vqvae, codes, positions);
    let maxDiff = 0;
    for (let i = 0; i < plain.length; i++) maxDiff = Math.max(maxDiff, Math.abs(plain[i]! - images[i]!));
    expect(maxDiff).toBeLessThan(1e-6);
    // The map at a different slice position is decoded on its own, not shared.
    expect(images.subarray(11 * plane, 12 * plane)).not.toEqual(images.subarray(0, plane));
  });
});
