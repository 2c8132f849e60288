import { createRng, type Rng } from '../../src/engine/random.js';
import type { Shape3 } from '../../src/volume/volume.js';
import { chooseOverlaySlice, extractOverlay } from './overlay.js';
import type { CaseView, CurvePoint, KindMetrics, MethodResult, Report } from './types.js';

/**
 * A small, fully synthetic report for tests, screenshots and docs: tiny "brain" volumes with a
 * spherical anomaly, two made-up methods with noisy scores, and smooth made-up curves.
 * None of the numbers come from a real evaluation.
 */

const SHAPE: Shape3 = [32, 32, 12];

interface ExampleCase {
  readonly name: string;
  readonly kind: string;
}

const DEFAULT_CASES: readonly ExampleCase[] = [
  { name: 'toy_0.nii.gz', kind: 'normal' },
  { name: 'toy_1.nii.gz', kind: 'uniform' },
  { name: 'toy_2.nii.gz', kind: 'noise' },
  { name: 'toy_3.nii.gz', kind: 'sink' },
];

export interface ExampleOptions {
  readonly seed?: number;
  /** Cases to synthesise; a kind of "normal" gets no anomaly. */
  readonly cases?: readonly ExampleCase[];
}

interface SyntheticCase {
  readonly image: Float32Array;
  readonly label: Uint8Array;
}

function synthesiseCase(kind: string, rng: Rng): SyntheticCase {
  const [nx, ny, nz] = SHAPE;
  const image = new Float32Array(nx * ny * nz);
  const label = new Uint8Array(nx * ny * nz);
  const cx = (nx - 1) / 2;
  const cy = (ny - 1) / 2;
  const ax = nx * 0.42;
  const ay = ny * 0.46;
  const sphere = { x: 12 + rng.int(8), y: 12 + rng.int(8), z: 4 + rng.int(4), r: 3.2 + rng.uniform(0, 1.6) };
  for (let z = 0; z < nz; z++) {
    const shrink = 1 - Math.abs(z - (nz - 1) / 2) / nz;
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const i = x + nx * (y + ny * z);
        const e = ((x - cx) / (ax * shrink)) ** 2 + ((y - cy) / (ay * shrink)) ** 2;
        if (e > 1) continue;
        const folds = 0.08 * Math.sin(x * 0.9 + z) * Math.cos(y * 0.7);
        const ventricle = ((x - cx) / 4) ** 2 + ((y - cy) / 7) ** 2 < 1 ? -0.35 : 0;
        image[i] = Math.min(1, Math.max(0, 0.45 + 0.3 * (1 - e) + folds + ventricle + 0.03 * rng.normal()));
        if (kind === 'normal') continue;
        if ((x - sphere.x) ** 2 + (y - sphere.y) ** 2 + (z - sphere.z) ** 2 <= sphere.r ** 2) {
          label[i] = 1;
          if (kind === 'uniform') image[i] = Math.min(1, image[i] + 0.28);
          else if (kind === 'noise') image[i] = Math.min(1, Math.max(0, image[i] + 0.25 * rng.normal()));
          else image[i] = Math.max(0, image[i] - 0.25);
        }
      }
    }
  }
  return { image, label };
}

/** A noisy score: the label blurred by a box filter, weighted by `strength`, plus noise inside the body. */
function synthesiseScore(c: SyntheticCase, strength: number, noise: number, rng: Rng): Float32Array {
  const [nx, ny, nz] = SHAPE;
  const score = new Float32Array(c.label.length);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        let sum = 0;
        let count = 0;
        for (let dz = -1; dz <= 1; dz++) {
          for (let dy = -1; dy <= 1; dy++) {
            for (let dx = -1; dx <= 1; dx++) {
              const X = x + dx;
              const Y = y + dy;
              const Z = z + dz;
              if (X < 0 || Y < 0 || Z < 0 || X >= nx || Y >= ny || Z >= nz) continue;
              sum += c.label[X + nx * (Y + ny * Z)];
              count++;
            }
          }
        }
        const i = x + nx * (y + ny * z);
        const inBody = c.image[i] > 0 ? 1 : 0;
        const s = strength * (sum / count) + inBody * noise * Math.abs(rng.normal());
        score[i] = Math.min(1, Math.max(0, s));
      }
    }
  }
  return score;
}

function diceAt(label: Uint8Array, score: Float32Array, threshold: number): number {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < label.length; i++) {
    const p = score[i] >= threshold;
    if (p && label[i]) tp++;
    else if (p) fp++;
    else if (label[i]) fn++;
  }
  return tp + fp + fn === 0 ? 1 : (2 * tp) / (2 * tp + fp + fn);
}

/**
 * Smooth made-up ROC curve tpr = fpr^(1/k) (AUROC k/(k+1)) and the PR curve it implies at a
 * prevalence, ordered from the highest threshold down.
 */
function madeUpCurves(k: number, prevalence: number, steps = 60): { roc: CurvePoint[]; pr: CurvePoint[]; auroc: number; ap: number } {
  const roc: CurvePoint[] = [];
  const pr: CurvePoint[] = [];
  let ap = 0;
  let lastRecall = 0;
  for (let i = 0; i <= steps; i++) {
    const tpr = i / steps;
    const fpr = tpr ** k;
    roc.push([fpr, tpr]);
    const precision = tpr === 0 ? 1 : (prevalence * tpr) / (prevalence * tpr + (1 - prevalence) * fpr);
    pr.push([tpr, precision]);
    ap += (tpr - lastRecall) * precision;
    lastRecall = tpr;
  }
  roc.push([1, 1]);
  return { roc, pr, auroc: k / (k + 1), ap };
}

/** Mean of the `count` highest values: a made-up case-level score. */
function meanOfTop(values: Float32Array, count: number): number {
  const sorted = values.slice().sort();
  let sum = 0;
  for (let i = sorted.length - count; i < sorted.length; i++) sum += sorted[i];
  return sum / count;
}

function jitter(value: number, rng: Rng, spread: number): number {
  return Math.min(1, Math.max(0, value + rng.uniform(-spread, spread)));
}

function interval(value: number, rng: Rng, width: number): [number, number] {
  return [Math.max(0, value - width * rng.uniform(0.6, 1)), Math.min(1, value + width * rng.uniform(0.4, 0.8))];
}

function perKind(kinds: readonly string[], ap: number, auroc: number, n: number, rng: Rng, withDice?: number): Record<string, KindMetrics> {
  const out: Record<string, KindMetrics> = {};
  for (const kind of kinds) {
    if (kind === 'normal') continue;
    out[kind] = {
      ap: jitter(ap, rng, 0.08),
      auroc: jitter(auroc, rng, 0.05),
      n,
      ...(withDice !== undefined ? { bestDice: jitter(withDice, rng, 0.08) } : {}),
    };
  }
  return out;
}

/** Build the example report. Same options, same report (and so the same output bytes). */
export function buildExampleReport(options: ExampleOptions = {}): Report {
  const rng = createRng(options.seed ?? 1);
  const cases = options.cases ?? DEFAULT_CASES;
  const kinds = [...new Set(cases.map((c) => c.kind))];
  const volumes = cases.map((c) => synthesiseCase(c.kind, rng));
  const nAbnormal = cases.filter((c) => c.kind !== 'normal').length;
  const samplePrevalence = nAbnormal / cases.length;
  const methodSpecs = [
    { name: 'lsr-vqvae-pixelsnail', strength: 0.95, noise: 0.1, k: 5, kPixel: 14, seconds: 41.3, skip: -1 },
    { name: 'ae-residual', strength: 0.55, noise: 0.2, k: 2, kPixel: 5, seconds: 6.8, skip: cases.length - 1 },
  ];
  const sliceOfCase: number[] = [];
  const methods: MethodResult[] = methodSpecs.map((spec) => {
    const sample = madeUpCurves(spec.k, samplePrevalence);
    const pixel = madeUpCurves(spec.kPixel, 0.012, 120);
    const bestDice = Math.min(0.9, pixel.ap * 0.92);
    const views: CaseView[] = [];
    const missing: string[] = [];
    cases.forEach((c, i) => {
      if (i === spec.skip) {
        missing.push(c.name);
        return;
      }
      const volume = volumes[i];
      const score = synthesiseScore(volume, spec.strength, spec.noise, rng);
      const hasLabel = c.kind !== 'normal';
      // One slice per case for every method (so the report shows them side by side): the label
      // decides, or for a normal case the first method's scores.
      sliceOfCase[i] ??= chooseOverlaySlice(hasLabel ? volume.label : null, score, SHAPE);
      const z = sliceOfCase[i];
      const top = meanOfTop(score, 40);
      views.push({
        name: c.name,
        kind: c.kind,
        sampleLabel: hasLabel ? 1 : 0,
        sampleScore: top,
        dice: hasLabel ? diceAt(volume.label, score, 0.4) : undefined,
        slice: extractOverlay(volume.image, hasLabel ? volume.label : null, score, SHAPE, z),
      });
    });
    return {
      name: spec.name,
      secondsPerCase: spec.seconds,
      sample: {
        ap: sample.ap,
        auroc: sample.auroc,
        ci: { ap: interval(sample.ap, rng, 0.12), auroc: interval(sample.auroc, rng, 0.1) },
        prevalence: samplePrevalence,
        pr: sample.pr,
        roc: sample.roc,
        perKind: perKind(kinds, sample.ap, sample.auroc, cases.filter((c) => c.kind === 'normal').length + 1, rng),
      },
      pixel: {
        ap: pixel.ap,
        auroc: pixel.auroc,
        bestDice,
        bestDiceThreshold: 0.4,
        ci: { ap: interval(pixel.ap, rng, 0.1), auroc: interval(pixel.auroc, rng, 0.03), bestDice: interval(bestDice, rng, 0.1) },
        prevalence: 0.012,
        pr: pixel.pr,
        roc: pixel.roc,
        perKind: perKind(kinds, pixel.ap, pixel.auroc, 1, rng, bestDice),
      },
      missing,
      bad: [],
      cases: views,
    };
  });
  return {
    title: 'MOOD evaluation — synthetic example',
    createdAt: '2024-06-01 12:00 UTC',
    dataset: { name: 'synthetic-toy', region: 'brain', cases: cases.length },
    methods,
    ciLevel: 0.95,
    notes: [
      'Synthetic example: volumes, scores and curves are made up to exercise the report layout.',
      'Missing predictions are scored as all-zero volumes, as the MOOD evaluator does.',
    ],
  };
}
