/**
 * The z-score baseline's pieces: quantile matching, matched-resolution z, the fitted σ floor, the mask,
 * the sample aggregates, predict-time settings, and that weights without the new fields score as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../src/engine/random.js';
import { fitZScore, loadZScore, saveZScore, withZScoreSettings } from '../src/methods/zscore/model.js';
import {
  DEFAULT_ZSCORE_CONFIG,
  LEGACY_ZSCORE_CONFIG,
  RunningMoments,
  ZSCORE_SETTING_KEYS,
  fittedSigmaFloor,
  pooledZMap,
  rawSampleScoreOf,
  statisticsForSettings,
  toStatisticsGrid,
  zscoreMaps,
  zscoreSettings,
  type ZScoreConfig,
  type ZScoreStatistics,
} from '../src/methods/zscore/zscore.js';
import { foregroundQuantiles, matchQuantiles, meanQuantiles, quantilePosition } from '../src/methods/zscore/zscore-intensity.js';
import { avgPool3d, minPool3d } from '../src/volume/pool3d.js';
import { resampleData } from '../src/volume/trilinear.js';
import { makeVolume, type Shape3, type Volume } from '../src/volume/volume.js';
import { tempRoot, writeFolder } from './helpers/train-fixtures.js';

const SHAPE: Shape3 = [24, 24, 24];
const idx = (x: number, y: number, z: number): number => x + SHAPE[0] * (y + SHAPE[1] * z);

/** A sharp-edged cube (4 … 19 on each axis) of intensity `v` on a 0 background, optionally with a blob (9 … 14). */
function cube(v: number, blob = 0): Volume {
  const data = new Float32Array(24 ** 3);
  for (let z = 4; z < 20; z++) for (let y = 4; y < 20; y++) for (let x = 4; x < 20; x++) data[idx(x, y, z)] = v;
  if (blob) for (let z = 9; z < 15; z++) for (let y = 9; y < 15; y++) for (let x = 9; x < 15; x++) data[idx(x, y, z)] = v + blob;
  return makeVolume(SHAPE, data);
}

function statsOf(volumes: Volume[], grid: number, floor: number): ZScoreStatistics {
  const m = new RunningMoments(grid ** 3);
  for (const v of volumes) m.add(toStatisticsGrid(v.data, v.shape, grid));
  return m.statistics(floor);
}

const config = (over: Partial<ZScoreConfig> = {}): ZScoreConfig => ({ ...LEGACY_ZSCORE_CONFIG, grid: 8, volumeShape: SHAPE, ...over });

describe('quantile matching', () => {
  it('foreground quantiles match a sort of the values above the threshold', () => {
    const rng = createRng(3);
    const data = Float32Array.from({ length: 5000 }, (_, i) => (i % 3 === 0 ? 0 : rng.next()));
    const q = foregroundQuantiles(data, 0, 11)!;
    const sorted = [...data].filter((v) => v > 0).sort((a, b) => a - b);
    for (let i = 0; i <= 10; i++) expect(q[i]!).toBeCloseTo(sorted[Math.round((i / 10) * (sorted.length - 1))]!, 3);
    expect(foregroundQuantiles(new Float32Array(8), 0, 5)).toBeNull();
  });

  it('undoes a gamma: a gamma-transformed volume matched to the original’s quantiles gets the original back', () => {
    const rng = createRng(5);
    const original = Float32Array.from({ length: 20000 }, (_, i) => (i < 4000 ? 0 : 0.05 + 0.9 * rng.next()));
    const gammaed = Float32Array.from(original, (v) => v ** 1.25);
    const template = foregroundQuantiles(original, 0, 101)!;
    const matched = matchQuantiles(gammaed, foregroundQuantiles(gammaed, 0, 101)!, template, 0);
    let worst = 0;
    for (let i = 0; i < original.length; i++) worst = Math.max(worst, Math.abs(matched[i]! - original[i]!));
    expect(worst).toBeLessThan(0.01);
    for (let i = 0; i < 4000; i++) expect(matched[i]).toBe(0); // background untouched
    expect(gammaed[5000]).toBe(Math.fround(original[5000]! ** 1.25)); // input not modified
  });

  it('sends a run of equal case quantiles to the middle of their template range, and clamps outside', () => {
    expect(quantilePosition([0, 1, 1, 1, 2], 1)).toBe(2);
    expect(quantilePosition([0, 1, 2], 0.5)).toBe(0.5);
    expect(quantilePosition([0, 1, 2], -1)).toBe(0);
    expect(quantilePosition([0, 1, 2], 9)).toBe(2);
    const out = matchQuantiles(Float32Array.of(0, 0.5, 1, 3), [0.5, 1, 1, 1, 2], [10, 20, 30, 40, 50], 0);
    expect([...out]).toEqual([0, 10, 30, 50]);
  });

  it('the template is the mean quantile function', () => {
    expect([...meanQuantiles([Float64Array.of(0, 1), Float64Array.of(2, 5)])]).toEqual([1, 3]);
  });
});

describe('matched-resolution z-map', () => {
  // Two normal cubes of 0.5 and 0.7: μ = 0.6 inside. A case of 0.6 has no anomaly at all.
  const normals = [cube(0.5), cube(0.7)];
  const stats = statsOf(normals, 8, 0.05);

  it("is 0 for a case equal to the normals' mean when case and statistics are compared on the grid", () => {
    const z = pooledZMap(cube(0.6), stats, config({ resolution: 'grid', minPool: 1, avgPool: 1 }));
    expect(Math.max(...z)).toBeLessThan(1e-4);
  });

  it('at grid resolution the sample task needs only the grid map, and ranks the blob above the normal', () => {
    const cfg = config({ resolution: 'grid', minPool: 1, avgPool: 1, mask: true });
    const normal = zscoreMaps(cube(0.6), stats, cfg, { pixel: false });
    const blob = zscoreMaps(cube(0.6, 0.4), stats, cfg, { pixel: false });
    expect(normal.pixel).toBeUndefined();
    expect(normal.sampleShape).toEqual([8, 8, 8]);
    expect(rawSampleScoreOf(blob.sample, blob.sampleShape, cfg)).toBeGreaterThan(rawSampleScoreOf(normal.sample, normal.sampleShape, cfg) + 1);
  });

  it('a shared memo gives the same maps as scoring each setting on its own', () => {
    const volume = cube(0.6, 0.4);
    const memo = new Map<string, unknown>();
    for (const over of [{ mask: true }, { mask: true, avgPool: 3 }, { resolution: 'case' as const, mask: true }]) {
      const cfg = config({ resolution: 'grid', minPool: 1, avgPool: 1, ...over });
      const shared = zscoreMaps(volume, stats, cfg, { pixel: true }, memo);
      const alone = zscoreMaps(volume, stats, cfg, { pixel: true });
      expect(shared.pixel).toEqual(alone.pixel);
      expect(shared.sample).toEqual(alone.sample);
    }
    expect(memo.size).toBeGreaterThan(0);
  });

  it('search: a case shifted by one grid voxel against the normals is not anomalous within that radius', () => {
    const shifted = makeVolume(SHAPE, new Float32Array(24 ** 3));
    for (let z = 4; z < 20; z++) for (let y = 4; y < 20; y++) for (let x = 7; x < 23; x++) shifted.data[idx(x, y, z)] = 0.6; // 3 voxels = 1 grid voxel
    const plain = zscoreMaps(shifted, stats, config({ resolution: 'grid', minPool: 1, avgPool: 1 }), { pixel: false });
    const searched = zscoreMaps(shifted, stats, config({ resolution: 'grid', minPool: 1, avgPool: 1, search: 1 }), { pixel: false });
    expect(Math.max(...plain.sample)).toBeGreaterThan(2);
    expect(Math.max(...searched.sample)).toBeLessThan(0.2);
    const blob = zscoreMaps(cube(0.6, 0.4), stats, config({ resolution: 'grid', minPool: 1, avgPool: 1, search: 1 }), { pixel: false });
    expect(Math.max(...blob.sample)).toBeGreaterThan(1); // the blob's inside matches no nearby normal value
  });

  it('the raw case against smoothed statistics (the original) lights up the sharp edges instead', () => {
    const z = pooledZMap(cube(0.6), stats, config({ minPool: 1, avgPool: 1 }));
    expect(Math.max(...z)).toBeGreaterThan(1);
  });

  it('finds a bright blob, highest at the blob', () => {
    const z = pooledZMap(cube(0.6, 0.4), stats, config({ resolution: 'grid', minPool: 1, avgPool: 1 }));
    let arg = 0;
    for (let i = 0; i < z.length; i++) if (z[i]! > z[arg]!) arg = i;
    const [x, y, zz] = [arg % 24, Math.floor(arg / 24) % 24, Math.floor(arg / 576)];
    for (const c of [x, y, zz]) expect(Math.abs(c - 11.5)).toBeLessThanOrEqual(2.5);
    expect(z[arg]!).toBeGreaterThan(1);
  });

  it('a config without the new fields computes the original map (raw case, 3³ min, 7³ mean)', () => {
    const cfg = config();
    const volume = cube(0.6, 0.3);
    const g: Shape3 = [8, 8, 8];
    const mean = resampleData(stats.mean, g, SHAPE);
    const sigma = resampleData(stats.sigma, g, SHAPE);
    const z = Float32Array.from(volume.data, (v, i) => Math.abs(v - mean[i]!) / sigma[i]!);
    const expected = avgPool3d(minPool3d(z, SHAPE, [3, 3, 3]), SHAPE, [7, 7, 7]);
    expect(pooledZMap(volume, stats, cfg)).toEqual(expected);
  });

  it('the mask zeroes the empty background but keeps a dark hole inside the body', () => {
    const volume = cube(0.6);
    for (let z = 8; z < 16; z++) for (let y = 8; y < 16; y++) for (let x = 8; x < 16; x++) volume.data[idx(x, y, z)] = 0;
    // The original post-processing (7³ mean) spreads the edge's z into the background.
    const plain = pooledZMap(volume, stats, config());
    const masked = pooledZMap(volume, stats, config({ mask: true }));
    expect(plain[idx(0, 0, 0)]).toBeGreaterThan(0);
    expect(masked[idx(0, 0, 0)]).toBe(0);
    expect(masked[idx(12, 12, 12)]).toBe(plain[idx(12, 12, 12)]);
    expect(masked[idx(12, 12, 12)]).toBeGreaterThan(1);
  });
});

describe('σ floor and sample aggregates', () => {
  it('the fitted floor is the quantile of σ over the foreground only', () => {
    const mean = Float32Array.of(0, 0, 1, 1, 1, 1, 1);
    const sd = Float32Array.of(9, 9, 0.1, 0.2, 0.3, 0.4, 0.5);
    expect(fittedSigmaFloor(mean, sd, 0)).toBeCloseTo(0.1, 6);
    expect(fittedSigmaFloor(mean, sd, 0.5)).toBeCloseTo(0.3, 6);
    expect(fittedSigmaFloor(mean, sd, 0.25)).toBeCloseTo(0.2, 6);
    expect(fittedSigmaFloor(mean, new Float32Array(7), 0.5)).toBeGreaterThan(0); // never 0
  });

  it('swapping the floor at predict time gives the statistics a fit with that floor gives', () => {
    const normals = [cube(0.5), cube(0.7), cube(0.65)];
    const fitted = statsOf(normals, 8, 0.05);
    const direct = statsOf(normals, 8, 0.01);
    const { stats, config: c } = statisticsForSettings(fitted, config({ sigmaFloor: 0.05 }), config({ sigmaFloor: 0.01 }));
    expect(c.sigmaFloor).toBe(0.01);
    for (let i = 0; i < stats.sigma.length; i++) expect(stats.sigma[i]!).toBeCloseTo(direct.sigma[i]!, 5);
    const q = statisticsForSettings(fitted, config({ sigmaFloor: 0.05 }), config({ sigmaFloor: 0.05, sigmaFloorQuantile: 0.5 }));
    const sd = Float32Array.from(fitted.sigma, (s) => s - 0.05);
    expect(q.config.sigmaFloor).toBeCloseTo(fittedSigmaFloor(fitted.mean, sd, 0.5), 6);
    expect(statisticsForSettings(fitted, config(), config()).stats).toBe(fitted);
  });

  it('top fraction and box maximum aggregate the map as documented', () => {
    const z = new Float32Array(24 ** 3);
    z[idx(12, 12, 12)] = 27;
    expect(rawSampleScoreOf(z, SHAPE, config({ topFraction: 2 / z.length }))).toBeCloseTo(13.5, 5);
    expect(rawSampleScoreOf(z, SHAPE, config({ sampleAggregate: 'boxmax', sampleBox: 3 }))).toBeCloseTo(1, 5);
    expect(rawSampleScoreOf(z, SHAPE, config({ sampleAggregate: 'boxmax', sampleBox: 1 }))).toBe(27);
  });
});

describe('zscoreSettings', () => {
  const base = config();

  it('parses each kind of value and leaves the rest alone', () => {
    const s = zscoreSettings(base, { resolution: 'grid', mask: 'true', minPool: '1', sigmaFloorQuantile: '0.25', topFraction: '0.01', intensity: 'quantile' });
    expect(s).toEqual({ ...base, resolution: 'grid', mask: true, minPool: 1, sigmaFloorQuantile: 0.25, topFraction: 0.01, intensity: 'quantile' });
    expect(zscoreSettings(base, {})).toEqual(base);
    expect(zscoreSettings(base, { mask: 'off' }).mask).toBe(false);
  });

  it('names an unknown key and lists the valid ones', () => {
    expect(() => zscoreSettings(base, { lambdaP: 'inf' })).toThrow(/unknown zscore setting "lambdaP"; valid: .*sigmaFloor.*resolution/);
    expect(ZSCORE_SETTING_KEYS).toContain('sampleAggregate');
  });

  it('rejects values of the wrong type and fields fixed by the fit', () => {
    expect(() => zscoreSettings(base, { minPool: '4' })).toThrow(/minPool: expected an odd positive integer/);
    expect(() => zscoreSettings(base, { sigmaFloor: '0' })).toThrow(/sigmaFloor: expected a number in \(0/);
    expect(() => zscoreSettings(base, { sigmaFloorQuantile: '1.5' })).toThrow(/sigmaFloorQuantile/);
    expect(() => zscoreSettings(base, { resolution: 'fine' })).toThrow(/one of case, grid/);
    expect(() => zscoreSettings(base, { mask: 'maybe' })).toThrow(/true or false/);
    expect(() => zscoreSettings(base, { grid: '128' })).toThrow(/fixed when the statistics are fitted/);
  });

  it('refuses the neighbourhood search at case resolution, where it would do nothing', () => {
    const atCase = { ...base, resolution: 'case' as const };
    expect(() => zscoreSettings(atCase, { search: '2' })).toThrow(/search works on the statistics grid: add resolution=grid/);
    expect(zscoreSettings(atCase, { search: '2', resolution: 'grid' }).search).toBe(2);
    expect(zscoreSettings(atCase, { search: '0' }).search).toBe(0);
  });

  it('a fixed σ floor replaces a quantile floor; both at once is an error', () => {
    const q = { ...base, sigmaFloorQuantile: 0.25 };
    expect(zscoreSettings(q, { sigmaFloor: '0.02' })).not.toHaveProperty('sigmaFloorQuantile');
    expect(() => zscoreSettings(base, { sigmaFloor: '0.02', sigmaFloorQuantile: '0.1' })).toThrow(/exclude each other/);
  });
});

describe('fit, save, load', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let normals: string;
  let held: string;

  beforeAll(async () => {
    ({ root, cleanup } = await tempRoot('zscore-'));
    const gammaed = (v: number, g: number): Volume => makeVolume(SHAPE, Float32Array.from(cube(v).data, (x) => x ** g));
    normals = await writeFolder(root, 'normals', { 'a.nii.gz': gammaed(0.5, 0.8), 'b.nii.gz': gammaed(0.55, 1.25), 'c.nii.gz': gammaed(0.6, 1) });
    held = await writeFolder(root, 'held', { 'h.nii.gz': gammaed(0.52, 1.1), 'i.nii.gz': gammaed(0.58, 0.9) });
  });
  afterAll(() => cleanup());

  it('stores the template and the fitted floor, calibrates on the separate folder, and loads back', async () => {
    const files = ['a', 'b', 'c'].map((n) => `${normals}/${n}.nii.gz`);
    const lines: string[] = [];
    const model = await fitZScore({
      files,
      holdout: 1,
      calibrationFiles: [`${held}/h.nii.gz`, `${held}/i.nii.gz`],
      seed: 1,
      config: { grid: 8, intensity: 'quantile', quantiles: 11, sigmaFloorQuantile: 0.5, resolution: 'grid', minPool: 1, avgPool: 1 },
      log: (l) => lines.push(l),
    });
    expect(lines.join('\n')).toMatch(/fitted on 3 volumes .*calibrated on 2 held-out volumes/);
    expect(model.stats.template).toHaveLength(11);
    expect(model.config.sigmaFloor).toBeGreaterThan(0);
    expect(model.config.sigmaFloor).not.toBe(DEFAULT_ZSCORE_CONFIG.sigmaFloor);
    // Every normal is one uniform cube: after matching, all have the template's intensity, σ ≈ 0 inside.
    await saveZScore(`${root}/w`, model);
    const back = await loadZScore(`${root}/w`);
    expect(back.config).toEqual(model.config);
    expect(back.stats.template).toEqual(model.stats.template);
    const over = withZScoreSettings(back, { intensity: 'none', sigmaFloor: '0.5' });
    expect(over.config.intensity).toBe('none');
    expect(over.stats.sigma[0]).toBeCloseTo(back.stats.sigma[0]! - back.config.sigmaFloor + 0.5, 5);
  });

  it('a fit without quantile matching stores no template, and quantile settings then fail clearly', async () => {
    const model = await fitZScore({ files: [`${normals}/a.nii.gz`, `${normals}/b.nii.gz`, `${normals}/c.nii.gz`], holdout: 1, seed: 1, config: { ...LEGACY_ZSCORE_CONFIG, grid: 8, intensity: 'none', resolution: 'case', mask: false }, log: () => undefined });
    expect(model.stats.template).toBeUndefined();
    const q = withZScoreSettings(model, { intensity: 'quantile' });
    expect(() => pooledZMap(cube(0.5), q.stats, q.config)).toThrow(/template quantiles/);
  });
});
