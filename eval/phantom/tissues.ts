/**
 * Tissue classes and CT numbers of the SYNTHETIC abdominal phantom (no real CT is reachable here;
 * see /work/shared/spec/data.md), and the window that maps Hounsfield units to the [0, 1] range of
 * the MOOD abdominal volumes.
 *
 * Window (documented choice): HU −1000 … +1000 maps linearly to 0 … 1, clipped. The MOOD abdominal
 * CTs are distributed pre-normalised to roughly [0, 1] with air at the bottom of the range; the exact
 * window the organisers used is not public. A symmetric ±1000 HU window keeps air at 0, puts water
 * at 0.5 and fat, soft tissue and bone in clearly ordered bands (fat ≈ 0.45, soft tissue ≈ 0.52–0.6,
 * contrast blood ≈ 0.6, cancellous bone ≈ 0.63, cortical bone ≈ 0.9).
 */

export const HU_WINDOW: readonly [number, number] = Object.freeze([-1000, 1000] as const);

/** Hounsfield units → [0, 1] by HU_WINDOW, clipped. */
export function huToUnit(hu: number): number {
  const v = (hu - HU_WINDOW[0]) / (HU_WINDOW[1] - HU_WINDOW[0]);
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** Voxel classes of the phantom's label map (`makeAbdomenPhantom(..., labels: true)`). */
export const Tissue = Object.freeze({
  background: 0,
  subcutaneousFat: 1,
  muscle: 2,
  visceralFat: 3,
  lung: 4,
  liver: 5,
  spleen: 6,
  kidney: 7,
  renalSinus: 8,
  stomach: 9,
  gallbladder: 10,
  pancreas: 11,
  bowel: 12,
  gas: 13,
  vessel: 14,
  corticalBone: 15,
  cancellousBone: 16,
  disc: 17,
  csf: 18,
  bladder: 19,
});

export type TissueName = keyof typeof Tissue;
export type TissueCode = (typeof Tissue)[TissueName];

export const TISSUE_NAMES: readonly TissueName[] = Object.freeze(
  (Object.keys(Tissue) as TissueName[]).sort((a, b) => Tissue[a] - Tissue[b]),
);

/**
 * Native (non-contrast) CT number of each tissue and its rise at full portal-venous contrast.
 * A phantom draws a contrast level c ∈ [0, 1] and a small per-tissue jitter: HU = native + c·enhancement + jitter.
 */
export const TISSUE_HU: Readonly<Record<TissueName, { readonly native: number; readonly enhancement: number }>> = Object.freeze({
  background: { native: -1000, enhancement: 0 },
  subcutaneousFat: { native: -100, enhancement: 0 },
  muscle: { native: 50, enhancement: 15 },
  visceralFat: { native: -95, enhancement: 0 },
  lung: { native: -850, enhancement: 0 },
  liver: { native: 58, enhancement: 55 },
  spleen: { native: 48, enhancement: 70 },
  kidney: { native: 32, enhancement: 140 },
  renalSinus: { native: -70, enhancement: 0 },
  stomach: { native: 15, enhancement: 0 },
  gallbladder: { native: 8, enhancement: 0 },
  pancreas: { native: 42, enhancement: 60 },
  bowel: { native: 28, enhancement: 35 },
  gas: { native: -960, enhancement: 0 },
  vessel: { native: 42, enhancement: 150 },
  corticalBone: { native: 800, enhancement: 0 },
  cancellousBone: { native: 260, enhancement: 0 },
  disc: { native: 85, enhancement: 0 },
  csf: { native: 12, enhancement: 0 },
  bladder: { native: 6, enhancement: 0 },
});
