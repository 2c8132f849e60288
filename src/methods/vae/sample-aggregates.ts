/**
 * The 'localmax' sample aggregate of the vae-* scores (./scoring.ts explains the choice): spatial
 * maxima of the per-pixel reconstruction NLL and of the per-slice KL and ELBO.
 */
import { localMaxExcess } from '../../score/sample-aggregates.js';
import type { Kernel3 } from '../../volume/pool3d.js';
import { squaredErrorMap, type SliceTerms, type VaeSampleScore } from './score.js';

/** Box of the rec local maximum on the slice stack: [x, y] in model pixels, z in slices. */
export const VAE_LOCAL_BOX: Kernel3 = [25, 25, 3];
/** Box of the per-slice local maximum (KL, ELBO): 3 neighbouring slices. */
export const VAE_SLICE_BOX: Kernel3 = [1, 1, 3];

/**
 * The 'localmax' raw sample scores of a stack: rec from the per-pixel NLL map (`images` and the
 * terms' x̂, count × size × size), KL and ELBO from the per-slice terms.
 */
export function localMaxVaeSampleScores(terms: SliceTerms, images: Float32Array, size: number, recStd: number): Record<VaeSampleScore, number> {
  const count = terms.kl.length;
  const recMap = squaredErrorMap(images, terms.xhat, recStd);
  const elbo = Float32Array.from(terms.kl, (k, i) => k + terms.rec[i]!);
  return {
    rec: localMaxExcess(recMap, [size, size, count], 0, VAE_LOCAL_BOX),
    kl: localMaxExcess(terms.kl, [1, 1, count], 0, VAE_SLICE_BOX),
    elbo: localMaxExcess(elbo, [1, 1, count], 0, VAE_SLICE_BOX),
  };
}
