/**
 * How far each encoder output lies from the codebook entry it was quantised to: ‖z − e_code‖². A patch
 * unlike anything in training still gets a code (the nearest one), so the code's prior probability can
 * look normal while its distance is large; the distance is the encoder's own novelty signal.
 */

/** ‖z_i − e_{codes_i}‖² for every position i; `z` is [positions, dim] (channels last), `codebook` [K, dim]. */
export function quantisationDistances(z: Float32Array, codes: Int32Array, codebook: Float32Array, dim: number): Float32Array {
  if (z.length !== codes.length * dim) throw new RangeError(`quantisationDistances: ${z.length} latent values for ${codes.length} codes of dimension ${dim}`);
  const k = codebook.length / dim;
  const out = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    if (c < 0 || c >= k) throw new RangeError(`quantisationDistances: code ${c} at position ${i} is outside the codebook of ${k}`);
    let sum = 0;
    for (let j = 0; j < dim; j++) {
      const d = z[i * dim + j]! - codebook[c * dim + j]!;
      sum += d * d;
    }
    out[i] = sum;
  }
  return out;
}
