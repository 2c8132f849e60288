/**
 * Calibration of the `vae-*` methods on held-out NORMAL volumes (never used in training), stored
 * with the weights as `<weights>/vae-calibration.json` (written atomically):
 * - one monotone sample calibration (src/score/calibration.ts) per sample score (ELBO, KL, rec),
 *   fitted on the raw scores of every held-out volume under the chain's sample aggregate (mean over
 *   slices, or the local maximum of ./scoring.ts);
 * - per pixel map, c of v / (v + c): the 99th percentile of the post-processed map (the chain's
 *   smoothing) over the foreground of the first `pixelVolumes` held-out volumes (none: c = 1), as for
 *   LSR;
 * - the scoring chain itself, when one is given (`scoring`).
 */
import { initEngine } from '../../engine/backend.js';
import { disposeParams } from '../../models/params.js';
import { fitSampleCalibration } from '../../score/calibration.js';
import { forEachUsableVolume, pixelScaleOf } from '../../score/held-out.js';
import { normalisationFor, type Region } from '../../volume/normalise.js';
import { inferenceSliceSelection, normalisedBackground } from '../../volume/preprocess.js';
import type { SliceSelection } from '../../volume/slices.js';
import {
  createVaePool,
  defaultVaeWorkers,
  inProcessVaeRunner,
  loadVaeNetwork,
  vaeVolumeScores,
  type VaePieceRunner,
  VAE_CALIBRATION_FORMAT,
  VAE_CALIBRATION_VERSION,
  validateVaeCalibration,
  type VaeCalibration,
} from './model.js';
import type { VaeScoring } from './scoring.js';
import { localMaxVaeSampleScores } from './sample-aggregates.js';
import { rawVaeSampleScores, VAE_PIXEL_MAPS, VAE_SAMPLE_SCORES, type VaePixelMap, type VaeSampleScore } from './score.js';

export interface CalibrateVaeOptions {
  readonly weightsDir: string;
  readonly files: readonly string[];
  readonly region: Region;
  readonly slices?: SliceSelection;
  /** How many of `files` also get the pixel maps, for the pixel scales (default 2). */
  readonly pixelVolumes?: number;
  /** Worker threads for the networks; default one per core (0 = in-process). */
  readonly workers?: number;
  /** The scoring chain stored with the calibration (absent: none stored, the original chain). */
  readonly scoring?: VaeScoring;
  readonly log: (line: string) => void;
}

/** Measures the sample calibrations and pixel scales on held-out normals (does not write). */
export async function calibrateVae(opts: CalibrateVaeOptions): Promise<VaeCalibration> {
  await initEngine();
  const net = loadVaeNetwork(opts.weightsDir);
  let pool: Awaited<ReturnType<typeof createVaePool>> | null = null;
  try {
    const workers = opts.workers ?? (await defaultVaeWorkers());
    pool = workers > 0 ? await createVaePool(opts.weightsDir, workers) : null;
    const active = pool;
    const runner: VaePieceRunner = active !== null ? { run: (t) => active.runAll(t), chunks: workers } : inProcessVaeRunner(net);
    const slices = opts.slices ?? inferenceSliceSelection(opts.region);
    const scoring = opts.scoring;
    if (scoring?.sample === 'top') {
      throw new Error('calibrate vae: sample=top is not calibrated on held-out normals (it needs every pixel map); calibrate with mean or localmax and choose top with predict --set sample=top');
    }
    const wantPixel = opts.pixelVolumes ?? 2;
    const background = normalisedBackground(normalisationFor(opts.region));
    const raw: Record<VaeSampleScore, number[]> = { elbo: [], kl: [], rec: [] };
    const foregroundValues: Record<VaePixelMap, number[]> = { rec: [], elbograd: [], klgrad: [], recgrad: [], combi: [] };
    let pixelVolumes = 0;
    const volumes = await forEachUsableVolume(opts.files, opts.log, async (volume, file) => {
      const withPixel = pixelVolumes < wantPixel;
      const scores = await vaeVolumeScores(net, volume, opts.region, slices, withPixel ? VAE_PIXEL_MAPS : [], runner, scoring?.smoothing);
      const r = scoring?.sample === 'localmax' ? localMaxVaeSampleScores(scores.terms, scores.stack.data, scores.stack.width, net.cfg.recStd) : rawVaeSampleScores(scores.terms);
      for (const s of VAE_SAMPLE_SCORES) raw[s].push(r[s]);
      if (withPixel) {
        const fg = scores.stack.data;
        for (const m of VAE_PIXEL_MAPS) {
          const map = scores.maps[m]!;
          for (let i = 0; i < map.length; i++) if (fg[i] !== background) foregroundValues[m].push(map[i]!);
        }
        pixelVolumes++;
      }
      opts.log(
        `${file}: ELBO ${r.elbo.toFixed(1)}, KL ${r.kl.toFixed(1)}, rec ${r.rec.toFixed(1)} nats ${scoring?.sample === 'localmax' ? '(local maxima)' : 'per slice'}` +
          (withPixel ? ` (+ pixel maps, networks ${scores.seconds.networks.toFixed(1)} s)` : ''),
      );
    });
    const pixelScale = {} as Record<VaePixelMap, number>;
    for (const m of VAE_PIXEL_MAPS) pixelScale[m] = pixelScaleOf(foregroundValues[m]);
    opts.log(`pixel scales (99th percentile over the foreground of ${pixelVolumes} volumes): ${VAE_PIXEL_MAPS.map((m) => `${m} ${pixelScale[m].toExponential(3)}`).join(', ')}`);
    return validateVaeCalibration({
      format: VAE_CALIBRATION_FORMAT,
      version: VAE_CALIBRATION_VERSION,
      region: opts.region,
      slices,
      sample: { elbo: fitSampleCalibration(raw.elbo), kl: fitSampleCalibration(raw.kl), rec: fitSampleCalibration(raw.rec) },
      pixelScale,
      ...(scoring ? { scoring } : {}),
      heldOut: { volumes, pixelVolumes, files: opts.files.length },
    });
  } finally {
    await pool?.close();
    disposeParams(net.params);
  }
}
