/**
 * The random anatomy of one SYNTHETIC abdominal phantom: every size, position, rotation and CT number,
 * drawn once per volume from its seed (independent of the voxel grid, so the same seed gives the same
 * patient at 64³ and at 512³).
 *
 * Patient coordinates, mm, origin at the centre of the field of view: +X patient right, +Y anterior,
 * +Z superior (RAS, as the volume's affine says). The field of view is FOV_MM on every axis, from the
 * lung bases (top) to the upper pelvis (bottom).
 *
 * Structures that run along z (body outline and its layers, spine, aorta, IVC, psoas) are given as
 * functions of z; organs are ellipsoids and colon segments capsules, placed relative to the
 * abdominal cavity at their level so that they fit any body habitus.
 */
import type { Rng } from '../../src/engine/random.js';
import type { Capsule, EllipsoidSpec, SliceEllipse } from './painter.js';
import { TISSUE_HU, TISSUE_NAMES, type TissueName } from './tissues.js';

/** Field of view on each axis, mm (0.74 mm voxels at 512³, like a typical abdominal CT in-plane). */
export const FOV_MM = 380;

type Vec3 = [number, number, number];

export interface BodyShape {
  readonly centre: readonly [number, number];
  /** Half-width (left–right) at the waist, mm. */
  readonly halfWidth: number;
  /** Anterior and posterior half-depths, mm. */
  readonly anterior: number;
  readonly posterior: number;
  /** Relative widening of the lower chest and of the hips, and a belly bulge. */
  readonly chest: number;
  readonly hips: number;
  readonly belly: number;
  /** Smooth wobble of the outline along z: amplitude and phase. */
  readonly wobble: readonly [number, number];
  /** Subcutaneous fat thickness (mm, laterally; ×1.3 anteriorly, ×0.7 posteriorly). */
  readonly fatMm: number;
  /** Muscle wall thickness (mm, antero-lateral) and the posterior wall (quadratus lumborum) thickness. */
  readonly wallMm: number;
  readonly posteriorWallMm: number;
}

export interface SpineShape {
  /** Distance from the posterior fascia to the centre of the vertebral bodies, mm. */
  readonly depthMm: number;
  /** Vertebra + disc height, mm, and where along z the chain starts. */
  readonly periodMm: number;
  readonly phaseMm: number;
  /** Fraction of each period that is disc. */
  readonly discFraction: number;
  /** Forward bulge of the lumbar spine, mm. */
  readonly lordosisMm: number;
  /** Sideways wobble (mm) and its phase. */
  readonly lateral: readonly [number, number];
}

export interface VesselShape {
  readonly aortaRadius: number;
  /** z of the aortic bifurcation, mm. */
  readonly bifurcationZ: number;
  readonly ivcRadii: readonly [number, number];
  /** z where the psoas muscles begin, mm, and their largest radius. */
  readonly psoasTopZ: number;
  readonly psoasRadius: number;
}

export interface AbdomenAnatomy {
  readonly seed: number;
  /** Portal-venous contrast level in [0, 1] (0: non-contrast scan). */
  readonly contrast: number;
  /** CT number of every tissue in this patient (contrast and jitter included). */
  readonly hu: Readonly<Record<TissueName, number>>;
  /** Per-voxel noise std, HU. */
  readonly noiseHu: number;
  /** Std of the smooth intensity variation (texture / beam hardening), HU. */
  readonly textureHu: number;
  /** Std of the smooth random warp's control displacements, mm. */
  readonly warpMm: number;
  /** Rotation of the patient about the table axis (radians) and shift in the field of view (mm). */
  readonly roll: number;
  readonly shift: readonly [number, number];
  readonly body: BodyShape;
  readonly spine: SpineShape;
  readonly vessels: VesselShape;
  readonly organs: Readonly<Record<OrganName, EllipsoidSpec>>;
  readonly colon: readonly Capsule[];
  /** Small bowel: the fraction of free cavity it fills and the fraction of its content that is gas. */
  readonly bowelFill: number;
  readonly bowelGas: number;
  readonly colonGas: number;
  /** Top of the small-bowel region, mm. */
  readonly bowelTopZ: number;
  /** Air–fluid level in the stomach (mm above the stomach centre); gas above it. */
  readonly stomachGasLevel: number;
  /** Lowest z with ribs, mm. */
  readonly ribsBottomZ: number;
}

export type OrganName =
  | 'lungRight'
  | 'lungLeft'
  | 'liverRight'
  | 'liverLeft'
  | 'gallbladder'
  | 'stomach'
  | 'spleen'
  | 'pancreas'
  | 'kidneyRight'
  | 'kidneyLeft'
  | 'sinusRight'
  | 'sinusLeft'
  | 'bladder'
  | 'iliacRight'
  | 'iliacLeft';

const gauss = (u: number): number => Math.exp(-0.5 * u * u);
const clamp01 = (v: number): number => (v < 0 ? 0 : v > 1 ? 1 : v);

// ---------------------------------------------------------------------------------------------
// Cross-sections along z

export interface BodyLayers {
  /** Skin surface. */
  readonly outer: SliceEllipse;
  /** Inside of the subcutaneous fat (outer surface of the muscle wall). */
  readonly fascia: SliceEllipse;
  /** Inside of the muscle wall: the abdominal cavity. */
  readonly cavity: SliceEllipse;
}

export function bodyLayersAt(anat: AbdomenAnatomy, z: number): BodyLayers {
  const b = anat.body;
  const width = 1 + b.chest * gauss((z - 190) / 70) + b.hips * gauss((z + 175) / 55) + b.wobble[0] * Math.sin(z / 95 + b.wobble[1]);
  const a = b.halfWidth * width;
  const ant = b.anterior * (1 + b.belly * gauss((z + 20) / 110) - 0.05 * gauss((z + 190) / 60));
  const post = b.posterior * (1 + 0.5 * b.wobble[0] * Math.sin(z / 120 + 2 * b.wobble[1]));
  const fat = b.fatMm * (1 + 0.3 * gauss((z + 60) / 120));
  const [cx, cy] = [b.centre[0] + 3 * Math.sin(z / 150 + b.wobble[1]), b.centre[1]];
  const fascia = { cx, cy, a: a - fat, b: ant - 1.3 * fat, bBelow: post - 0.7 * fat };
  return {
    outer: { cx, cy, a, b: ant, bBelow: post },
    fascia,
    cavity: { cx, cy, a: fascia.a - b.wallMm, b: fascia.b - b.wallMm, bBelow: fascia.bBelow! - b.posteriorWallMm },
  };
}

export interface VertebraAt {
  /** Centre and semi-axes of the vertebral body (or disc) in this slice, mm. */
  readonly cx: number;
  readonly cy: number;
  readonly a: number;
  readonly b: number;
  /** Position within the vertebra+disc period, 0–1; below `discFraction` the slice cuts a disc. */
  readonly phase: number;
  readonly isDisc: boolean;
  /** 0 in the lumbar spine, rising to 1 in the sacrum. */
  readonly sacrum: number;
}

export function vertebraAt(anat: AbdomenAnatomy, z: number): VertebraAt {
  const s = anat.spine;
  const layers = bodyLayersAt(anat, z);
  const sacrum = clamp01((-130 - z) / 60);
  const lumbar = clamp01((120 - z) / 300);
  const cx = layers.fascia.cx + s.lateral[0] * Math.sin(z / 200 + s.lateral[1]);
  const cy = layers.fascia.cy - layers.fascia.bBelow! + s.depthMm + s.lordosisMm * gauss((z + 40) / 110) - 25 * sacrum;
  const phase = (((z - s.phaseMm) / s.periodMm) % 1 + 1) % 1;
  return {
    cx,
    cy,
    a: 19 + 6 * lumbar + 22 * sacrum,
    b: 14 + 4 * lumbar - 3 * sacrum,
    phase,
    isDisc: phase < s.discFraction && sacrum < 0.5,
    sacrum,
  };
}

export interface VesselsAt {
  /** Aorta, or the two common iliac arteries below the bifurcation. */
  readonly arteries: readonly SliceEllipse[];
  /** Inferior vena cava, or the two iliac veins. */
  readonly veins: readonly SliceEllipse[];
  /** The two psoas muscles (empty above their origin). */
  readonly psoas: readonly SliceEllipse[];
}

export function vesselsAt(anat: AbdomenAnatomy, z: number, v: VertebraAt): VesselsAt {
  const w = anat.vessels;
  const front = v.cy + v.b;
  const r = w.aortaRadius;
  let arteries: SliceEllipse[];
  let veins: SliceEllipse[];
  if (z >= w.bifurcationZ) {
    arteries = [{ cx: v.cx - 14, cy: front + r + 3, a: r, b: r }];
    veins = [{ cx: v.cx + 24, cy: front + w.ivcRadii[1] + 2, a: w.ivcRadii[0], b: w.ivcRadii[1], angle: 0.3 }];
  } else {
    const below = w.bifurcationZ - z;
    const spread = 12 + 0.45 * below;
    const ri = 0.62 * r;
    arteries = [-1, 1].map((side) => ({ cx: v.cx - 6 + side * spread, cy: front + ri + 4 - 0.1 * below, a: ri, b: ri }));
    const veinSpread = Math.max(14, 0.4 * (below - 10) + 10);
    veins = [-1, 1].map((side) => ({ cx: v.cx + 4 + side * veinSpread, cy: front + 0.6 * w.ivcRadii[1] - 0.12 * below, a: 0.7 * w.ivcRadii[0], b: 0.8 * w.ivcRadii[1] }));
  }
  const grow = clamp01((w.psoasTopZ - z) / 150) ** 0.7;
  const psoas: SliceEllipse[] =
    grow <= 0
      ? []
      : [-1, 1].map((side) => ({
          cx: v.cx + side * (v.a + 6 + w.psoasRadius * grow * 0.8 + 0.05 * Math.max(0, w.psoasTopZ - z)),
          cy: v.cy + 3 + 20 * v.sacrum,
          a: w.psoasRadius * grow * 0.85,
          b: w.psoasRadius * grow,
          angle: side * 0.3,
        }));
  return { arteries, veins, psoas };
}

// ---------------------------------------------------------------------------------------------
// Sampling

function jitter(rng: Rng, v: Vec3, mm: number): Vec3 {
  return [v[0] + rng.uniform(-mm, mm), v[1] + rng.uniform(-mm, mm), v[2] + rng.uniform(-mm, mm)];
}

function scaled(rng: Rng, radii: Vec3, spread: number): Vec3 {
  const s = rng.uniform(1 - spread, 1 + spread);
  return [radii[0] * s * rng.uniform(0.93, 1.07), radii[1] * s * rng.uniform(0.93, 1.07), radii[2] * s * rng.uniform(0.93, 1.07)];
}

/** Draws one patient. Every random choice comes from `rng`, in a fixed order. */
export function sampleAbdomenAnatomy(rng: Rng, seed: number): AbdomenAnatomy {
  const contrast = rng.next() < 0.3 ? 0 : rng.uniform(0.5, 1);
  const hu = {} as Record<TissueName, number>;
  for (const name of TISSUE_NAMES) {
    const t = TISSUE_HU[name];
    const spread = name === 'corticalBone' ? 80 : name === 'cancellousBone' ? 40 : name === 'background' ? 0 : 6;
    hu[name] = t.native + contrast * t.enhancement * rng.uniform(0.85, 1.15) + rng.uniform(-spread, spread);
  }

  const body: BodyShape = {
    centre: [rng.uniform(-6, 6), rng.uniform(-12, 8)],
    halfWidth: rng.uniform(135, 162),
    anterior: rng.uniform(100, 125),
    posterior: rng.uniform(88, 100),
    chest: rng.uniform(0, 0.06),
    hips: rng.uniform(0.02, 0.08),
    belly: rng.uniform(-0.03, 0.1),
    wobble: [rng.uniform(-0.02, 0.02), rng.uniform(0, 2 * Math.PI)],
    fatMm: rng.uniform(8, 30),
    wallMm: rng.uniform(8, 13),
    posteriorWallMm: rng.uniform(18, 26),
  };
  const spine: SpineShape = {
    depthMm: rng.uniform(52, 62),
    periodMm: rng.uniform(32, 37),
    phaseMm: rng.uniform(0, 37),
    discFraction: rng.uniform(0.2, 0.27),
    lordosisMm: rng.uniform(4, 14),
    lateral: [rng.uniform(-4, 4), rng.uniform(0, 2 * Math.PI)],
  };
  const vessels: VesselShape = {
    aortaRadius: rng.uniform(9, 13),
    bifurcationZ: rng.uniform(-85, -50),
    ivcRadii: [rng.uniform(11, 15), rng.uniform(7, 10)],
    psoasTopZ: rng.uniform(15, 50),
    psoasRadius: rng.uniform(20, 28),
  };
  const zShift = rng.uniform(-15, 15);
  const zScale = rng.uniform(0.92, 1.08);
  const Z = (ref: number): number => zShift + zScale * ref;

  const partial = { body, spine } as AbdomenAnatomy;
  /** Patient coordinates of a point given relative to the cavity at level z (u: −1 left … +1 right, v: −1 back … +1 front). */
  const at = (u: number, v: number, zRef: number): Vec3 => {
    const z = Z(zRef);
    const c = bodyLayersAt(partial, z).cavity;
    return [c.cx + u * c.a, c.cy + v * (v >= 0 ? c.b : c.bBelow!), z];
  };
  const spineAt = (dx: number, dy: number, zRef: number): Vec3 => {
    const z = Z(zRef);
    const v = vertebraAt(partial, z);
    return [v.cx + dx, v.cy + dy, z];
  };
  const rot = (x: number, y: number, z: number): Vec3 => [x, y, z];
  const turn = (range: number): number => rng.uniform(-range, range);

  const liverRight = { centre: jitter(rng, at(0.5, 0.05, 95), 8), radii: scaled(rng, [64, 76, 88], 0.1), rotation: rot(turn(0.1), turn(0.1), -0.25 + turn(0.15)) };
  const liverLeft = { centre: jitter(rng, at(-0.12, 0.5, 118), 8), radii: scaled(rng, [50, 26, 42], 0.12), rotation: rot(turn(0.1), turn(0.15), 0.15 + turn(0.15)) };
  const gallbladder = { centre: jitter(rng, at(0.3, 0.5, 40), 6), radii: scaled(rng, [14, 15, 32], 0.15), rotation: rot(0.4 + turn(0.2), turn(0.2), turn(0.3)) };
  const stomach = { centre: jitter(rng, at(-0.4, 0.3, 112), 8), radii: scaled(rng, [45, 38, 58], 0.15), rotation: rot(turn(0.15), 0.3 + turn(0.15), 0.5 + turn(0.2)) };
  const spleen = { centre: jitter(rng, at(-0.7, -0.35, 95), 6), radii: scaled(rng, [22, 50, 52], 0.15), rotation: rot(turn(0.1), turn(0.1), 0.7 + turn(0.2)) };
  const pancreas = { centre: jitter(rng, spineAt(-18, 52, 45), 5), radii: scaled(rng, [66, 12, 13], 0.12), rotation: rot(turn(0.1), 0.25 + turn(0.1), 0.3 + turn(0.1)) };
  const kidneyZ = rng.uniform(-10, 15);
  const kidneyRight = { centre: jitter(rng, spineAt(64, 8, kidneyZ - 12), 5), radii: scaled(rng, [26, 22, 55], 0.1), rotation: rot(turn(0.1), -0.2 + turn(0.1), -0.5 + turn(0.2)) };
  const kidneyLeft = { centre: jitter(rng, spineAt(-64, 8, kidneyZ + 8), 5), radii: scaled(rng, [26, 22, 55], 0.1), rotation: rot(turn(0.1), 0.2 + turn(0.1), 0.5 + turn(0.2)) };
  const sinus = (k: EllipsoidSpec, side: number): EllipsoidSpec => ({
    centre: [k.centre[0] - side * 0.45 * k.radii[0], k.centre[1] + 0.25 * k.radii[1], k.centre[2]],
    radii: [0.42 * k.radii[0], 0.42 * k.radii[1], 0.55 * k.radii[2]],
    rotation: k.rotation,
  });
  const lungRight = { centre: jitter(rng, at(0.5, -0.1, 300), 8), radii: scaled(rng, [72, 95, 165], 0.08), rotation: rot(-0.25 + turn(0.08), turn(0.08), turn(0.1)) };
  const lungLeft = { centre: jitter(rng, at(-0.5, -0.1, 290), 8), radii: scaled(rng, [68, 95, 165], 0.08), rotation: rot(-0.25 + turn(0.08), turn(0.08), turn(0.1)) };
  const bladder = { centre: jitter(rng, at(0, 0.25, -235), 8), radii: scaled(rng, [45, 35, 42], 0.2), rotation: rot(turn(0.1), turn(0.1), turn(0.1)) };
  const iliac = (side: number): EllipsoidSpec => ({
    centre: jitter(rng, at(side * 0.72, -0.25, -190), 5),
    radii: scaled(rng, [9, 55, 58], 0.08),
    rotation: rot(turn(0.05), side * 0.15 + turn(0.05), side * 0.55 + turn(0.1)),
  });
  const iliacRight = iliac(1);
  const iliacLeft = iliac(-1);

  const colonPoint = (u: number, v: number, zRef: number): Vec3 => jitter(rng, at(u, v, zRef), 8);
  const asc0 = colonPoint(0.72, -0.05, -120);
  const hepatic = colonPoint(0.7, 0.15, 25);
  const sag = colonPoint(0.0, 0.62, -15);
  const splenic = colonPoint(-0.76, 0.1, 75);
  const desc1 = colonPoint(-0.78, -0.15, -120);
  const sigmoid = colonPoint(-0.2, 0.2, -175);
  const colon: Capsule[] = [
    { from: asc0, to: hepatic, radius: rng.uniform(18, 25) },
    { from: hepatic, to: sag, radius: rng.uniform(16, 22) },
    { from: sag, to: splenic, radius: rng.uniform(16, 22) },
    { from: splenic, to: desc1, radius: rng.uniform(14, 19) },
    { from: desc1, to: sigmoid, radius: rng.uniform(13, 18) },
  ];

  return {
    seed,
    contrast,
    hu,
    noiseHu: rng.uniform(8, 20),
    textureHu: rng.uniform(3, 8),
    warpMm: rng.uniform(4, 9),
    roll: rng.uniform(-0.05, 0.05),
    shift: [rng.uniform(-8, 8), rng.uniform(-8, 8)],
    body,
    spine,
    vessels,
    organs: {
      lungRight,
      lungLeft,
      liverRight,
      liverLeft,
      gallbladder,
      stomach,
      spleen,
      pancreas,
      kidneyRight,
      kidneyLeft,
      sinusRight: sinus(kidneyRight, 1),
      sinusLeft: sinus(kidneyLeft, -1),
      bladder,
      iliacRight,
      iliacLeft,
    },
    colon,
    bowelFill: rng.uniform(0.35, 0.6),
    bowelGas: rng.uniform(0.01, 0.05),
    colonGas: rng.uniform(0.1, 0.35),
    bowelTopZ: Z(rng.uniform(20, 50)),
    stomachGasLevel: rng.uniform(0.1, 0.6) * stomach.radii[1],
    ribsBottomZ: Z(rng.uniform(60, 90)),
  };
}
