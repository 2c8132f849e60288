import type { Rng } from '../../src/engine/random.js';
import { sampleTrilinear } from '../../src/volume/trilinear.js';
import type { Shape3, Volume } from '../../src/volume/volume.js';
import { withData } from '../../src/volume/volume.js';
import { voxelStream } from './seeds.js';
import { forEachSphereVoxel, labelIndices, sphereLabel, type Vec3 } from './sphere.js';

/**
 * MOOD-style synthetic anomalies (see /work/shared/spec/anomalies-and-metrics.md): one sphere per
 * abnormal case. Only voxels of the label (sphere ∩ body) are changed; everything else, including
 * sphere voxels in the background, keeps its exact value. The result is clipped to [0, 1].
 *
 * Each kind is a pure function (volume, body, params) → { volume, label }. The random choices live in
 * the params (drawn by sampleAnomalyParams from an Rng), so a manifest can record everything and the
 * anomaly can be re-created exactly.
 */
export type AnomalyKind = 'uniform' | 'noise' | 'deform' | 'shift' | 'reflect' | 'fpi';

export const ANOMALY_KINDS: readonly AnomalyKind[] = Object.freeze(['uniform', 'noise', 'deform', 'shift', 'reflect', 'fpi']);

/**
 * Radius ranges as fractions of the side (the smallest side for non-cubic grids), from the spec.
 * FPI has no prescribed range; it uses the larger one, like the other patch-replacing kinds.
 */
export const RADIUS_FRACTION: Readonly<Record<AnomalyKind, readonly [number, number]>> = Object.freeze({
  uniform: [0.05, 0.1],
  noise: [0.05, 0.1],
  deform: [0.08, 0.13],
  shift: [0.08, 0.13],
  reflect: [0.08, 0.13],
  fpi: [0.08, 0.13],
});

interface SphereParams {
  /** Integer voxel coordinates of the sphere centre (inside the body, in the central half). */
  readonly centre: Vec3;
  /** Radius in voxels; the sphere is |p − c|² ≤ r². */
  readonly radius: number;
}

/** Adds `amount`·(max − min) to every label voxel; |amount| ~ U(0.2, 0.3), random sign. */
export interface UniformParams extends SphereParams {
  readonly kind: 'uniform';
  readonly amount: number;
}

/**
 * Adds sign·u·(max − min) to each label voxel, u ~ U(0.05, 0.3) drawn per voxel from
 * voxelStream(noiseSeed) in ascending voxel-index order; one sign for the whole sphere.
 */
export interface NoiseParams extends SphereParams {
  readonly kind: 'noise';
  readonly sign: 1 | -1;
  readonly noiseSeed: number;
}

/**
 * d = (|x − c| / r)²; "source" samples the original at c + (x − c)·d (centre expands),
 * "sink" at x + (x − c)(1 − d) (content pulled towards the centre); trilinear, edge-clamped.
 */
export interface DeformParams extends SphereParams {
  readonly kind: 'deform';
  readonly mode: 'sink' | 'source';
}

/** Label voxels take the value of the volume rolled by `offset` voxels: out[p] = in[(p − offset) mod n]. */
export interface ShiftParams extends SphereParams {
  readonly kind: 'shift';
  readonly offset: Vec3;
}

/** Label voxels take the value of the volume mirrored along `axis`: out[p] = in[p with p_a → n_a − 1 − p_a]. */
export interface ReflectParams extends SphereParams {
  readonly kind: 'reflect';
  readonly axis: 0 | 1 | 2;
}

/**
 * Foreign patch interpolation: label voxels become (1 − α)·x + α·foreign, where foreign is the same
 * region of a different normal variant (made with `foreignSeed`; the caller makes it and passes it in).
 */
export interface FpiParams extends SphereParams {
  readonly kind: 'fpi';
  readonly alpha: number;
  readonly foreignSeed: number;
}

export type AnomalyParams = UniformParams | NoiseParams | DeformParams | ShiftParams | ReflectParams | FpiParams;

export interface AnomalyResult {
  readonly volume: Volume;
  /** sphere ∩ body, uint8 0/1. */
  readonly label: Uint8Array;
}

function randomSign(rng: Rng): 1 | -1 {
  return rng.next() < 0.5 ? -1 : 1;
}

/** Side used for the radius: the smallest grid side. */
export function anomalySide(shape: Shape3): number {
  return Math.min(shape[0], shape[1], shape[2]);
}

/**
 * An integer voxel uniform over the body voxels of the central half of the grid
 * ([⌊n/4⌋, ⌊n/4⌋ + ⌊n/2⌋) per axis), by rejection sampling; after many misses (a tiny body) it falls back
 * to choosing uniformly among the enumerated candidates, which is the same distribution.
 */
export function sampleCentre(shape: Shape3, body: Uint8Array, rng: Rng): Vec3 {
  const [nx, ny, nz] = shape;
  if (body.length !== nx * ny * nz) throw new RangeError(`body mask has ${body.length} voxels, the grid ${nx * ny * nz}`);
  const lo = shape.map((n) => Math.floor(n / 4));
  const span = shape.map((n) => Math.max(1, Math.floor(n / 2)));
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const x = lo[0] + rng.int(span[0]);
    const y = lo[1] + rng.int(span[1]);
    const z = lo[2] + rng.int(span[2]);
    if (body[x + nx * (y + ny * z)]) return [x, y, z];
  }
  const candidates: number[] = [];
  for (let z = lo[2]; z < lo[2] + span[2]; z++) {
    for (let y = lo[1]; y < lo[1] + span[1]; y++) {
      for (let x = lo[0]; x < lo[0] + span[0]; x++) if (body[x + nx * (y + ny * z)]) candidates.push(x, y, z);
    }
  }
  if (candidates.length === 0) throw new RangeError('no body voxel in the central half of the volume: cannot place an anomaly');
  const k = rng.int(candidates.length / 3);
  return [candidates[3 * k], candidates[3 * k + 1], candidates[3 * k + 2]];
}

/** Draws everything random about one anomaly of `kind`. */
export function sampleAnomalyParams(kind: AnomalyKind, shape: Shape3, body: Uint8Array, rng: Rng): AnomalyParams {
  const centre = sampleCentre(shape, body, rng);
  const [lo, hi] = RADIUS_FRACTION[kind];
  const side = anomalySide(shape);
  const radius = rng.uniform(lo * side, hi * side);
  switch (kind) {
    case 'uniform':
      return { kind, centre, radius, amount: randomSign(rng) * rng.uniform(0.2, 0.3) };
    case 'noise':
      return { kind, centre, radius, sign: randomSign(rng), noiseSeed: rng.seed() };
    case 'deform':
      return { kind, centre, radius, mode: rng.next() < 0.5 ? 'sink' : 'source' };
    case 'shift': {
      const offset = shape.map((n) => randomSign(rng) * Math.max(1, Math.round(rng.uniform(0.02, 0.05) * n)));
      return { kind, centre, radius, offset: [offset[0], offset[1], offset[2]] };
    }
    case 'reflect':
      return { kind, centre, radius, axis: rng.int(3) as 0 | 1 | 2 };
    case 'fpi':
      return { kind, centre, radius, alpha: rng.uniform(0.05, 0.95), foreignSeed: rng.seed() };
    default:
      throw new RangeError(`unknown anomaly kind '${String(kind)}'`);
  }
}

function valueRange(data: Float32Array): number {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return max - min;
}

function clip01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

function checkGrid(volume: Volume, body: Uint8Array): void {
  if (body.length !== volume.data.length) {
    throw new RangeError(`body mask has ${body.length} voxels, the volume ${volume.data.length}`);
  }
}

/**
 * Applies one anomaly. `foreign` (same shape) is required for 'fpi' and ignored otherwise.
 * Pure: the input volume is not modified.
 */
export function applyAnomaly(volume: Volume, body: Uint8Array, params: AnomalyParams, foreign?: Volume): AnomalyResult {
  checkGrid(volume, body);
  const shape = volume.shape;
  const src = volume.data;
  const out = Float32Array.from(src);
  const label = sphereLabel(shape, params.centre, params.radius, body);
  const [nx, ny, nz] = shape;

  switch (params.kind) {
    case 'uniform': {
      const delta = params.amount * valueRange(src);
      for (let i = 0; i < label.length; i++) if (label[i]) out[i] = clip01(src[i] + delta);
      break;
    }
    case 'noise': {
      const range = valueRange(src);
      const draw = voxelStream(params.noiseSeed);
      for (const i of labelIndices(shape, params.centre, params.radius, body)) {
        out[i] = clip01(src[i] + params.sign * (0.05 + 0.25 * draw()) * range);
      }
      break;
    }
    case 'deform': {
      const [cx, cy, cz] = params.centre;
      const r2 = params.radius * params.radius;
      const source = params.mode === 'source';
      forEachSphereVoxel(shape, params.centre, params.radius, (i, x, y, z, dist2) => {
        if (!body[i]) return;
        const d = dist2 / r2;
        const k = source ? d : 2 - d; // source: c + (x − c)·d; sink: x + (x − c)(1 − d) = c + (x − c)(2 − d)
        out[i] = clip01(sampleTrilinear(src, shape, cx + (x - cx) * k, cy + (y - cy) * k, cz + (z - cz) * k, 'clamp'));
      });
      break;
    }
    case 'shift': {
      const [ox, oy, oz] = params.offset;
      const mod = (v: number, n: number) => ((v % n) + n) % n;
      forEachSphereVoxel(shape, params.centre, params.radius, (i, x, y, z) => {
        if (!body[i]) return;
        out[i] = clip01(src[mod(x - ox, nx) + nx * (mod(y - oy, ny) + ny * mod(z - oz, nz))]);
      });
      break;
    }
    case 'reflect': {
      const axis = params.axis;
      forEachSphereVoxel(shape, params.centre, params.radius, (i, x, y, z) => {
        if (!body[i]) return;
        const mx = axis === 0 ? nx - 1 - x : x;
        const my = axis === 1 ? ny - 1 - y : y;
        const mz = axis === 2 ? nz - 1 - z : z;
        out[i] = clip01(src[mx + nx * (my + ny * mz)]);
      });
      break;
    }
    case 'fpi': {
      if (!foreign) throw new RangeError('an fpi anomaly needs the foreign volume');
      if (foreign.data.length !== src.length || foreign.shape.some((n, a) => n !== shape[a])) {
        throw new RangeError(`foreign volume is ${foreign.shape.join('×')}, the volume ${shape.join('×')}`);
      }
      const a = params.alpha;
      const f = foreign.data;
      for (let i = 0; i < label.length; i++) if (label[i]) out[i] = clip01((1 - a) * src[i] + a * f[i]);
      break;
    }
    default:
      throw new RangeError(`unknown anomaly kind '${String((params as { kind: unknown }).kind)}'`);
  }
  return { volume: withData(volume, out), label };
}
