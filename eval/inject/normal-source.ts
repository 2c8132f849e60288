import type { Volume } from '../../src/volume/volume.js';
import { makeNormalVariant, prepareSource, type PreparedSource, type VariantParams, type VariationRanges } from './variants.js';

/** One normal volume with its body mask and what a manifest records about how it was made. */
export interface NormalCase {
  readonly volume: Volume;
  readonly body: Uint8Array;
  readonly params: VariantParams | { readonly source: string; readonly seed: number };
}

/** Where normal cases come from: variants of a real head, or a procedural phantom. */
export interface NormalSource {
  /** Recorded in manifests: a file path or e.g. "synthetic-abdomen-phantom". */
  readonly name: string;
  make(seed: number, size: number): NormalCase;
}

/** Random anatomical variants of one real head (prepared once, reused for every case). */
export function headVariantSource(
  name: string,
  head: Volume | PreparedSource,
  opts: { variation?: Partial<VariationRanges>; fill?: number } = {},
): NormalSource {
  const prepared = 'foreground' in head ? head : prepareSource(head);
  return {
    name,
    make(seed: number, size: number): NormalCase {
      const { volume, body, params } = makeNormalVariant(prepared, { size, seed, variation: opts.variation, fill: opts.fill });
      return { volume, body, params };
    },
  };
}
