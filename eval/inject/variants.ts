import { createRng, type Rng } from '../../src/engine/random.js';
import type { Affine, Shape3, Volume } from '../../src/volume/volume.js';
import { makeVolume } from '../../src/volume/volume.js';
import { normalStream } from './seeds.js';
import { bsplineField, type SmoothField } from './smooth-field.js';

/**
 * "Normal variants": random but plausible versions of one real head, resampled to the MOOD brain
 * geometry. One subject is not a population; smooth anatomical and intensity variation of it is the
 * closest we can get to one (see /work/shared/spec/data.md).
 *
 * Geometry (documented choice): the output is an isotropic size³ grid whose axes follow the source's
 * voxel axes. The source's foreground bounding box is centred in the box and scaled so that its
 * longest extent covers `fill` (default 0.85) of the side — for Colin27 skull-stripped (ch2bet,
 * 144 × 180 × 152 mm) at 256³ that is 0.83 mm voxels, close to the ~0.7–1 mm of the MOOD brain data,
 * with the brain filling most of the box and a margin for the random affine and warp.
 *
 * Default source: ch2bet (skull-stripped). The MOOD brain volumes are pre-processed with background 0;
 * the skull-stripped head gives that look. A head with skull (ch2) works the same way.
 *
 * Intensities: source / (99th percentile of source foreground), times a smooth bias field, clipped to
 * [0, 1], raised to a random gamma, plus mild Gaussian noise inside the body, clipped to [0, 1].
 * Background (outside the resampled foreground mask) is exactly 0.
 *
 * Everything random is drawn from `seed`; the same seed gives the same bytes.
 */

/** The ranges random variation is drawn from. */
export interface VariationRanges {
  /** Each of the three rotation angles is uniform in ±this (degrees). */
  readonly rotationDeg: number;
  /** Each axis scale is uniform in 1 ± this. */
  readonly scale: number;
  /** Each translation component is uniform in ± this (mm). */
  readonly translationMm: number;
  /** Std of the elastic-warp control displacements (mm, per component). */
  readonly warpMm: number;
  /** Control points per axis of the elastic warp (≥ 4; fewer = smoother). */
  readonly warpControls: number;
  /** Gamma is log-uniform in [lo, hi]. */
  readonly gamma: readonly [number, number];
  /** Std of the log bias-field control values (0.1 ≈ ±10 % multiplicative). */
  readonly biasLogStd: number;
  /** Control points per axis of the bias field (≥ 4). */
  readonly biasControls: number;
  /** Noise std (of the [0, 1] intensities) is uniform in [lo, hi]. */
  readonly noiseStd: readonly [number, number];
}

export const DEFAULT_VARIATION: VariationRanges = Object.freeze({
  rotationDeg: 5,
  scale: 0.05,
  translationMm: 4,
  warpMm: 3,
  warpControls: 5,
  gamma: [0.8, 1.25] as const,
  biasLogStd: 0.1,
  biasControls: 4,
  noiseStd: [0.005, 0.02] as const,
});

/** No variation at all: the plain resampling of the source into the MOOD geometry. */
export const NO_VARIATION: VariationRanges = Object.freeze({
  rotationDeg: 0,
  scale: 0,
  translationMm: 0,
  warpMm: 0,
  warpControls: 4,
  gamma: [1, 1] as const,
  biasLogStd: 0,
  biasControls: 4,
  noiseStd: [0, 0] as const,
});

export interface NormalVariantOptions {
  /** Output side in voxels (MOOD brain: 256). Tests use tiny sizes such as 40. */
  readonly size: number;
  readonly seed: number;
  /** Fraction of the side covered by the source's longest foreground extent (default 0.85). */
  readonly fill?: number;
  readonly variation?: Partial<VariationRanges>;
  /** Source voxels strictly above this are foreground (default 0: the mricron templates have background exactly 0). */
  readonly foregroundThreshold?: number;
  /** Percentile of the source foreground that maps to intensity 1 (default 99). */
  readonly intensityPercentile?: number;
}

/** The random draws of one variant, recorded so a manifest can say what was done. */
export interface VariantParams {
  readonly seed: number;
  readonly rotationDeg: readonly [number, number, number];
  readonly scale: readonly [number, number, number];
  readonly translationMm: readonly [number, number, number];
  readonly gamma: number;
  readonly noiseStd: number;
}

export interface NormalVariant {
  readonly volume: Volume;
  /** 1 inside the resampled head/brain foreground, 0 in the background (where the volume is exactly 0). */
  readonly body: Uint8Array;
  readonly params: VariantParams;
}

/** A source head with what every variant needs precomputed (do it once per source, reuse for many variants). */
export interface PreparedSource {
  readonly volume: Volume;
  /** Source foreground as 0/1 floats (sampled with the same weights as the intensities). */
  readonly foreground: Float32Array;
  /** Centre of the foreground bounding box, source voxel coordinates. */
  readonly centreVoxel: readonly [number, number, number];
  /** Longest foreground extent, mm. */
  readonly extentMm: number;
  /** Source intensity that maps to 1. */
  readonly intensityScale: number;
}

export function prepareSource(
  volume: Volume,
  opts: Pick<NormalVariantOptions, 'foregroundThreshold' | 'intensityPercentile'> = {},
): PreparedSource {
  const threshold = opts.foregroundThreshold ?? 0;
  const percentile = opts.intensityPercentile ?? 99;
  const [nx, ny, nz] = volume.shape;
  if (nx < 2 || ny < 2 || nz < 2) throw new RangeError(`source volume must be at least 2 voxels per axis, got ${volume.shape.join('×')}`);
  const foreground = new Float32Array(volume.data.length);
  const lo = [nx, ny, nz];
  const hi = [-1, -1, -1];
  let count = 0;
  for (let z = 0, i = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, i++) {
        if (volume.data[i] > threshold) {
          foreground[i] = 1;
          count++;
          if (x < lo[0]) lo[0] = x;
          if (x > hi[0]) hi[0] = x;
          if (y < lo[1]) lo[1] = y;
          if (y > hi[1]) hi[1] = y;
          if (z < lo[2]) lo[2] = z;
          if (z > hi[2]) hi[2] = z;
        }
      }
    }
  }
  if (count === 0) throw new RangeError(`source volume has no voxel above the foreground threshold ${threshold}`);
  const values = new Float32Array(count);
  for (let i = 0, k = 0; i < volume.data.length; i++) if (foreground[i]) values[k++] = volume.data[i];
  values.sort();
  const intensityScale = values[Math.min(count - 1, Math.floor((percentile / 100) * (count - 1)))];
  if (!(intensityScale > 0)) throw new RangeError(`source foreground percentile ${percentile} is ${intensityScale}; need a positive intensity`);
  const extentMm = Math.max(...[0, 1, 2].map((a) => (hi[a] - lo[a] + 1) * volume.spacing[a]));
  return {
    volume,
    foreground,
    centreVoxel: [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2],
    extentMm,
    intensityScale,
  };
}

function drawVariantParams(rng: Rng, seed: number, ranges: VariationRanges): VariantParams {
  const triple = (f: () => number): [number, number, number] => [f(), f(), f()];
  const rotationDeg = triple(() => rng.uniform(-ranges.rotationDeg, ranges.rotationDeg));
  const scale = triple(() => 1 + rng.uniform(-ranges.scale, ranges.scale));
  const translationMm = triple(() => rng.uniform(-ranges.translationMm, ranges.translationMm));
  const [g0, g1] = ranges.gamma;
  const gamma = Math.exp(rng.uniform(Math.log(g0), Math.log(g1)));
  const noiseStd = rng.uniform(ranges.noiseStd[0], ranges.noiseStd[1]);
  return { seed, rotationDeg, scale, translationMm, gamma, noiseStd };
}

/** Row-major 3×3 matrix R·diag(scale), R = Rz·Ry·Rx. */
function linearPart(rotationDeg: readonly number[], scale: readonly number[]): number[] {
  const [a, b, c] = rotationDeg.map((d) => (d * Math.PI) / 180);
  const [ca, sa, cb, sb, cc, sc] = [Math.cos(a), Math.sin(a), Math.cos(b), Math.sin(b), Math.cos(c), Math.sin(c)];
  const r = [
    cc * cb, cc * sb * sa - sc * ca, cc * sb * ca + sc * sa,
    sc * cb, sc * sb * sa + cc * ca, sc * sb * ca - cc * sa,
    -sb, cb * sa, cb * ca,
  ];
  return r.map((v, i) => v * scale[i % 3]);
}

function randomField(shape: Shape3, controls: number, std: number, rng: Rng): SmoothField {
  const values = new Float64Array(controls ** 3);
  for (let i = 0; i < values.length; i++) values[i] = std * rng.normal();
  return bsplineField(shape, controls, values);
}

function multiplyAffine(a: Affine, m: number[][]): Affine {
  const out: number[][] = [];
  for (let r = 0; r < 4; r++) {
    out.push([0, 1, 2, 3].map((c) => a[r][0] * m[0][c] + a[r][1] * m[1][c] + a[r][2] * m[2][c] + a[r][3] * m[3][c]));
  }
  return out as unknown as Affine;
}

/** Output grid geometry shared by all variants of one source at one size. */
export interface VariantGeometry {
  readonly size: number;
  /** Output voxel size, mm (isotropic). */
  readonly spacingMm: number;
  readonly affine: Affine;
}

export function variantGeometry(source: PreparedSource, size: number, fill = 0.85): VariantGeometry {
  if (!Number.isInteger(size) || size < 4) throw new RangeError(`variant size must be an integer ≥ 4, got ${size}`);
  if (!(fill > 0 && fill <= 1)) throw new RangeError(`fill must be in (0, 1], got ${fill}`);
  const spacingMm = source.extentMm / (fill * size);
  const half = (size - 1) / 2;
  const sp = source.volume.spacing;
  // output voxel p → source voxel c + (p − half)·s/spacing (unperturbed), then the source's own affine.
  const toSource = [0, 1, 2].map((a) => {
    const row = [0, 0, 0, 0];
    row[a] = spacingMm / sp[a];
    row[3] = source.centreVoxel[a] - half * row[a];
    return row;
  });
  toSource.push([0, 0, 0, 1]);
  return { size, spacingMm, affine: multiplyAffine(source.volume.affine, toSource) };
}

/** Everything one output row needs; one object of fixed shape keeps the hot loop monomorphic. */
interface RowContext {
  readonly src: Float32Array;
  readonly fg: Float32Array;
  readonly srcShape: Shape3;
  /** Row-major 3×3, mm → mm. */
  readonly linear: Float64Array;
  readonly translation: Float64Array;
  readonly centre: Float64Array;
  readonly inverseSpacing: Float64Array;
  readonly spacingMm: number;
  readonly half: number;
  readonly invScale: number;
  readonly gamma: number;
  readonly noiseStd: number;
  readonly noise: () => number;
  /** Warp (mm) and log bias along the current row. */
  readonly dx: Float32Array;
  readonly dy: Float32Array;
  readonly dz: Float32Array;
  readonly logBias: Float32Array;
  readonly out: Float32Array;
  readonly body: Uint8Array;
}

/**
 * Renders output row (y, z): source coordinate = affine ∘ warp of the output position, one trilinear
 * sample of intensity and foreground with shared weights (fused here rather than calling the generic
 * sampler twice: this loop runs 16.7 M times per 256³ variant). Kept as a small per-row function so
 * that a V8 deoptimisation costs one row, not the rest of the volume.
 */
function renderRow(ctx: RowContext, n: number, y: number, z: number): void {
  const { src, fg, linear: m, dx, dy, dz, logBias, out, body } = ctx;
  const [sx, sy, sz] = ctx.srcShape;
  const sxy = sx * sy;
  const s = ctx.spacingMm;
  const half = ctx.half;
  const cx = ctx.centre[0];
  const cy = ctx.centre[1];
  const cz = ctx.centre[2];
  const tx = ctx.translation[0];
  const ty = ctx.translation[1];
  const tz = ctx.translation[2];
  const isx = ctx.inverseSpacing[0];
  const isy = ctx.inverseSpacing[1];
  const isz = ctx.inverseSpacing[2];
  const uy = (y - half) * s;
  const uz = (z - half) * s;
  const rowStart = n * (y + n * z);
  for (let x = 0; x < n; x++) {
    // affine ∘ warp, in mm relative to the head centre, then to source voxel coordinates
    const wx = (x - half) * s + dx[x];
    const wy = uy + dy[x];
    const wz = uz + dz[x];
    const qx = cx + (m[0] * wx + m[1] * wy + m[2] * wz + tx) * isx;
    const qy = cy + (m[3] * wx + m[4] * wy + m[5] * wz + ty) * isy;
    const qz = cz + (m[6] * wx + m[7] * wy + m[8] * wz + tz) * isz;
    if (!(qx >= 0 && qx <= sx - 1 && qy >= 0 && qy <= sy - 1 && qz >= 0 && qz <= sz - 1)) continue;
    const x0 = Math.min(Math.floor(qx), sx - 2);
    const y0 = Math.min(Math.floor(qy), sy - 2);
    const z0 = Math.min(Math.floor(qz), sz - 2);
    const fx = qx - x0;
    const fy = qy - y0;
    const fz = qz - z0;
    const i000 = x0 + sx * y0 + sxy * z0;
    const i010 = i000 + sx;
    const i001 = i000 + sxy;
    const i011 = i001 + sx;
    const w00 = (1 - fy) * (1 - fz);
    const w10 = fy * (1 - fz);
    const w01 = (1 - fy) * fz;
    const w11 = fy * fz;
    const mask =
      (1 - fx) * (w00 * fg[i000] + w10 * fg[i010] + w01 * fg[i001] + w11 * fg[i011]) +
      fx * (w00 * fg[i000 + 1] + w10 * fg[i010 + 1] + w01 * fg[i001 + 1] + w11 * fg[i011 + 1]);
    if (mask < 0.5) continue;
    const raw =
      (1 - fx) * (w00 * src[i000] + w10 * src[i010] + w01 * src[i001] + w11 * src[i011]) +
      fx * (w00 * src[i000 + 1] + w10 * src[i010 + 1] + w01 * src[i001 + 1] + w11 * src[i011 + 1]);
    let v = raw * ctx.invScale * Math.exp(logBias[x]);
    v = v <= 0 ? 0 : v >= 1 ? 1 : v;
    if (ctx.gamma !== 1) v = Math.pow(v, ctx.gamma);
    if (ctx.noiseStd > 0) v += ctx.noiseStd * ctx.noise();
    out[rowStart + x] = v <= 0 ? 0 : v >= 1 ? 1 : v;
    body[rowStart + x] = 1;
  }
}

/**
 * One random normal variant of `source` on a size³ grid. Deterministic given `opts.seed`.
 * Pass a PreparedSource when making many variants of one head.
 */
export function makeNormalVariant(source: Volume | PreparedSource, opts: NormalVariantOptions): NormalVariant {
  const prepared = 'foreground' in source ? source : prepareSource(source, opts);
  const ranges: VariationRanges = { ...DEFAULT_VARIATION, ...opts.variation };
  const geometry = variantGeometry(prepared, opts.size, opts.fill);
  const n = geometry.size;
  const shape: Shape3 = [n, n, n];
  const rng = createRng(`variant/${opts.seed}`);
  const params = drawVariantParams(rng, opts.seed, ranges);
  const warp = [0, 1, 2].map(() => randomField(shape, ranges.warpControls, ranges.warpMm, rng));
  const bias = randomField(shape, ranges.biasControls, ranges.biasLogStd, rng);
  const noiseSeed = rng.seed();

  const m = linearPart(params.rotationDeg, params.scale);
  const ctx: RowContext = {
    src: prepared.volume.data,
    fg: prepared.foreground,
    srcShape: prepared.volume.shape,
    linear: Float64Array.from(m),
    translation: Float64Array.from(params.translationMm),
    centre: Float64Array.from(prepared.centreVoxel),
    inverseSpacing: Float64Array.from(prepared.volume.spacing, (v) => 1 / v),
    spacingMm: geometry.spacingMm,
    half: (n - 1) / 2,
    invScale: 1 / prepared.intensityScale,
    gamma: params.gamma,
    noiseStd: params.noiseStd,
    noise: normalStream(noiseSeed),
    dx: new Float32Array(n),
    dy: new Float32Array(n),
    dz: new Float32Array(n),
    logBias: new Float32Array(n),
    out: new Float32Array(n * n * n),
    body: new Uint8Array(n * n * n),
  };
  for (let z = 0; z < n; z++) {
    for (let y = 0; y < n; y++) {
      warp[0].fillRow(y, z, ctx.dx);
      warp[1].fillRow(y, z, ctx.dy);
      warp[2].fillRow(y, z, ctx.dz);
      bias.fillRow(y, z, ctx.logBias);
      renderRow(ctx, n, y, z);
    }
  }
  const s = geometry.spacingMm;
  const { out, body } = ctx;
  const volume = makeVolume(shape, out, [s, s, s], geometry.affine);
  return { volume, body, params };
}
