/**
 * Per-stage timings of the `lsr` scores on one 256³ brain volume with randomly initialised weights
 * of the compact preset (speed does not depend on training; the number of restoration passes does,
 * see below).
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/bench-lsr.js [--volume FILE] [--workers N] [--copies S] [--lambda-quantile Q]
 *
 * Without --volume, a normal variant of the Colin27 head (data/mricron/ch2bet.nii.gz) at 256³ is
 * built with eval/inject/population.ts. λs/λp are the 98th/90th percentiles of this volume's own code
 * NLLs (the calibration recipe applied to the one volume). A random prior is nearly flat, so copies that
 * resample almost always draw different codes and split: a worst case for the restoration shortcut.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPopulation } from '../eval/inject/population.js';
import { initEngine } from '../src/engine/backend.js';
import { readNifti } from '../src/io/nifti.js';
import { initPixelSnail, initVqvae, pixelsnailPreset, saveModel, vqvaePreset, disposeParams } from '../src/models/index.js';
import { fitSampleCalibration } from '../src/score/calibration.js';
import { quantile, writeLsrCalibration } from '../src/methods/lsr/calibrate.js';
import {
  createLsrPool,
  describeRestoration,
  inProcessRunner,
  LSR_CALIBRATION_FORMAT,
  LSR_CALIBRATION_VERSION,
  loadLsrModel,
  pixelScoreStack,
  type RestorationRunner,
} from '../src/methods/lsr/model.js';
import { stackScoresToVolume } from '../src/score/pixel-score.js';
import { encodeVolume, sampleScoreOfCodes } from '../src/score/sample-score.js';
import { tfjsEngine } from '../src/methods/lsr/engine.js';
import { inferenceSliceSelection } from '../src/volume/preprocess.js';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const workers = Number(option('workers', '2'));
  const copies = Number(option('copies', '15'));
  const lambdaQuantile = Number(option('lambda-quantile', '0.9'));
  const scratch = mkdtempSync(join(tmpdir(), 'moodlsr-bench-lsr-'));
  try {
    const engine = await initEngine({ prefer: 'wasm' });
    console.log(`machine load average (1/5/15 min) at the start: ${os.loadavg().map((l) => l.toFixed(1)).join(' / ')} on ${os.availableParallelism()} cores`);
    let file = option('volume', '');
    if (file === '') {
      const t = performance.now();
      [file] = await buildPopulation({ sources: ['data/mricron/ch2bet.nii.gz'], outDir: join(scratch, 'volume'), count: 1, size: 256, seed: 1 });
      console.log(`built a 256³ Colin27 variant in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    const { volume } = await readNifti(file);
    const weights = join(scratch, 'weights');
    const vqCfg = vqvaePreset('compact', 'brain');
    const priorCfg = pixelsnailPreset('compact', 'brain');
    const vq = initVqvae(vqCfg, 1);
    const prior = initPixelSnail(priorCfg, 2);
    saveModel(weights, 'vqvae', { kind: 'vqvae', config: vqCfg, params: vq });
    saveModel(weights, 'pixelsnail', { kind: 'pixelsnail', config: priorCfg, params: prior });
    disposeParams(vq);
    disposeParams(prior);

    // The calibration recipe on this one volume (placeholder pixel scale: speed does not depend on it).
    const slices = inferenceSliceSelection('brain');
    const nets = (await import('../src/methods/lsr/networks.js')).loadLsrNetworks(weights);
    const calEngine = tfjsEngine(nets);
    const encodedForCal = await encodeVolume(calEngine, volume, 'brain', slices);
    const nll = (await sampleScoreOfCodes(calEngine, encodedForCal, Infinity, fitSampleCalibration([1]))).nll;
    const lambdaS = quantile(nll, 0.98);
    const lambdaP = quantile(nll, lambdaQuantile);
    writeLsrCalibration(weights, {
      format: LSR_CALIBRATION_FORMAT,
      version: LSR_CALIBRATION_VERSION,
      region: 'brain',
      slices,
      copies,
      k: 3,
      lambdaS,
      lambdaP,
      sampleCalibration: fitSampleCalibration([1, 2]),
      pixelScale: 1,
    });
    (await import('../src/methods/lsr/networks.js')).disposeLsrNetworks(nets);

    const model = await loadLsrModel(weights, { engine: 'tfjs' });
    console.log(`engine ${engine.backend}; volume ${volume.shape.join('×')}; vqvae ${JSON.stringify(vqCfg.channels)} D=${vqCfg.codeDim}; prior ${priorCfg.channels} ch × ${priorCfg.blocks} blocks`);
    console.log(`λs = ${lambdaS.toFixed(3)}, λp = ${lambdaP.toFixed(3)} nats (q = ${lambdaQuantile}); S = ${copies}; workers = ${workers}`);

    // Sample score
    let t = performance.now();
    const encoded = await encodeVolume(model.engine, volume, 'brain', slices);
    const sample = await sampleScoreOfCodes(model.engine, encoded, lambdaS, model.calibration.sampleCalibration);
    const sampleTotal = (performance.now() - t) / 1000;
    console.log(
      `sample: preprocess ${encoded.preprocessSeconds.toFixed(2)} s, encode ${encoded.encodeSeconds.toFixed(2)} s (${encoded.stack.count} slices), ` +
        `prior pass ${sample.priorSeconds.toFixed(2)} s; total ${sampleTotal.toFixed(2)} s`,
    );

    // Pixel score
    t = performance.now();
    const pool = workers > 0 ? await createLsrPool(weights, workers) : null;
    const poolStart = (performance.now() - t) / 1000;
    const runner: RestorationRunner = pool ? (tasks) => pool.runAll(tasks) : inProcessRunner(model.engine);
    try {
      t = performance.now();
      const result = await pixelScoreStack(
        model.engine,
        volume,
        { region: 'brain', slices, copies, lambdaP, k: 3, seed: 0, chunks: Math.max(1, 2 * workers) },
        runner,
      );
      const t1 = performance.now();
      const map = stackScoresToVolume(result.smoothed, result.encoded.stack, volume.shape, 1);
      const resample = (performance.now() - t1) / 1000;
      const total = (performance.now() - t) / 1000;
      const tm = result.timings;
      console.log(`pixel: pool start ${poolStart.toFixed(2)} s (once per run)`);
      console.log(`pixel: preprocess ${tm.preprocess.toFixed(2)} s, encode ${tm.encode.toFixed(2)} s`);
      console.log(
        `pixel: restoration + decode + residuals ${tm.restoreWall.toFixed(2)} s wall; summed over chunks: prior passes ${tm.restorePrior.toFixed(2)} s, ` +
          `restoration total ${tm.restoreTotal.toFixed(2)} s, decode ${tm.decode.toFixed(2)} s, residuals ${tm.residual.toFixed(2)} s`,
      );
      console.log(`pixel: ${describeRestoration(result.stats)}`);
      let max = 0;
      for (const v of map) if (v > max) max = v;
      console.log(`pixel: pooling ${tm.smooth.toFixed(2)} s, resample back + scale ${resample.toFixed(2)} s; total ${total.toFixed(2)} s (map max ${max.toFixed(3)})`);
      const s = result.stats;
      console.log(
        `per unit (CPU seconds on one worker): prior ${((1000 * tm.restorePrior) / Math.max(1, s.mapPasses)).toFixed(1)} ms per map-pass ` +
          `(${(s.mapPasses / Math.max(1, s.priorCalls)).toFixed(1)} maps per call), decode ${((1000 * tm.decode) / (s.slices * s.copies)).toFixed(1)} ms per restoration`,
      );
      console.log(`machine load average (1/5/15 min) at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' / ')} on ${os.availableParallelism()} cores`);
    } finally {
      await pool?.close();
      disposeParams(model.nets.vqvae.params);
      disposeParams(model.nets.prior.params);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
