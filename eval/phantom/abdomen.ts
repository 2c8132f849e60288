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
  vertebraAt,
  vesselsAt,
  type AbdomenAnatomy,
} from './anatomy.js';
import {
  ellipseCoverage,
  paintCapsule,
  paintEllipsoid,
  paintSliceEllipse,
  prepareEllipsoid,
  scaleEllipsoid,
  type Ellipsoid,
  type SliceCanvas,
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
  const h = anat.hu;
  const voxelMm = FOV_MM / n;

  const warp = [0, 1, 2].map(() => randomField(n, WARP_CONTROLS, rng.seed(), anat.warpMm));
  const texture = randomField(n, TEXTURE_CONTROLS, rng.seed(), anat.textureHu / BSPLINE_FIELD_STD).field;
  const bowelField = randomField(n, controlsFor(BOWEL_KNOT_MM), rng.seed(), 1 / BSPLINE_FIELD_STD).field;
  const gasField = randomField(n, controlsFor(BOWEL_KNOT_MM), rng.seed(), 1 / BSPLINE_FIELD_STD).field;
  const stoolField = randomField(n, controlsFor(STOOL_KNOT_MM), rng.seed(), 1 / BSPLINE_FIELD_STD).field;
  const noise = normalStream(rng.seed());
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
  const row = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
  const nominal = new Float64Array(n);
  for (let k = 0; k < n; k++) nominal[k] = (k + 0.5 - n / 2) * voxelMm;

  for (let z = 0; z < n; z++) {
    const zMm = nominal[z];
    canvas.z = zMm;
    const wantBowel = zMm - warp[2].max < bowelZMax;
    for (let y = 0; y < n; y++) {
      warp[0].field.fillRow(y, z, row[0]);
      warp[1].field.fillRow(y, z, row[1]);
      warp[2].field.fillRow(y, z, row[2]);
      const o = y * n;
      texture.fillRow(y, z, tex.subarray(o, o + n));
      if (wantBowel) {
        bowelField.fillRow(y, z, bowel.subarray(o, o + n));
        gasField.fillRow(y, z, gas.subarray(o, o + n));
        stoolField.fillRow(y, z, stool.subarray(o, o + n));
      }
      const yMm = nominal[y] - anat.shift[1];
      for (let x = 0; x < n; x++) {
        canvas.X[o + x] = nominal[x] - anat.shift[0] + row[0][x];
        canvas.Y[o + x] = yMm + row[1][x];
        canvas.Z[o + x] = zMm + row[2][x];
      }
    }
    paintSlice(canvas, anat, organs, { bodyCover, bowel: wantBowel ? bowel : null, gas, stool, bowelThreshold, bowelGasThreshold, colonGasThreshold, bowelEdge });

    const base = z * nn;
    const { hu, label } = canvas;
    for (let i = 0; i < nn; i++) {
      if (bodyCover[i] <= 0) continue;
      let v = (hu[i] + tex[i] + anat.noiseHu * noise() - HU_WINDOW[0]) / (HU_WINDOW[1] - HU_WINDOW[0]);
      v = v < MIN_BODY_VALUE ? MIN_BODY_VALUE : v > 1 ? 1 : v;
      data[base + i] = v;
      body[base + i] = 1;
    }
    if (labels) labels.set(label, base);
  }
  void h;
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
  const { hu, label, cavity, fascia, X, Y, Z } = canvas;
  const nn = canvas.n * canvas.n;
  const zMm = canvas.z;
  const layers = bodyLayersAt(anat, zMm);
  const vert = vertebraAt(anat, zMm);

  // Body: air, then subcutaneous fat, muscle wall, cavity (visceral fat).
  ellipseCoverage(canvas, layers.outer, f.bodyCover);
  ellipseCoverage(canvas, layers.fascia, fascia);
  ellipseCoverage(canvas, layers.cavity, cavity);
  const air = h.background;
  for (let i = 0; i < nn; i++) {
    const b = f.bodyCover[i];
    let v = air + (h.subcutaneousFat - air) * b;
    let l: number = b >= 0.5 ? Tissue.subcutaneousFat : Tissue.background;
    const fa = fascia[i];
    if (fa > 0) {
      v += (h.muscle - v) * fa;
      if (fa >= 0.5) l = Tissue.muscle;
      const c = cavity[i];
      if (c > 0) {
        v += (h.visceralFat - v) * c;
        if (c >= 0.5) l = Tissue.visceralFat;
      }
    }
    hu[i] = v;
    label[i] = l;
  }

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
  void X;
  void Y;
  void Z;
}

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
    const isGas = f.gas[i] > f.bowelGasThreshold && field[i] > threshold + 0.3;
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
