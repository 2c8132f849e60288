import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../src/engine/backend.js';
import { buildConvStack, forwardConvStack, type ConvStackConfig, type ConvStackResult, type ConvStackTask } from '../src/engine/conv-stack-job.js';
import { compiledModulePath, createInferencePool, type InferencePool } from '../src/engine/pool.js';
import { createRng } from '../src/engine/random.js';

// Workers load compiled JavaScript from dist/ (`npm test` runs tsc first).
const jobModule = new URL('../src/engine/conv-stack-job.ts', import.meta.url);
const config: ConvStackConfig = { seed: 5, inputChannels: 2, channels: [4, 6, 6] };
const shape: [number, number, number, number] = [2, 12, 12, 2];

function slices(count: number): Float32Array[] {
  const rng = createRng(9);
  return Array.from({ length: count }, () => Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.normal()));
}

describe('inference worker pool', () => {
  let pool: InferencePool<ConvStackTask, ConvStackResult>;

  beforeAll(async () => {
    await initEngine({ prefer: 'wasm', log: () => undefined });
    pool = await createInferencePool<ConvStackConfig, ConvStackTask, ConvStackResult>({ jobModule, initArg: config, workers: 2 });
  });
  afterAll(async () => {
    await pool?.close();
  });

  it('gives bit-identical results to the same network run in this thread', async () => {
    expect(pool.size).toBe(2);
    expect(pool.backend).toBe('wasm');
    const inputs = slices(6);
    // Copies go to the workers: the originals stay here for the single-thread reference.
    const results = await pool.runAll(inputs.map((data) => ({ data: data.slice(), shape })));
    const layers = buildConvStack(config);
    inputs.forEach((data, i) => {
      const expected = tf.tidy(() => forwardConvStack(layers, tf.tensor4d(data, shape)).dataSync());
      expect(results[i].shape).toEqual([2, 6, 6, 6]);
      expect(results[i].data).toBeInstanceOf(Float32Array);
      expect(Buffer.from(results[i].data.buffer).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength))).toBe(true);
    });
    for (const layer of layers) tf.dispose([layer.filter, layer.bias]);
  });

  it('transfers task buffers instead of copying them', async () => {
    const [data] = slices(1);
    const pending = pool.run({ data, shape });
    expect(data.byteLength).toBe(0); // detached: moved to the worker
    expect((await pending).data.length).toBe(2 * 6 * 6 * 6);
  });

  it('rejects a task whose buffers were already transferred, instead of hanging, and keeps working', async () => {
    const task = { data: slices(1)[0], shape };
    await pool.run(task);
    await expect(pool.run(task)).rejects.toThrow(/cannot be sent twice/);
    const [ok] = await pool.runAll(slices(1).map((data) => ({ data, shape })));
    expect(ok.data.length).toBe(2 * 6 * 6 * 6);
  });

  it('rejects a throwing task with its message and keeps working', async () => {
    await expect(pool.run({ data: new Float32Array(0), shape, fail: 'throw' })).rejects.toThrow(/conv-stack job asked to fail/);
    const [ok] = await pool.runAll(slices(1).map((data) => ({ data, shape })));
    expect(ok.data.length).toBe(2 * 6 * 6 * 6);
  });

  it('rejects the task of a crashed worker, and the survivor finishes the rest', async () => {
    const crashPool = await createInferencePool<ConvStackConfig, ConvStackTask, ConvStackResult>({ jobModule, initArg: config, workers: 2 });
    try {
      const crash = crashPool.run({ data: new Float32Array(0), shape, fail: 'exit' });
      const others = crashPool.runAll(slices(3).map((data) => ({ data, shape })));
      await expect(crash).rejects.toThrow(/exited with code 7 while running task/);
      expect((await others).length).toBe(3);
    } finally {
      await crashPool.close();
    }
    await expect(crashPool.run({ data: new Float32Array(0), shape })).rejects.toThrow(/closed/);
  });

  it('fails clearly when the job module is missing or its setup fails', async () => {
    expect(() => compiledModulePath(new URL('../src/engine/no-such-job.ts', import.meta.url))).toThrow(/no-such-job\.js not found .*run `npm run build`/);
    await expect(
      createInferencePool({ jobModule, initArg: { seed: 1, inputChannels: 2, channels: [-3] }, workers: 1 }),
    ).rejects.toThrow(/setup of .*conv-stack-job\.js failed/);
  });
});
