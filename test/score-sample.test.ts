import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { priorLogits } from '../src/models/index.js';
import { applySampleCalibration, fitSampleCalibration } from '../src/score/calibration.js';
import { quantile, quantileOfSorted } from '../src/methods/lsr/calibrate.js';
import { tfjsEngine } from '../src/methods/lsr/engine.js';
import { codeNlls, disposeLsrNetworks, type LsrNetworks } from '../src/methods/lsr/networks.js';
import { encodeVolume, rawSampleScore, sampleScoreOfCodes } from '../src/score/sample-score.js';
import { tinyBrain, tinyNetworks } from './helpers/score-fixtures.js';

let nets: LsrNetworks;

beforeAll(async () => {
  await initEngine({ prefer: 'wasm', log: () => undefined });
  nets = tinyNetworks(5);
});

afterAll(() => disposeLsrNetworks(nets));

/** −log softmax of the logits of every code, computed in JS from one prior pass per slice. */
function bruteForceNlls(codes: Int32Array, positions: Float32Array): number[] {
  const { height, width, codebookSize: k } = nets.prior.cfg;
  const cells = height * width;
  const out: number[] = [];
  for (let n = 0; n < positions.length; n++) {
    const logits = tf.tidy(() =>
      priorLogits(nets.prior.params, nets.prior.cfg, tf.tensor3d(codes.subarray(n * cells, (n + 1) * cells), [1, height, width], 'int32'), tf.tensor1d([positions[n]])).dataSync(),
    );
    for (let p = 0; p < cells; p++) {
      const row = Array.from(logits.subarray(p * k, (p + 1) * k));
      const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
      out.push(lse - row[codes[n * cells + p]]);
    }
  }
  return out;
}

describe('sample score', () => {
  it('equals a brute-force sum of the code NLLs above λs', async () => {
    const volume = tinyBrain([20, 18, 24], 1, true);
    const encoded = await encodeVolume(tfjsEngine(nets), volume, 'brain', { every: 4 });
    expect(encoded.stack.count).toBe(6);
    expect(encoded.codes.length).toBe(6 * 16);
    expect(encoded.codes.every((c) => c >= 0 && c < 8)).toBe(true);
    const brute = bruteForceNlls(encoded.codes, encoded.stack.positions);
    const lambdaS = quantile(Float32Array.from(brute), 0.7);
    const expected = brute.filter((v) => v > lambdaS).reduce((a, v) => a + v, 0);
    expect(expected).toBeGreaterThan(0);
    const calibration = fitSampleCalibration([expected * 0.5, expected * 0.8, expected * 1.1]);
    const result = await sampleScoreOfCodes(tfjsEngine(nets), encoded, lambdaS, calibration);
    expect(result.raw).toBeCloseTo(expected, 3);
    expect(result.score).toBeCloseTo(applySampleCalibration(calibration, expected), 5);
    expect(result.score).toBeGreaterThan(0);
    expect(result.score).toBeLessThan(1);
    // batching does not change the NLLs
    const oneByOne = codeNlls(nets.prior, encoded.codes, encoded.stack.positions, 1);
    oneByOne.forEach((v, i) => expect(v).toBeCloseTo(result.nll[i], 4));
  });

  it('rawSampleScore counts only values strictly above λs', () => {
    expect(rawSampleScore(Float32Array.from([1, 5, 7, 7.5, 10]), 7)).toBeCloseTo(17.5, 6);
    expect(rawSampleScore(Float32Array.from([1, 2]), 7)).toBe(0);
  });

  it('quantiles interpolate linearly between order statistics', () => {
    expect(quantileOfSorted([0, 10, 20, 30], 0.5)).toBe(15);
    expect(quantileOfSorted([0, 10, 20, 30], 1)).toBe(30);
    expect(quantile(Float32Array.from([3, 1, 2]), 0)).toBe(1);
  });

  it('leaks no tensors', async () => {
    const volume = tinyBrain([20, 18, 24], 2);
    const before = tf.memory().numTensors;
    const encoded = await encodeVolume(tfjsEngine(nets), volume, 'brain', 'all');
    await sampleScoreOfCodes(tfjsEngine(nets), encoded, 2, fitSampleCalibration([1, 2]));
    expect(tf.memory().numTensors).toBe(before);
  });
});
