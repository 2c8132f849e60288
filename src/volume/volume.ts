/**
 * A 3-D scalar image on a voxel grid.
 *
 * Memory layout follows NIfTI: x varies fastest, then y, then z.
 * Voxel (x, y, z) lives at `data[x + nx * (y + ny * z)]`.
 * "Axial slice z" means all voxels with that z index.
 */
export type Shape3 = readonly [nx: number, ny: number, nz: number];

/** Row-major 4×4 voxel-to-world matrix (RAS mm), last row [0, 0, 0, 1]. */
export type Affine = readonly [
  readonly [number, number, number, number],
  readonly [number, number, number, number],
  readonly [number, number, number, number],
  readonly [number, number, number, number],
];

export interface Volume {
  readonly data: Float32Array;
  readonly shape: Shape3;
  /** Voxel size in mm along x, y, z. */
  readonly spacing: readonly [number, number, number];
  readonly affine: Affine;
}

export function voxelCount(shape: Shape3): number {
  return shape[0] * shape[1] * shape[2];
}

export function identityAffine(spacing: readonly [number, number, number] = [1, 1, 1]): Affine {
  return [
    [spacing[0], 0, 0, 0],
    [0, spacing[1], 0, 0],
    [0, 0, spacing[2], 0],
    [0, 0, 0, 1],
  ];
}

/** A volume of zeros (or of the given data) with unit spacing unless told otherwise. */
export function makeVolume(
  shape: Shape3,
  data?: Float32Array,
  spacing: readonly [number, number, number] = [1, 1, 1],
  affine?: Affine,
): Volume {
  const n = voxelCount(shape);
  if (data && data.length !== n) {
    throw new RangeError(`volume data has ${data.length} voxels, shape ${shape.join('×')} needs ${n}`);
  }
  return { data: data ?? new Float32Array(n), shape, spacing, affine: affine ?? identityAffine(spacing) };
}

/** Same grid (shape, spacing, affine), new voxel values. */
export function withData(like: Volume, data: Float32Array): Volume {
  return makeVolume(like.shape, data, like.spacing, like.affine);
}
