/**
 * Decoding restored copies without decoding the same map twice. Restoration leaves many copies of a
 * slice identical (a slice with no unlikely code keeps all S copies equal to its original map; LSGS
 * copies often settle on the same repair), and the decoder is deterministic, so each distinct
 * (slice position, code map) pair is decoded once and its image is shared. The result is the one the
 * plain loop gives; only the work shrinks.
 */

export type DecodeMaps = (codes: Int32Array, positions: Float32Array) => Promise<Float32Array>;

export interface DistinctMaps {
  /** The distinct maps, in order of first appearance (distinct × cells). */
  readonly codes: Int32Array;
  readonly positions: Float32Array;
  /** For each input map, the row of its distinct map. */
  readonly rowOf: Int32Array;
}

/** Groups `positions.length` maps of `cells` codes by (position, codes). */
export function distinctCodeMaps(codes: Int32Array, positions: Float32Array, cells: number): DistinctMaps {
  const count = positions.length;
  if (codes.length !== count * cells) throw new RangeError(`distinctCodeMaps: ${codes.length} codes for ${count} maps of ${cells}`);
  const rows = new Map<string, number>();
  const rowOf = new Int32Array(count);
  const firstOf: number[] = [];
  for (let i = 0; i < count; i++) {
    const key = `${positions[i]}|${codes.subarray(i * cells, (i + 1) * cells).join(',')}`;
    let row = rows.get(key);
    if (row === undefined) {
      row = firstOf.length;
      rows.set(key, row);
      firstOf.push(i);
    }
    rowOf[i] = row;
  }
  const distinct = new Int32Array(firstOf.length * cells);
  firstOf.forEach((i, row) => distinct.set(codes.subarray(i * cells, (i + 1) * cells), row * cells));
  return { codes: distinct, positions: Float32Array.from(firstOf, (i) => positions[i]!), rowOf };
}

/** The images of all maps (count × plane), decoding each distinct map once. */
export async function decodeDistinct(
  decode: DecodeMaps,
  codes: Int32Array,
  positions: Float32Array,
  cells: number,
  plane: number,
): Promise<{ images: Float32Array; decoded: number }> {
  const distinct = distinctCodeMaps(codes, positions, cells);
  const decodedImages = await decode(distinct.codes, distinct.positions);
  const count = positions.length;
  if (decodedImages.length !== distinct.positions.length * plane) {
    throw new RangeError(`decodeDistinct: ${decodedImages.length} values decoded for ${distinct.positions.length} maps of ${plane}`);
  }
  if (distinct.positions.length === count) return { images: decodedImages, decoded: count };
  const images = new Float32Array(count * plane);
  for (let i = 0; i < count; i++) images.set(decodedImages.subarray(distinct.rowOf[i]! * plane, (distinct.rowOf[i]! + 1) * plane), i * plane);
  return { images, decoded: distinct.positions.length };
}
