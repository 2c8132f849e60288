/**
 * Painting simple solids into one axial slice of the synthetic abdominal phantom.
 *
 * A slice is painted back to front (painter's algorithm): every solid overwrites what lies under it,
 * blended over its edge by its sub-voxel coverage (a one-voxel ramp, so edges are anti-aliased the
 * way a CT's point-spread blurs them). Solids are tested at the *deformed* position of each voxel
 * (canvas.X/Y/Z, mm), which is how the smooth random warp bends every organ; each solid only visits
 * the voxels of its bounding box grown by the largest displacement (canvas.marginMm).
 */
import type { TissueCode } from './tissues.js';

export interface SliceCanvas {
  /** Voxels per side of the slice (the slice is n × n, x fastest). */
  readonly n: number;
  /** Voxel size, mm (isotropic). */
  readonly voxelMm: number;
  /** Deformed position of each voxel of the slice, mm (patient right +X, anterior +Y, superior +Z). */
  readonly X: Float32Array;
  readonly Y: Float32Array;
  readonly Z: Float32Array;
  /** Nominal (undeformed) z of the slice, mm. */
  z: number;
  /** Largest displacement of the warp in this slice, mm: how far bounding boxes are grown. */
  marginMm: number;
  /**
   * Where the patient sits in the field of view: the voxel whose nominal centre is (x, y) mm shows
   * the patient near (x − offsetX, y − offsetY), up to the warp.
   */
  readonly offsetX: number;
  readonly offsetY: number;
  /** CT numbers being painted. */
  readonly hu: Float32Array;
  readonly label: Uint8Array;
  /** Coverage of the abdominal cavity (0–1), for `clip: 'cavity'`. */
  readonly cavity: Float32Array;
  /** Coverage of the inside of the subcutaneous fat (muscle wall and everything within), for `clip: 'fascia'`. */
  readonly fascia: Float32Array;
}

export interface PaintStyle {
  readonly hu: number;
  readonly label: TissueCode;
  /**
   * Multiply coverage by the coverage of a region: 'cavity' keeps organs inside the abdominal cavity,
   * 'fascia' keeps muscles and bones inside the subcutaneous fat.
   */
  readonly clip?: 'cavity' | 'fascia';
  /** Paint only where deformed Y ≥ this (mm): the gas above an air–fluid level of a supine patient. */
  readonly yAbove?: number;
  /** Paint only a shell this thick (mm) just inside the surface. */
  readonly shellMm?: number;
  /** Where field[i] > threshold, paint gas (hu/label given here) instead: mottled bowel content. */
  readonly gas?: { readonly field: Float32Array; readonly threshold: number; readonly hu: number; readonly label: TissueCode };
}

/**
 * Voxel index range [lo, hi) along x (axis 0) or y (axis 1) whose nominal centres may show patient
 * positions within [loMm, hiMm], allowing for the patient's offset and the warp.
 */
export function voxelRange(canvas: SliceCanvas, axis: 0 | 1, loMm: number, hiMm: number): [number, number] {
  const { n, voxelMm, marginMm } = canvas;
  const offset = axis === 0 ? canvas.offsetX : canvas.offsetY;
  const lo = Math.max(0, Math.floor((loMm + offset - marginMm) / voxelMm + n / 2 - 0.5));
  const hi = Math.min(n, Math.ceil((hiMm + offset + marginMm) / voxelMm + n / 2 - 0.5) + 1);
  return [lo, hi];
}

/** Shell thickness, as the inner surface's scale and its band; `null` for solids. */
interface Band {
  /** Coverage is 1 for q ≤ qIn, 0 for q ≥ qOut, a one-voxel ramp in between (q: normalised squared radius). */
  readonly qIn: number;
  readonly qOut: number;
  /** Radius in voxels: the slope of the ramp in normalised radius. */
  readonly rOverVoxel: number;
  /** For shells: 1 / (inner scale)², and the inner surface's band. */
  readonly innerInv2: number;
  readonly inner: { readonly qIn: number; readonly qOut: number; readonly rOverVoxel: number } | null;
}

function band(rMm: number, voxelMm: number, shellMm: number | undefined): Band {
  const h = (0.5 * voxelMm) / rMm;
  const base = { qIn: Math.max(0, 1 - h) ** 2, qOut: (1 + h) ** 2, rOverVoxel: rMm / voxelMm };
  if (!shellMm || shellMm <= 0 || shellMm >= rMm) return { ...base, innerInv2: 1, inner: null };
  const rInner = rMm - shellMm;
  const hi = (0.5 * voxelMm) / rInner;
  return {
    ...base,
    innerInv2: (rMm / rInner) ** 2,
    inner: { qIn: Math.max(0, 1 - hi) ** 2, qOut: (1 + hi) ** 2, rOverVoxel: rInner / voxelMm },
  };
}

/**
 * Per-slice scratch: the coverage of the solid being painted, valid inside [x0, x1) × [y0, y1).
 * Shapes write coverage here (inline arithmetic only), then `composite` applies the style; keeping the
 * per-voxel work free of calls keeps V8 from boxing doubles in the hot loops.
 */
const scratchBySize = new Map<number, Float32Array>();

function scratchFor(canvas: SliceCanvas): Float32Array {
  const nn = canvas.n * canvas.n;
  let s = scratchBySize.get(nn);
  if (!s) {
    scratchBySize.clear();
    s = new Float32Array(nn);
    scratchBySize.set(nn, s);
  }
  return s;
}

/** Turns normalised squared radii (in `alpha`, box only) into coverages, in place. */
function radiiToCoverage(canvas: SliceCanvas, alpha: Float32Array, x0: number, x1: number, y0: number, y1: number, b: Band): void {
  const n = canvas.n;
  const { qIn, qOut, rOverVoxel } = b;
  const inner = b.inner;
  const qIn2 = inner ? inner.qIn : 0;
  const qOut2 = inner ? inner.qOut : 0;
  const r2 = inner ? inner.rOverVoxel : 0;
  const inv2 = b.innerInv2;
  for (let y = y0; y < y1; y++) {
    for (let i = x0 + n * y, end = x1 + n * y; i < end; i++) {
      const q = alpha[i];
      let a = q <= qIn ? 1 : q >= qOut ? 0 : 0.5 - (Math.sqrt(q) - 1) * rOverVoxel;
      if (inner !== null && a > 0) {
        const qi = q * inv2;
        a -= qi <= qIn2 ? 1 : qi >= qOut2 ? 0 : 0.5 - (Math.sqrt(qi) - 1) * r2;
      }
      alpha[i] = a;
    }
  }
}

/** Blends the style into the canvas with the coverage in `alpha` over the box. */
function composite(canvas: SliceCanvas, alpha: Float32Array, x0: number, x1: number, y0: number, y1: number, style: PaintStyle): void {
  const { n, hu, label, Y } = canvas;
  const clip = style.clip === 'cavity' ? canvas.cavity : style.clip === 'fascia' ? canvas.fascia : null;
  const hasLevel = style.yAbove !== undefined;
  const level = style.yAbove ?? 0;
  const invVoxel = 1 / canvas.voxelMm;
  const gasField = style.gas ? style.gas.field : null;
  const gasThreshold = style.gas ? style.gas.threshold : Infinity;
  const gasHu = style.gas ? style.gas.hu : 0;
  const gasLabel = style.gas ? style.gas.label : 0;
  const ownHu = style.hu;
  const ownLabel = style.label;
  for (let y = y0; y < y1; y++) {
    for (let i = x0 + n * y, end = x1 + n * y; i < end; i++) {
      let a = alpha[i];
      if (a <= 0) continue;
      if (clip !== null) a *= clip[i];
      if (hasLevel) {
        const above = (Y[i] - level) * invVoxel + 0.5;
        a *= above <= 0 ? 0 : above >= 1 ? 1 : above;
      }
      if (a <= 0) continue;
      const isGas = gasField !== null && gasField[i] > gasThreshold;
      const v = isGas ? gasHu : ownHu;
      hu[i] += (v - hu[i]) * a;
      if (a >= 0.5) label[i] = isGas ? gasLabel : ownLabel;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Ellipsoids (organs)

export interface EllipsoidSpec {
  /** Centre, mm. */
  readonly centre: readonly [number, number, number];
  /** Semi-axes along the ellipsoid's own axes, mm. */
  readonly radii: readonly [number, number, number];
  /** Rotation angles about x, then y, then z (radians). */
  readonly rotation: readonly [number, number, number];
}

export interface Ellipsoid {
  readonly centre: readonly [number, number, number];
  /** Symmetric quadratic form q(d) = dᵀ Q d, stored as xx, yy, zz, xy, xz, yz (off-diagonals doubled). */
  readonly form: Float64Array;
  /** Half-extents of the axis-aligned bounding box, mm. */
  readonly halfExtent: readonly [number, number, number];
  readonly rMin: number;
}

function rotationMatrix([ax, ay, az]: readonly [number, number, number]): number[][] {
  const [cx, sx, cy, sy, cz, sz] = [Math.cos(ax), Math.sin(ax), Math.cos(ay), Math.sin(ay), Math.cos(az), Math.sin(az)];
  // R = Rz · Ry · Rx: columns are the ellipsoid's axes in patient coordinates.
  return [
    [cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
    [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
    [-sy, cy * sx, cy * cx],
  ];
}

export function prepareEllipsoid(spec: EllipsoidSpec): Ellipsoid {
  const R = rotationMatrix(spec.rotation);
  const inv2 = spec.radii.map((r) => 1 / (r * r));
  const Q = (i: number, j: number): number => R[i][0] * R[j][0] * inv2[0] + R[i][1] * R[j][1] * inv2[1] + R[i][2] * R[j][2] * inv2[2];
  const form = Float64Array.of(Q(0, 0), Q(1, 1), Q(2, 2), 2 * Q(0, 1), 2 * Q(0, 2), 2 * Q(1, 2));
  const half = [0, 1, 2].map((i) => Math.sqrt(R[i][0] ** 2 * spec.radii[0] ** 2 + R[i][1] ** 2 * spec.radii[1] ** 2 + R[i][2] ** 2 * spec.radii[2] ** 2));
  return { centre: spec.centre, form, halfExtent: [half[0], half[1], half[2]], rMin: Math.min(...spec.radii) };
}

/** A copy of the ellipsoid scaled about its centre (e.g. the lumen inside a wall). */
export function scaleEllipsoid(spec: EllipsoidSpec, factor: number): EllipsoidSpec {
  return { ...spec, radii: [spec.radii[0] * factor, spec.radii[1] * factor, spec.radii[2] * factor] };
}

export function paintEllipsoid(canvas: SliceCanvas, e: Ellipsoid, style: PaintStyle): void {
  const [cx, cy, cz] = e.centre;
  const [hx, hy, hz] = e.halfExtent;
  if (Math.abs(canvas.z - cz) > hz + canvas.marginMm) return;
  const [x0, x1] = voxelRange(canvas, 0, cx - hx, cx + hx);
  const [y0, y1] = voxelRange(canvas, 1, cy - hy, cy + hy);
  if (x0 >= x1 || y0 >= y1) return;
  const f = e.form;
  const [qxx, qyy, qzz, qxy, qxz, qyz] = [f[0], f[1], f[2], f[3], f[4], f[5]];
  const { X, Y, Z, n } = canvas;
  const q = scratchFor(canvas);
  for (let y = y0; y < y1; y++) {
    for (let i = x0 + n * y, end = x1 + n * y; i < end; i++) {
      const dx = X[i] - cx;
      const dy = Y[i] - cy;
      const dz = Z[i] - cz;
      q[i] = qxx * dx * dx + qyy * dy * dy + qzz * dz * dz + qxy * dx * dy + qxz * dx * dz + qyz * dy * dz;
    }
  }
  radiiToCoverage(canvas, q, x0, x1, y0, y1, band(e.rMin, canvas.voxelMm, style.shellMm));
  composite(canvas, q, x0, x1, y0, y1, style);
}

// ---------------------------------------------------------------------------------------------
// Capsules (colon segments)

export interface Capsule {
  readonly from: readonly [number, number, number];
  readonly to: readonly [number, number, number];
  readonly radius: number;
}

export function paintCapsule(canvas: SliceCanvas, c: Capsule, style: PaintStyle): void {
  const [ax, ay, az] = c.from;
  const [bx, by, bz] = c.to;
  const r = c.radius;
  if (canvas.z < Math.min(az, bz) - r - canvas.marginMm || canvas.z > Math.max(az, bz) + r + canvas.marginMm) return;
  const [x0, x1] = voxelRange(canvas, 0, Math.min(ax, bx) - r, Math.max(ax, bx) + r);
  const [y0, y1] = voxelRange(canvas, 1, Math.min(ay, by) - r, Math.max(ay, by) + r);
  if (x0 >= x1 || y0 >= y1) return;
  const [ux, uy, uz] = [bx - ax, by - ay, bz - az];
  const len2 = ux * ux + uy * uy + uz * uz || 1;
  const inv = 1 / (r * r);
  const { X, Y, Z, n } = canvas;
  const q = scratchFor(canvas);
  for (let y = y0; y < y1; y++) {
    for (let i = x0 + n * y, end = x1 + n * y; i < end; i++) {
      const dx = X[i] - ax;
      const dy = Y[i] - ay;
      const dz = Z[i] - az;
      let t = (dx * ux + dy * uy + dz * uz) / len2;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const ex = dx - t * ux;
      const ey = dy - t * uy;
      const ez = dz - t * uz;
      q[i] = (ex * ex + ey * ey + ez * ez) * inv;
    }
  }
  radiiToCoverage(canvas, q, x0, x1, y0, y1, band(r, canvas.voxelMm, style.shellMm));
  composite(canvas, q, x0, x1, y0, y1, style);
}

// ---------------------------------------------------------------------------------------------
// Ellipses within the slice (structures that run along z: body outline, spine, vessels)

export interface SliceEllipse {
  readonly cx: number;
  readonly cy: number;
  /** Semi-axis along the (rotated) x direction, mm. */
  readonly a: number;
  /** Semi-axis along the (rotated) y direction, mm; for y below the centre, `bBelow` if given. */
  readonly b: number;
  readonly bBelow?: number;
  /** Rotation in the slice plane, radians. */
  readonly angle?: number;
}

export function paintSliceEllipse(canvas: SliceCanvas, e: SliceEllipse, style: PaintStyle): void {
  if (e.a <= 0 || e.b <= 0) return;
  const reach = Math.max(e.a, e.b, e.bBelow ?? 0);
  const [x0, x1] = voxelRange(canvas, 0, e.cx - reach, e.cx + reach);
  const [y0, y1] = voxelRange(canvas, 1, e.cy - reach, e.cy + reach);
  if (x0 >= x1 || y0 >= y1) return;
  const cos = Math.cos(e.angle ?? 0);
  const sin = Math.sin(e.angle ?? 0);
  const invA = 1 / e.a;
  const invB = 1 / e.b;
  const invBelow = 1 / (e.bBelow ?? e.b);
  const { cx, cy } = e;
  const { X, Y, n } = canvas;
  const q = scratchFor(canvas);
  for (let y = y0; y < y1; y++) {
    for (let i = x0 + n * y, end = x1 + n * y; i < end; i++) {
      const dx = X[i] - cx;
      const dy = Y[i] - cy;
      const u = (cos * dx + sin * dy) * invA;
      const w = -sin * dx + cos * dy;
      const v = w * (w < 0 ? invBelow : invB);
      q[i] = u * u + v * v;
    }
  }
  radiiToCoverage(canvas, q, x0, x1, y0, y1, band(Math.min(e.a, e.b, e.bBelow ?? Infinity), canvas.voxelMm, style.shellMm));
  composite(canvas, q, x0, x1, y0, y1, style);
}
