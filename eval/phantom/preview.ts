/**
 * A PNG contact sheet of a phantom (or any cubic CT-like volume in [0, 1]): a mid axial and a mid
 * coronal slice, top row in the full [0, 1] range (what a model sees), bottom row in an abdominal
 * soft-tissue window (HU −160 … 240). Radiological orientation: patient right on the image left,
 * anterior (axial) / superior (coronal) at the top.
 */
import { encodePng } from '../report/png.js';
import type { Volume } from '../../src/volume/volume.js';
import { HU_WINDOW } from './tissues.js';

export interface PreviewOptions {
  /** Axial slice index (default: the middle). */
  readonly axialZ?: number;
  /** Coronal slice index along y (default: the middle). */
  readonly coronalY?: number;
  /** Gap between panels, pixels (default 4). */
  readonly gap?: number;
}

const huToValue = (hu: number): number => (hu - HU_WINDOW[0]) / (HU_WINDOW[1] - HU_WINDOW[0]);
/** Abdominal soft-tissue window (level 40, width 400 HU) in [0, 1] units. */
export const SOFT_TISSUE_WINDOW: readonly [number, number] = Object.freeze([huToValue(-160), huToValue(240)] as const);

export function renderPhantomPreview(volume: Volume, opts: PreviewOptions = {}): Buffer {
  const [nx, ny, nz] = volume.shape;
  const zAxial = opts.axialZ ?? Math.floor(nz / 2);
  const yCoronal = opts.coronalY ?? Math.floor(ny / 2);
  const gap = opts.gap ?? 4;
  const width = 2 * nx + gap;
  const height = Math.max(ny, nz) * 2 + gap;
  const pixels = new Uint8Array(width * height * 3).fill(32);
  const d = volume.data;
  const windows: ReadonlyArray<readonly [number, number]> = [[0, 1], SOFT_TISSUE_WINDOW];
  windows.forEach(([lo, hi], w) => {
    const top = w * (Math.max(ny, nz) + gap);
    const put = (row: number, col: number, value: number): void => {
      const g = Math.round(Math.min(1, Math.max(0, (value - lo) / (hi - lo))) * 255);
      const p = ((top + row) * width + col) * 3;
      pixels[p] = g;
      pixels[p + 1] = g;
      pixels[p + 2] = g;
    };
    for (let row = 0; row < ny; row++) {
      const y = ny - 1 - row;
      for (let col = 0; col < nx; col++) put(row, col, d[nx - 1 - col + nx * (y + ny * zAxial)]);
    }
    for (let row = 0; row < nz; row++) {
      const z = nz - 1 - row;
      for (let col = 0; col < nx; col++) put(row, nx + gap + col, d[nx - 1 - col + nx * (yCoronal + ny * z)]);
    }
  });
  return encodePng(width, height, pixels, 3);
}
