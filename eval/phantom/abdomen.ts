/**
 * A procedural, CT-like abdominal phantom. SYNTHETIC: no real abdominal CT is reachable from this
 * project (see /work/shared/spec/data.md); this stands in for the MOOD abdominal data (512³, values
 * in [0, 1]) so the abdominal path can be built, trained and tested. Say so wherever results on it are shown.
 *
 * What it contains: an elliptical torso whose outline changes along z; subcutaneous fat; a muscle wall
 * with ribs in its upper part; lung bases; liver (right lobe and left lobe), gallbladder, stomach with an
 * air–fluid level, spleen, pancreas, two kidneys with renal sinus fat, small bowel loops and colon with
 * gas, bladder; the lumbar spine as a chain of vertebrae (cancellous body with a cortical rim, discs,
 * arch, spinous and transverse processes, spinal canal) running into the sacrum, iliac wings, paraspinal
 * and psoas muscles; aorta with its bifurcation and the IVC with the iliac veins.
 *
 * Variation (all from the seed): body habitus and fat, organ sizes, positions and rotations, contrast
 * phase, CT numbers, a smooth low-frequency warp of everything, a smooth intensity texture and
 * per-voxel Gaussian noise. CT numbers map to [0, 1] by HU_WINDOW (tissues.ts); outside the body the
 * value is exactly 0 (air), inside it is at least MIN_BODY_VALUE, so `body` is exactly `volume > 0`.
 *
 * Layout: axial slices along z, x fastest (idx = x + nx·(y + ny·z)); +x patient right, +y anterior,
 * +z superior (RAS). Generated slice by slice: memory is the output (plus body mask and optional
 * label map) and a few slice-sized buffers.
 *
 * Same seed, same size → identical bytes. The anatomy does not depend on the size.
 */
import { createRng } from '../../src/engine/random.js';
import type { Affine, Volume } from '../../src/volume/volume.js';
import { makeVolume } from '../../src/volume/volume.js';
import { normalStream } from '../inject/seeds.js';
import { bsplineField, type SmoothField } from '../inject/smooth-field.js';
import {
  FOV_MM,
  bodyLayersAt,
  sampleAbdomenAnatomy,
  type BodyLayers,
  vertebraAt,
  vesselsAt,
  type AbdomenAnatomy,
} from './anatomy.js';
import {
  paintCapsule,
  paintEllipsoid,
  paintSliceEllipse,
  prepareEllipsoid,
  scaleEllipsoid,
  type Ellipsoid,
  type SliceCanvas,
  voxelRange,
} from './painter.js';
import { HU_WINDOW, Tissue } from './tissues.js';

export interface AbdomenPhantomOptions {
  /** Side of the cubic volume in voxels (MOOD abdomen: 512; tests use 32–64). */
  readonly size: number;
  readonly seed: number;
  /** Also return the tissue label map (one byte per voxel; see `Tissue`). Default false. */
  readonly labels?: boolean;
}

export interface AbdomenPhantom {
  /** CT-like values in [0, 1]; 0 outside the body. */
  readonly volume: Volume;
  /** 1 inside the body outline (exactly where volume > 0), 0 in the surrounding air. */
  readonly body: Uint8Array;
  /** Tissue class per voxel (`Tissue` codes), only when asked for. */
  readonly labels?: Uint8Array;
  /** The random patient this volume shows. */
  readonly anatomy: AbdomenAnatomy;
}

/** NIfTI description of every file written from the phantom. */
export const PHANTOM_DESCRIPTION = 'moodlsr synthetic abdominal phantom (not real CT)';

/** Smallest value inside the body (HU −999): keeps internal gas distinguishable from outside air. */
export const MIN_BODY_VALUE = 1 / (HU_WINDOW[1] - HU_WINDOW[0]);

const WARP_CONTROLS = 5;
const TEXTURE_CONTROLS = 12;
/** Knot spacing of the small-bowel field (≈ loop size) and of the finer colon-content field, mm. */
const BOWEL_KNOT_MM = 20;
const STOOL_KNOT_MM = 9;
/** Mean std of a cubic B-spline field with unit-normal control values (≈ 0.479^(3/2)). */
const BSPLINE_FIELD_STD = 0.33;

function controlsFor(knotMm: number): number {
  return Math.max(4, Math.round(FOV_MM / knotMm) + 3);
}

function randomField(size: number, controls: number, seed: number, std: number): { field: SmoothField; max: number } {
  const draw = normalStream(seed);
  const values = new Float64Array(controls ** 3);
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    values[i] = draw() * std;
    max = Math.max(max, Math.abs(values[i]));
  }
  return { field: bsplineField([size, size, size], controls, values), max };
}

/** Standard normal CDF (Abramowitz & Stegun 7.1.26 erf, |error| < 1.5e-7). */
function normalCdf(x: number): number {
  const t = 1 / (1 + 0.3275911 * (Math.abs(x) / Math.SQRT2));
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-(x * x) / 2);
  return x >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** The x with P(N(0,1) > x) = fraction (bisection; used once per volume). */
function upperQuantile(fraction: number): number {
  let lo = -8;
  let hi = 8;
  for (let k = 0; k < 60; k++) {
    const mid = (lo + hi) / 2;
    if (1 - normalCdf(mid) > fraction) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * Standard normal draws, a slice at a time: Box–Muller on a Mulberry32-style stream (the same
 * mixing as seeds.ts's voxelStream), inlined so that 134 M draws per 512³ volume stay cheap.
 */
class NormalFiller {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  fill(out: Float32Array): void {
    let state = this.state;
    const len = out.length;
    for (let i = 0; i < len; i += 2) {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      const u1 = (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
      state = (state + 0x6d2b79f5) >>> 0;
      t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      const u2 = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      const r = Math.sqrt(-2 * Math.log(u1));
      const angle = 2 * Math.PI * u2;
      out[i] = r * Math.cos(angle);
      if (i + 1 < len) out[i + 1] = r * Math.sin(angle);
    }
    this.state = state;
  }
}

/**
 * Samples a smooth field over one slice: exact B-spline values on every `step`-th row, linear in
 * between. The fields here vary over tens of voxels, so the rows in between are within a tiny
 * fraction of their exact values, at a fraction of the cost.
 */
class SliceSampler {
  private readonly rows: Float32Array[] = [];
  constructor(private readonly n: number) {}

  fill(field: SmoothField, controls: number, z: number, out: Float32Array): void {
    const n = this.n;
    const knotVoxels = (n - 1) / (controls - 3);
    const step = Math.max(1, Math.min(16, Math.floor(knotVoxels / 5)));
    const anchors = Math.ceil((n - 1) / step) + 1;
    while (this.rows.length < anchors) this.rows.push(new Float32Array(n));
    for (let k = 0; k < anchors; k++) field.fillRow(Math.min(k * step, n - 1), z, this.rows[k]);
    for (let y = 0; y < n; y++) {
      const k = Math.floor(y / step);
      const y0 = k * step;
      const y1 = Math.min(y0 + step, n - 1);
      const a = this.rows[k];
      const o = y * n;
      if (y === y0 || y1 === y0) {
        out.set(a, o);
        continue;
      }
      const b = this.rows[k + 1];
      const t = (y - y0) / (y1 - y0);
      for (let x = 0; x < n; x++) out[o + x] = a[x] + (b[x] - a[x]) * t;
    }
  }
}

function centredAffine(n: number, voxelMm: number): Affine {
  const o = (-n / 2 + 0.5) * voxelMm;
  return [
    [voxelMm, 0, 0, o],
    [0, voxelMm, 0, o],
    [0, 0, voxelMm, o],
    [0, 0, 0, 1],
  ];
}

interface PreparedOrgans {
  readonly lungs: Ellipsoid[];
  readonly liver: Ellipsoid[];
  readonly gallbladder: Ellipsoid;
  readonly stomachWall: Ellipsoid;
  readonly stomachLumen: Ellipsoid;
  readonly spleen: Ellipsoid;
  readonly pancreas: Ellipsoid;
  readonly kidneys: Ellipsoid[];
  readonly sinuses: Ellipsoid[];
  readonly bladder: Ellipsoid;
  readonly iliacs: Ellipsoid[];
}

function prepareOrgans(anat: AbdomenAnatomy): PreparedOrgans {
  const o = anat.organs;
  return {
    lungs: [prepareEllipsoid(o.lungRight), prepareEllipsoid(o.lungLeft)],
    liver: [prepareEllipsoid(o.liverRight), prepareEllipsoid(o.liverLeft)],
    gallbladder: prepareEllipsoid(o.gallbladder),
    stomachWall: prepareEllipsoid(o.stomach),
    stomachLumen: prepareEllipsoid(scaleEllipsoid(o.stomach, 0.9)),
    spleen: prepareEllipsoid(o.spleen),
    pancreas: prepareEllipsoid(o.pancreas),
    kidneys: [prepareEllipsoid(o.kidneyRight), prepareEllipsoid(o.kidneyLeft)],
    sinuses: [prepareEllipsoid(o.sinusRight), prepareEllipsoid(o.sinusLeft)],
    bladder: prepareEllipsoid(o.bladder),
    iliacs: [prepareEllipsoid(o.iliacRight), prepareEllipsoid(o.iliacLeft)],
  };
}

export function makeAbdomenPhantom(opts: AbdomenPhantomOptions): AbdomenPhantom {
  const n = opts.size;
  if (!Number.isInteger(n) || n < 8) throw new RangeError(`phantom size must be an integer ≥ 8, got ${n}`);
  const rng = createRng(opts.seed);
  const anat = sampleAbdomenAnatomy(rng, opts.seed);
  const organs = prepareOrgans(anat);
  const voxelMm = FOV_MM / n;

  const warp = [0, 1, 2].map(() => randomField(n, WARP_CONTROLS, rng.seed(), anat.warpMm));
  const texture = randomField(n, TEXTURE_CONTROLS, rng.seed(), anat.textureHu / BSPLINE_FIELD_STD).field;
  const bowelField = randomField(n, controlsFor(BOWEL_KNOT_MM), rng.seed(), 1 / BSPLINE_FIELD_STD).field;
  const gasField = randomField(n, controlsFor(BOWEL_KNOT_MM), rng.seed(), 1 / BSPLINE_FIELD_STD).field;
  const stoolField = randomField(n, controlsFor(STOOL_KNOT_MM), rng.seed(), 1 / BSPLINE_FIELD_STD).field;
  const noise = new NormalFiller(rng.seed());
  const bowelThreshold = upperQuantile(anat.bowelFill);
  const bowelGasThreshold = upperQuantile(anat.bowelGas);
  const colonGasThreshold = upperQuantile(anat.colonGas);
  const bowelEdge = BOWEL_KNOT_MM / (2.5 * voxelMm);
  const warpMax = Math.hypot(warp[0].max, warp[1].max);
  const bowelZMax = Math.max(anat.bowelTopZ + 60, ...anat.colon.flatMap((c) => [c.from[2], c.to[2]].map((z) => z + c.radius))) + warp[2].max;

  const nn = n * n;
  const data = new Float32Array(nn * n);
  const body = new Uint8Array(nn * n);
  const labels = opts.labels ? new Uint8Array(nn * n) : undefined;

  const canvas: SliceCanvas = {
    n,
    voxelMm,
    X: new Float32Array(nn),
    Y: new Float32Array(nn),
    Z: new Float32Array(nn),
    z: 0,
    marginMm: warpMax + voxelMm,
    offsetX: anat.shift[0],
    offsetY: anat.shift[1],
    hu: new Float32Array(nn),
    label: new Uint8Array(nn),
    cavity: new Float32Array(nn),
    fascia: new Float32Array(nn),
  };
  const bodyCover = new Float32Array(nn);
  const tex = new Float32Array(nn);
  const bowel = new Float32Array(nn);
  const gas = new Float32Array(nn);
  const stool = new Float32Array(nn);
  const noiseSlice = new Float32Array(nn);
  const warpSlices = [canvas.X, canvas.Y, canvas.Z];
  const sampler = new SliceSampler(n);
  const nominal = new Float64Array(n);
  for (let k = 0; k < n; k++) nominal[k] = (k + 0.5 - n / 2) * voxelMm;

  for (let z = 0; z < n; z++) {
    const zMm = nominal[z];
    canvas.z = zMm;
    const wantBowel = zMm - warp[2].max < bowelZMax;
    for (let c = 0; c < 3; c++) sampler.fill(warp[c].field, WARP_CONTROLS, z, warpSlices[c]);
    sampler.fill(texture, TEXTURE_CONTROLS, z, tex);
    if (wantBowel) {
      sampler.fill(bowelField, controlsFor(BOWEL_KNOT_MM), z, bowel);
      sampler.fill(gasField, controlsFor(BOWEL_KNOT_MM), z, gas);
      sampler.fill(stoolField, controlsFor(STOOL_KNOT_MM), z, stool);
    }
    // Displacements → deformed patient positions.
    const { X, Y, Z } = canvas;
    let reach = 0;
    for (let y = 0, i = 0; y < n; y++) {
      const yMm = nominal[y] - anat.shift[1];
      for (let x = 0; x < n; x++, i++) {
        const dx = X[i];
        const dy = Y[i];
        reach = Math.max(reach, dx < 0 ? -dx : dx, dy < 0 ? -dy : dy);
        X[i] = dx + nominal[x] - anat.shift[0];
        Y[i] = dy + yMm;
        Z[i] += zMm;
      }
    }
    canvas.marginMm = reach + voxelMm;
    paintSlice(canvas, anat, organs, { bodyCover, bowel: wantBowel ? bowel : null, gas, stool, bowelThreshold, bowelGasThreshold, colonGasThreshold, bowelEdge });

    const base = z * nn;
    const { hu, label } = canvas;
    noise.fill(noiseSlice);
    const sigma = anat.noiseHu;
    for (let i = 0; i < nn; i++) {
      if (bodyCover[i] <= 0) continue;
      let v = (hu[i] + tex[i] + sigma * noiseSlice[i] - HU_WINDOW[0]) / (HU_WINDOW[1] - HU_WINDOW[0]);
      v = v < MIN_BODY_VALUE ? MIN_BODY_VALUE : v > 1 ? 1 : v;
      data[base + i] = v;
      body[base + i] = 1;
    }
    if (labels) labels.set(label, base);
  }
  const volume = makeVolume([n, n, n], data, [voxelMm, voxelMm, voxelMm], centredAffine(n, voxelMm));
  return labels ? { volume, body, labels, anatomy: anat } : { volume, body, anatomy: anat };
}

interface SliceFields {
  readonly bodyCover: Float32Array;
  /** Small-bowel field for this slice, or null where the slice is above all bowel. */
  readonly bowel: Float32Array | null;
  readonly gas: Float32Array;
  readonly stool: Float32Array;
  readonly bowelThreshold: number;
  readonly bowelGasThreshold: number;
  readonly colonGasThreshold: number;
  /** Field units → coverage ramp slope (about one voxel wide). */
  readonly bowelEdge: number;
}

/** Paints one axial slice (canvas.z) of the patient, back to front. */
function paintSlice(canvas: SliceCanvas, anat: AbdomenAnatomy, organs: PreparedOrgans, f: SliceFields): void {
  const h = anat.hu;
  const zMm = canvas.z;
  const layers = bodyLayersAt(anat, zMm);
  const vert = vertebraAt(anat, zMm);

  paintBodyLayers(canvas, layers, f.bodyCover, h);
  paintRibs(canvas, anat, layers.outer.cx, layers.outer.cy, layers.outer.a);
  for (const lung of organs.lungs) paintEllipsoid(canvas, lung, { hu: h.lung, label: Tissue.lung, clip: 'cavity' });

  if (f.bowel) paintSmallBowel(canvas, anat, vert.cy, f);
  const stool = { field: f.stool, threshold: f.colonGasThreshold, hu: h.gas, label: Tissue.gas };
  for (const segment of anat.colon) paintCapsule(canvas, segment, { hu: h.bowel - 10, label: Tissue.bowel, clip: 'cavity', gas: stool });
  paintEllipsoid(canvas, organs.bladder, { hu: h.bladder, label: Tissue.bladder, clip: 'fascia' });

  for (const liver of organs.liver) paintEllipsoid(canvas, liver, { hu: h.liver, label: Tissue.liver, clip: 'cavity' });
  paintEllipsoid(canvas, organs.gallbladder, { hu: h.gallbladder, label: Tissue.gallbladder, clip: 'cavity' });
  paintEllipsoid(canvas, organs.stomachWall, { hu: h.muscle, label: Tissue.stomach, clip: 'cavity' });
  paintEllipsoid(canvas, organs.stomachLumen, { hu: h.stomach, label: Tissue.stomach, clip: 'cavity' });
  const gasLevel = anat.organs.stomach.centre[1] + anat.stomachGasLevel;
  paintEllipsoid(canvas, organs.stomachLumen, { hu: h.gas, label: Tissue.gas, clip: 'cavity', yAbove: gasLevel });
  paintEllipsoid(canvas, organs.spleen, { hu: h.spleen, label: Tissue.spleen, clip: 'cavity' });
  paintEllipsoid(canvas, organs.pancreas, { hu: h.pancreas, label: Tissue.pancreas, clip: 'cavity' });
  for (const kidney of organs.kidneys) paintEllipsoid(canvas, kidney, { hu: h.kidney, label: Tissue.kidney, clip: 'cavity' });
  for (const sinus of organs.sinuses) paintEllipsoid(canvas, sinus, { hu: h.renalSinus, label: Tissue.renalSinus, clip: 'cavity' });

  // Retroperitoneum and back: muscles, vessels, spine, pelvis.
  const vessels = vesselsAt(anat, zMm, vert);
  for (const m of vessels.psoas) paintSliceEllipse(canvas, m, { hu: h.muscle, label: Tissue.muscle, clip: 'fascia' });
  const canalY = vert.cy - vert.b - 11;
  for (const side of [-1, 1]) {
    paintSliceEllipse(canvas, { cx: vert.cx + side * 37, cy: canalY - 20, a: 31, b: 27, angle: side * 0.35 }, { hu: h.muscle, label: Tissue.muscle, clip: 'fascia' });
  }
  for (const a of vessels.arteries) paintSliceEllipse(canvas, a, { hu: h.vessel, label: Tissue.vessel });
  for (const v of vessels.veins) paintSliceEllipse(canvas, v, { hu: h.vessel - 10, label: Tissue.vessel });
  paintSpine(canvas, anat, vert, canalY);
  for (const iliac of organs.iliacs) {
    paintEllipsoid(canvas, iliac, { hu: h.cancellousBone, label: Tissue.cancellousBone, clip: 'fascia' });
    paintEllipsoid(canvas, iliac, { hu: h.corticalBone, label: Tissue.corticalBone, clip: 'fascia', shellMm: 2.5 });
  }
}

/**
 * Air, then subcutaneous fat inside the skin, muscle inside the fascia, visceral fat inside the cavity,
 * each blended by its coverage; records the three coverages (body, fascia, cavity). One pass over the slice.
 */
function paintBodyLayers(canvas: SliceCanvas, layers: BodyLayers, bodyCover: Float32Array, h: AbdomenAnatomy['hu']): void {
  const { hu, label, cavity, fascia, X, Y, n, voxelMm } = canvas;
  hu.fill(h.background);
  label.fill(Tissue.background);
  bodyCover.fill(0);
  fascia.fill(0);
  cavity.fill(0);
  const { outer, fascia: inner, cavity: cav } = layers;
  const reach = Math.max(outer.a, outer.b, outer.bBelow ?? 0);
  const [x0, x1] = voxelRange(canvas, 0, outer.cx - reach, outer.cx + reach);
  const [y0, y1] = voxelRange(canvas, 1, outer.cy - reach, outer.cy + reach);
  // Coverage ramps over one voxel around each outline: in normalised radius, ±half/s for smallest semi-axis s.
  const half = 0.5 * voxelMm;
  const sOuter = Math.min(outer.a, outer.b, outer.bBelow!) / voxelMm;
  const sFascia = Math.min(inner.a, inner.b, inner.bBelow!) / voxelMm;
  const sCavity = Math.min(cav.a, cav.b, cav.bBelow!) / voxelMm;
  const limit = (1 + half / (sOuter * voxelMm)) ** 2;
  const inOuter = Math.max(0, 1 - 0.5 / sOuter) ** 2;
  const inFascia = Math.max(0, 1 - 0.5 / sFascia) ** 2;
  const outFascia = (1 + 0.5 / sFascia) ** 2;
  const inCavity = Math.max(0, 1 - 0.5 / sCavity) ** 2;
  const outCavity = (1 + 0.5 / sCavity) ** 2;
  for (let y = y0; y < y1; y++) {
    for (let x = x0, i = x0 + n * y; x < x1; x++, i++) {
      const dx = X[i] - outer.cx;
      const dy = Y[i] - outer.cy;
      const u = dx / outer.a;
      const v = dy / (dy < 0 ? outer.bBelow! : outer.b);
      const q = u * u + v * v * (dy < 0 ? BACK_FLAT + (1 - BACK_FLAT) * -v : 1);
      if (q >= limit) continue;
      const b = q <= inOuter ? 1 : 0.5 - (Math.sqrt(q) - 1) * sOuter;
      let value = h.background + (h.subcutaneousFat - h.background) * b;
      let l: number = Tissue.subcutaneousFat; // every voxel the body touches is body (label and mask agree)
      const uf = dx / inner.a;
      const vf = dy / (dy < 0 ? inner.bBelow! : inner.b);
      const qf = uf * uf + vf * vf * (dy < 0 ? BACK_FLAT + (1 - BACK_FLAT) * -vf : 1);
      const fa = qf <= inFascia ? 1 : qf >= outFascia ? 0 : 0.5 - (Math.sqrt(qf) - 1) * sFascia;
      let ca = 0;
      if (fa > 0) {
        value += (h.muscle - value) * fa;
        if (fa >= 0.5) l = Tissue.muscle;
        const uc = dx / cav.a;
        const vc = dy / (dy < 0 ? cav.bBelow! : cav.b);
        const qc = uc * uc + vc * vc * (dy < 0 ? BACK_FLAT + (1 - BACK_FLAT) * -vc : 1);
        ca = qc <= inCavity ? 1 : qc >= outCavity ? 0 : 0.5 - (Math.sqrt(qc) - 1) * sCavity;
        if (ca > 0) {
          value += (h.visceralFat - value) * ca;
          if (ca >= 0.5) l = Tissue.visceralFat;
        }
      }
      hu[i] = value;
      label[i] = l;
      bodyCover[i] = b;
      fascia[i] = fa;
      cavity[i] = ca;
    }
  }
}

/**
 * The back of a supine patient is flatter than an ellipse: behind the centre line the outline is
 * u² + v²·(BACK_FLAT + (1 − BACK_FLAT)·|v|) = 1, which meets the ellipse on the axes and is boxier between.
 */
const BACK_FLAT = 0.45;

/** Ribs: oblique bands through the upper muscle wall, descending towards the front. */
function paintRibs(canvas: SliceCanvas, anat: AbdomenAnatomy, cx: number, cy: number, halfWidth: number): void {
  if (canvas.z + canvas.marginMm + 0.6 * 150 < anat.ribsBottomZ) return;
  const { hu, label, cavity, fascia, X, Y, Z } = canvas;
  const ribHu = 0.5 * (anat.hu.corticalBone + anat.hu.cancellousBone);
  const period = 34;
  for (let i = 0; i < hu.length; i++) {
    if (fascia[i] < 0.5 || cavity[i] >= 0.5) continue;
    if (Math.abs(X[i] - cx) < 0.3 * halfWidth) continue;
    const k = Z[i] + 0.6 * (Y[i] - cy) - anat.ribsBottomZ;
    if (k <= 0) continue;
    const phase = k / period - Math.floor(k / period);
    if (phase < 0.36) {
      hu[i] = ribHu;
      label[i] = Tissue.corticalBone;
    }
  }
}

/** Small bowel: where a smooth random field is high, inside the cavity, front and middle, below bowelTopZ. */
function paintSmallBowel(canvas: SliceCanvas, anat: AbdomenAnatomy, spineY: number, f: SliceFields): void {
  const field = f.bowel!;
  const { hu, label, cavity, Y, Z } = canvas;
  const h = anat.hu;
  for (let i = 0; i < hu.length; i++) {
    const c = cavity[i];
    if (c <= 0 || label[i] === Tissue.lung) continue;
    const above = Z[i] - anat.bowelTopZ;
    const behind = spineY + 25 - Y[i];
    const threshold = f.bowelThreshold + (above > 0 ? above / 15 : 0) + (behind > 0 ? behind / 12 : 0);
    let a = (field[i] - threshold) * f.bowelEdge + 0.5;
    if (a <= 0) continue;
    a = (a > 1 ? 1 : a) * c;
    const isGas = f.stool[i] > f.bowelGasThreshold && f.gas[i] > 0.5;
    const v = isGas ? h.gas : h.bowel;
    hu[i] += (v - hu[i]) * a;
    if (a >= 0.5) label[i] = isGas ? Tissue.gas : Tissue.bowel;
  }
}

/** One level of the spine: arch and processes, then the vertebral body (or disc), then the canal. */
function paintSpine(canvas: SliceCanvas, anat: AbdomenAnatomy, v: ReturnType<typeof vertebraAt>, canalY: number): void {
  const h = anat.hu;
  const bone = { hu: h.cancellousBone, label: Tissue.cancellousBone, clip: 'fascia' } as const;
  const cortex = { hu: h.corticalBone, label: Tissue.corticalBone, clip: 'fascia', shellMm: 2 } as const;
  const p = v.phase;
  const d = anat.spine.discFraction;
  const lumbar = canvas.z < 80;
  if (v.sacrum < 0.5) {
    if (p > 0.5 * d && p < 0.9) {
      const arch = { cx: v.cx, cy: canalY, a: 19, b: 16 };
      paintSliceEllipse(canvas, arch, bone);
      paintSliceEllipse(canvas, arch, cortex);
    }
    if (p > d + 0.15 && p < 0.97) paintSliceEllipse(canvas, { cx: v.cx, cy: canalY - 24, a: 4.5, b: 15 }, { ...bone, hu: 0.5 * (h.cancellousBone + h.corticalBone) });
    if (lumbar && p > d + 0.25 && p < d + 0.5) paintSliceEllipse(canvas, { cx: v.cx, cy: canalY + 3, a: 42, b: 6 }, { ...bone, hu: 0.5 * (h.cancellousBone + h.corticalBone) });
  }
  const bodyEllipse = { cx: v.cx, cy: v.cy, a: v.a, b: v.b };
  if (v.isDisc) {
    paintSliceEllipse(canvas, { ...bodyEllipse, a: v.a * 1.03, b: v.b * 1.03 }, { hu: h.disc, label: Tissue.disc, clip: 'fascia' });
  } else {
    paintSliceEllipse(canvas, bodyEllipse, bone);
    paintSliceEllipse(canvas, bodyEllipse, cortex);
  }
  if (v.sacrum < 0.8) paintSliceEllipse(canvas, { cx: v.cx, cy: canalY, a: 11 * (1 - 0.5 * v.sacrum), b: 8.5 * (1 - 0.5 * v.sacrum) }, { hu: h.csf, label: Tissue.csf, clip: 'fascia' });
}
