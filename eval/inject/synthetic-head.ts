import type { Shape3, Volume } from '../../src/volume/volume.js';
import { makeVolume } from '../../src/volume/volume.js';

/**
 * A procedural stand-in for a skull-stripped T1 brain (uint8-like intensities 0–130, background 0):
 * an ellipsoid "brain" of grey matter with folded (sinusoidally modulated) white matter inside and two
 * dark ventricles, deliberately asymmetric (left–right and up–down). Default: 2 mm voxels, a head of adult size
 * (~115 × 150 × 115 mm). Used when the real Colin27 head
 * (data/mricron/ch2bet.nii.gz, `sh scripts/fetch-data.sh`) is not on the machine.
 */
export function syntheticHead(shape: Shape3 = [72, 88, 76], spacingMm = 2): Volume {
  const [nx, ny, nz] = shape;
  const data = new Float32Array(nx * ny * nz);
  const c = [(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2];
  const r = [nx * 0.4, ny * 0.42, nz * 0.38];
  for (let z = 0, i = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, i++) {
        const u = (x - c[0]) / r[0];
        const v = (y - c[1]) / r[1];
        const w = (z - c[2]) / (z > c[2] ? r[2] : 0.7 * r[2]); // flatter below: not up–down symmetric
        const rho = Math.sqrt(u * u + v * v + w * w);
        if (rho > 1) continue;
        const folds = 0.08 * Math.sin(9 * Math.atan2(v, u) + 5 * w) + 0.05 * Math.sin(13 * w + 3 * u);
        let value = rho < 0.72 + folds ? 115 : 80;
        const left = (u + 0.22) ** 2 / 0.02 + v * v / 0.09 + (w - 0.25) ** 2 / 0.03;
        const right = (u - 0.2) ** 2 / 0.015 + (v - 0.05) ** 2 / 0.08 + (w - 0.2) ** 2 / 0.03;
        if (left < 1 || right < 1) value = 30;
        data[i] = value + 6 * Math.sin(0.9 * x + 0.4 * y) * Math.cos(0.7 * z);
      }
    }
  }
  return makeVolume(shape, data, [spacingMm, spacingMm, spacingMm]);
}
