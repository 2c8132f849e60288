/**
 * The data the evaluation report needs. Everything here is plain serialisable data except the
 * typed arrays of a case's overlay slice, which the JSON writer drops (it keeps the slice index
 * and size only).
 *
 * Curve conventions:
 * - PR points are `[recall, precision]`, ROC points are `[falsePositiveRate, truePositiveRate]`,
 *   all in [0, 1]. Points are drawn in the order given (the caller passes them sorted by
 *   threshold), as straight segments, so a step-wise PR curve should be passed with its corners.
 */
export type CurvePoint = readonly [x: number, y: number];

/** A confidence interval `[low, high]`. */
export type Interval = readonly [lo: number, hi: number];

/** Metrics of one anomaly kind (e.g. "uniform", "noise", "normal") or size bucket. */
export interface KindMetrics {
  readonly ap: number;
  readonly auroc: number;
  /** Number of cases the numbers were computed on. */
  readonly n: number;
  readonly bestDice?: number;
}

/** Sample-level (one score per case) results of one method. */
export interface SampleResult {
  /** Average precision, the official MOOD metric. */
  readonly ap: number;
  readonly auroc: number;
  /** Bootstrap confidence intervals over cases. */
  readonly ci?: { readonly ap?: Interval; readonly auroc?: Interval };
  /** Fraction of positives; drawn as the chance line of the PR plot when given. */
  readonly prevalence?: number;
  readonly pr: readonly CurvePoint[];
  readonly roc: readonly CurvePoint[];
  readonly perKind?: Readonly<Record<string, KindMetrics>>;
}

/** Pixel-level (one score per voxel, pooled over all cases) results of one method. */
export interface PixelResult {
  readonly ap: number;
  readonly auroc: number;
  /** Best Dice over all thresholds. */
  readonly bestDice: number;
  readonly bestDiceThreshold?: number;
  readonly ci?: { readonly ap?: Interval; readonly auroc?: Interval; readonly bestDice?: Interval };
  readonly prevalence?: number;
  readonly pr: readonly CurvePoint[];
  readonly roc: readonly CurvePoint[];
  readonly perKind?: Readonly<Record<string, KindMetrics>>;
}

/**
 * One axial slice prepared for display: `width` columns (x) by `height` rows (y), pixel
 * (column c, row r) at index `c + width * r`, row 0 drawn at the top. `extractOverlay` fills it
 * from Volume-layout arrays and by default flips rows so that the largest y is at the top.
 */
export interface SliceView {
  /** Axial index of the slice in the volume. */
  readonly z: number;
  readonly width: number;
  readonly height: number;
  /** Image intensities (any range; windowed for display). */
  readonly image: Float32Array;
  /** Ground-truth mask 0/1, or null when the case has no pixel label. */
  readonly label: Uint8Array | null;
  /** Anomaly scores, expected in [0, 1] (the MOOD range); clipped for display. */
  readonly score: Float32Array;
}

/** One case as seen by one method. */
export interface CaseView {
  /** Case file name, e.g. `toy_0.nii.gz` (untrusted text: always escaped on output). */
  readonly name: string;
  /** Anomaly kind, e.g. "uniform", or "normal" for a case without anomaly. */
  readonly kind: string;
  readonly sampleScore?: number;
  readonly sampleLabel?: 0 | 1;
  /** Per-case Dice (at the method's best-Dice threshold or a fixed one; the caller decides). */
  readonly dice?: number;
  readonly slice?: SliceView;
}

export interface MethodResult {
  readonly name: string;
  /** Wall-clock seconds of the method's predictor runs per case, summed over its runs (a shared run counted once). */
  readonly secondsPerCase?: number;
  /** True when one predictor run scored both tasks: secondsPerCase is that run's time for both, not a sum of two runs. */
  readonly sharedRun?: boolean;
  readonly sample?: SampleResult;
  readonly pixel?: PixelResult;
  /** Cases with no prediction (counted as all-zero by the MOOD evaluator). */
  readonly missing: readonly string[];
  /** Cases whose prediction was unreadable, wrong-shaped or non-finite. */
  readonly bad: readonly string[];
  /** Why the method's runs failed ("sample: exit 1: …", "pixel: timed out …"); absent or empty when they succeeded. */
  readonly failed?: readonly string[];
  readonly cases?: readonly CaseView[];
}

export interface DatasetInfo {
  readonly name: string;
  /** "brain" or "abdom" for MOOD data; free text otherwise. */
  readonly region: string;
  readonly cases: number;
}

export interface Report {
  readonly title: string;
  /** Creation time as text, passed in by the caller so that output is deterministic. */
  readonly createdAt: string;
  readonly dataset: DatasetInfo;
  /** Methods in leaderboard order (the report does not re-sort them). */
  readonly methods: readonly MethodResult[];
  readonly notes?: readonly string[];
  /** Confidence level of the `ci` intervals, e.g. 0.95 (shown in the legend of the tables). */
  readonly ciLevel?: number;
  /** Range of scores mapped onto the heat ramp in overlays; default [0, 1], the MOOD range. */
  readonly scoreRange?: readonly [number, number];
}

/** Paths written by `writeReport`. */
export interface ReportPaths {
  readonly json: string;
  readonly markdown: string;
  readonly html: string;
}
