import type { Shape3 } from '../../src/volume/volume.js';

export type Vec3 = readonly [number, number, number];

/** Inclusive voxel index ranges of the sphere's bounding box, clipped to the grid. */
export interface VoxelBox {
  readonly lo: Vec3;
  readonly hi: Vec3;
}

/** The voxels whose centres lie within `radius` of `centre` (both in voxel units): |p − c|² ≤ r². */
export function sphereBox(shape: Shape3, centre: Vec3, radius: number): VoxelBox {
  const lo: number[] = [];
  const hi: number[] = [];
  for (let a = 0; a < 3; a++) {
    lo.push(Math.max(0, Math.ceil(centre[a] - radius)));
    hi.push(Math.min(shape[a] - 1, Math.floor(centre[a] + radius)));
  }
  return { lo: [lo[0], lo[1], lo[2]], hi: [hi[0], hi[1], hi[2]] };
}

/**
 * Calls `visit(index, x, y, z, dist2)` for every voxel of the sphere, in memory order
 * (x fastest), where dist2 = |p − c|².
 */
export function forEachSphereVoxel(
  shape: Shape3,
  centre: Vec3,
  radius: number,
  visit: (index: number, x: number, y: number, z: number, dist2: number) => void,
): void {
  const [nx, ny] = shape;
  const { lo, hi } = sphereBox(shape, centre, radius);
  const r2 = radius * radius;
  for (let z = lo[2]; z <= hi[2]; z++) {
    const dz = z - centre[2];
    for (let y = lo[1]; y <= hi[1]; y++) {
      const dy = y - centre[1];
      const dyz2 = dy * dy + dz * dz;
      if (dyz2 > r2) continue;
      const row = nx * (y + ny * z);
      for (let x = lo[0]; x <= hi[0]; x++) {
        const dx = x - centre[0];
        const d2 = dx * dx + dyz2;
        if (d2 <= r2) visit(row + x, x, y, z, d2);
      }
    }
  }
}

/** The anomaly's pixel label: sphere ∩ body, uint8 0/1 over the whole grid. */
export function sphereLabel(shape: Shape3, centre: Vec3, radius: number, body: Uint8Array): Uint8Array {
  const label = new Uint8Array(shape[0] * shape[1] * shape[2]);
  if (body.length !== label.length) throw new RangeError(`body mask has ${body.length} voxels, the grid ${label.length}`);
  forEachSphereVoxel(shape, centre, radius, (i) => {
    if (body[i]) label[i] = 1;
  });
  return label;
}

/** The flat indices of the label's voxels, ascending (the order every per-voxel draw follows). */
export function labelIndices(shape: Shape3, centre: Vec3, radius: number, body: Uint8Array): Int32Array {
  const found: number[] = [];
  forEachSphereVoxel(shape, centre, radius, (i) => {
    if (body[i]) found.push(i);
  });
  return Int32Array.from(found);
}
