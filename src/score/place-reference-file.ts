/**
 * A per-place reference (./place-reference.ts) stored next to the weights as a float16 tensor bundle,
 * `<name>.json` + `<name>.bin`: the grid, the number of volumes and whatever the method records about
 * how its maps were made (`config`), with the tensors `mean` and `sd`.
 */
import { existsSync } from 'node:fs';
import { InputFileError } from '../errors.js';
import { roundToFloat16 } from '../io/float16.js';
import { manifestPath, readTensorBundle, writeTensorBundle } from '../io/tensor-bundle.js';
import type { ResidualReference } from './place-reference.js';

export interface StoredPlaceReference {
  readonly reference: ResidualReference;
  /** The bundle's config without `grid` and `volumes` (what the method recorded). */
  readonly config: Readonly<Record<string, unknown>>;
  /** The manifest file, for error messages. */
  readonly file: string;
}

/** The reference `<dir>/<name>.json/.bin` of `kind`, or null when there is none; a damaged one is an error naming its file. */
export function readPlaceReference(dir: string, name: string, kind: string): StoredPlaceReference | null {
  const file = manifestPath(dir, name);
  if (!existsSync(file)) return null;
  const bundle = readTensorBundle(dir, name, kind);
  const { grid, volumes, ...config } = bundle.config as { grid?: unknown; volumes?: unknown } & Record<string, unknown>;
  if (!Array.isArray(grid) || grid.length !== 3 || !grid.every((n) => Number.isInteger(n) && n >= 1)) throw new InputFileError(file, 'config.grid must be three positive integers');
  const cells = grid[0] * grid[1] * grid[2];
  const tensor = (tensorName: string): Float32Array => {
    const t = bundle.tensors.get(tensorName);
    if (!t || t.values.length !== cells) throw new InputFileError(file, `tensor ${tensorName} must hold ${cells} values (grid ${grid.join('×')})`);
    return t.values;
  };
  return {
    reference: { grid: grid as unknown as ResidualReference['grid'], mean: tensor('mean'), sd: tensor('sd'), volumes: Number(volumes) },
    config,
    file,
  };
}

/** The reference as a reader of its float16 file gets it (so a calibration scores with exactly what predict will read). */
export function asStored(reference: ResidualReference): ResidualReference {
  return { ...reference, mean: roundToFloat16(reference.mean), sd: roundToFloat16(reference.sd) };
}

/** Writes the reference as float16 (atomic: binary first, then the manifest); returns the manifest's path. */
export async function writePlaceReference(dir: string, name: string, kind: string, reference: ResidualReference, config: Readonly<Record<string, unknown>>): Promise<string> {
  const { grid, mean, sd, volumes } = reference;
  const shape = [grid[2], grid[1], grid[0]];
  const files = await writeTensorBundle(
    dir,
    name,
    {
      kind,
      config: { grid: [...grid], volumes, ...config },
      tensors: new Map([
        ['mean', { shape, values: mean }],
        ['sd', { shape, values: sd }],
      ]),
    },
    { dtype: 'float16' },
  );
  return files.manifest;
}
