import { makeVolume, type Volume } from '../../src/volume/volume.js';

/** Every `step`-th voxel along each axis: a small real head for end-to-end comparisons. */
export function subsample(volume: Volume, step: number): Volume {
  const [nx, ny, nz] = volume.shape;
  const shape = [Math.ceil(nx / step), Math.ceil(ny / step), Math.ceil(nz / step)] as const;
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  for (let z = 0; z < shape[2]; z++) {
    for (let y = 0; y < shape[1]; y++) {
      for (let x = 0; x < shape[0]; x++) data[x + shape[0] * (y + shape[1] * z)] = volume.data[x * step + nx * (y * step + ny * z * step)]!;
    }
  }
  return makeVolume([...shape], data, [volume.spacing[0] * step, volume.spacing[1] * step, volume.spacing[2] * step]);
}
