import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createRng, shuffled } from '../../src/engine/random.js';
import { atomicWriteFile } from '../../src/io/atomic.js';
import { readNifti, writeNifti } from '../../src/io/nifti.js';
import { makeVolume, type Volume } from '../../src/volume/volume.js';
import { ANOMALY_KINDS, applyAnomaly, sampleAnomalyParams, type AnomalyKind, type AnomalyParams } from './anomalies.js';
import { deriveSeed, EVAL_SALT } from './seeds.js';
import type { Vec3 } from './sphere.js';
import { headVariantSource, type NormalCase, type NormalSource } from './normal-source.js';
import type { VariationRanges } from './variants.js';

/**
 * Builds a synthetic test set in exactly the MOOD toy layout:
 *
 *   outDir/toy/toy_<i>.nii.gz                     float32 volume, size³, values in [0, 1]
 *   outDir/toy_label/pixel/toy_<i>.nii.gz         uint8 0/1 pixel label (sphere ∩ body)
 *   outDir/toy_label/sample/toy_<i>.nii.gz.txt    "0" or "1"
 *   outDir/manifest.json                          what every case is (written last)
 *
 * Each case is one "slot" (kind, k): normal k, or anomaly kind k. Its seed is
 * deriveSeed('eval', seed, kind, k), so a case does not depend on the other cases nor on how many
 * are generated; only the case order (which slot gets which toy_<i> name) depends on the counts.
 * The order is shuffled by the seed so names do not reveal labels.
 *
 * Same options → byte-identical files (writeNifti's gzip is deterministic). Cases are generated and
 * written one at a time; memory holds one case plus the prepared source heads.
 */
export interface ToySetOptions {
  /** NIfTI paths of the real heads variants are made from (e.g. data/mricron/ch2bet.nii.gz). */
  readonly sources?: readonly string[];
  /** Other sources of normal cases (e.g. the abdominal phantom); used instead of `sources` when given. */
  readonly normalSources?: readonly NormalSource[];
  readonly outDir: string;
  /** Number of normal cases. */
  readonly normal: number;
  /** Number of abnormal cases of each kind. */
  readonly perKind: number;
  /** Default: every kind (ANOMALY_KINDS). */
  readonly kinds?: readonly AnomalyKind[];
  /** Side of the cubic volumes (MOOD brain: 256). */
  readonly size: number;
  readonly seed: number;
  readonly variation?: Partial<VariationRanges>;
  /** See NormalVariantOptions.fill. */
  readonly fill?: number;
  readonly log?: (line: string) => void;
}

export type CaseKind = 'normal' | AnomalyKind;

export interface ToyCaseRecord {
  /** File name, e.g. "toy_3.nii.gz" (the pixel label has the same name, the sample label adds ".txt"). */
  readonly name: string;
  readonly kind: CaseKind;
  /** Index of the case among those of its kind. */
  readonly slot: number;
  /** The case's own seed, deriveSeed('eval', seed, kind, slot). */
  readonly seed: number;
  /** Source path as given in the options. */
  readonly source: string;
  readonly variant: NormalCase['params'];
  /** Sphere centre (voxels) and radius (voxels); null for normal cases. */
  readonly centre: Vec3 | null;
  readonly radius: number | null;
  /** Number of voxels labelled 1. */
  readonly labelVoxels: number;
  readonly anomaly: AnomalyParams | null;
  /** For fpi: where the foreign patch came from. */
  readonly foreign: { readonly source: string; readonly variantSeed: number } | null;
}

export interface ToySetManifest {
  readonly format: 'moodlsr-toyset/1';
  readonly seed: number;
  readonly seedSalt: typeof EVAL_SALT;
  readonly size: number;
  readonly normal: number;
  readonly perKind: number;
  readonly kinds: readonly AnomalyKind[];
  readonly sources: readonly string[];
  readonly cases: readonly ToyCaseRecord[];
}

export const TOY_DIRS = Object.freeze({ image: 'toy', pixel: join('toy_label', 'pixel'), sample: join('toy_label', 'sample') });

export function toyCaseName(index: number): string {
  return `toy_${index}.nii.gz`;
}

export interface CaseSlot {
  readonly kind: CaseKind;
  readonly slot: number;
}

/** Which slot gets which name: normal slots, then per kind, shuffled by the set seed. */
export function planCases(normal: number, perKind: number, kinds: readonly AnomalyKind[], seed: number): CaseSlot[] {
  for (const [what, n] of [['normal', normal], ['perKind', perKind]] as const) {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`${what} must be a non-negative integer, got ${n}`);
  }
  for (const kind of kinds) if (!ANOMALY_KINDS.includes(kind)) throw new RangeError(`unknown anomaly kind '${kind}' (known: ${ANOMALY_KINDS.join(', ')})`);
  if (new Set(kinds).size !== kinds.length) throw new RangeError(`anomaly kinds repeat: ${kinds.join(', ')}`);
  const slots: CaseSlot[] = [];
  for (let k = 0; k < normal; k++) slots.push({ kind: 'normal', slot: k });
  for (const kind of kinds) for (let k = 0; k < perKind; k++) slots.push({ kind, slot: k });
  return shuffled(slots, createRng(deriveSeed(EVAL_SALT, seed, 'order')));
}

export interface GeneratedCase {
  readonly volume: Volume;
  readonly label: Uint8Array;
  readonly record: ToyCaseRecord;
}

/**
 * One case in memory (no files), its normal volume (and an fpi case's foreign one) from `sources`.
 */
export function generateCase(
  name: string,
  slot: CaseSlot,
  sources: readonly NormalSource[],
  opts: Pick<ToySetOptions, 'size' | 'seed'>,
): GeneratedCase {
  const caseSeed = deriveSeed(EVAL_SALT, opts.seed, slot.kind, slot.slot);
  const rng = createRng(caseSeed);
  const sourceIndex = rng.int(sources.length);
  const variantSeed = rng.seed();
  const normal = sources[sourceIndex].make(variantSeed, opts.size);
  const base = { name, kind: slot.kind, slot: slot.slot, seed: caseSeed, source: sources[sourceIndex].name, variant: normal.params };
  if (slot.kind === 'normal') {
    const record: ToyCaseRecord = { ...base, centre: null, radius: null, labelVoxels: 0, anomaly: null, foreign: null };
    return { volume: normal.volume, label: new Uint8Array(normal.body.length), record };
  }
  const params = sampleAnomalyParams(slot.kind, normal.volume.shape, normal.body, rng);
  let foreign: Volume | undefined;
  let foreignRecord: ToyCaseRecord['foreign'] = null;
  if (params.kind === 'fpi') {
    const foreignIndex = rng.int(sources.length);
    // A variant of the same head with the same seed would be the case itself; step the seed in that (unlikely) event.
    const foreignSeed = foreignIndex === sourceIndex && params.foreignSeed === variantSeed ? (variantSeed + 1) >>> 0 : params.foreignSeed;
    foreign = sources[foreignIndex].make(foreignSeed, opts.size).volume;
    foreignRecord = { source: sources[foreignIndex].name, variantSeed: foreignSeed };
  }
  const { volume, label } = applyAnomaly(normal.volume, normal.body, params, foreign);
  let labelVoxels = 0;
  for (let i = 0; i < label.length; i++) labelVoxels += label[i];
  const record: ToyCaseRecord = {
    ...base,
    centre: params.centre,
    radius: params.radius,
    labelVoxels,
    anomaly: params,
    foreign: foreignRecord,
  };
  return { volume, label, record };
}

/** Removes toy_<i> files left by an earlier, larger build, so the folder holds exactly this set. */
async function removeStaleCases(outDir: string, total: number): Promise<void> {
  const pattern = /^toy_(\d+)\.nii\.gz(\.txt)?$/;
  for (const dir of Object.values(TOY_DIRS)) {
    const path = join(outDir, dir);
    const names = await readdir(path).catch(() => [] as string[]);
    for (const entry of names) {
      const match = pattern.exec(entry);
      if (match && Number(match[1]) >= total) await rm(join(path, entry), { force: true });
    }
  }
}

export async function buildToySet(opts: ToySetOptions): Promise<ToySetManifest> {
  const kinds = opts.kinds ?? ANOMALY_KINDS;
  const slots = planCases(opts.normal, opts.perKind, kinds, opts.seed);
  const log = opts.log ?? (() => undefined);

  const sources: NormalSource[] = [...(opts.normalSources ?? [])];
  if (sources.length === 0) {
    for (const path of opts.sources ?? []) {
      const { volume } = await readNifti(path);
      sources.push(headVariantSource(path, volume, { variation: opts.variation, fill: opts.fill }));
    }
  }
  if (sources.length === 0) throw new RangeError('buildToySet needs at least one source of normal cases');

  for (const dir of Object.values(TOY_DIRS)) await mkdir(join(opts.outDir, dir), { recursive: true });
  await removeStaleCases(opts.outDir, slots.length);

  const records: ToyCaseRecord[] = [];
  for (let i = 0; i < slots.length; i++) {
    const name = toyCaseName(i);
    const { volume, label, record } = generateCase(name, slots[i], sources, opts);
    await writeNifti(join(opts.outDir, TOY_DIRS.image, name), volume, { dtype: 'float32' });
    const labelVolume = makeVolume(volume.shape, Float32Array.from(label), volume.spacing, volume.affine);
    await writeNifti(join(opts.outDir, TOY_DIRS.pixel, name), labelVolume, { dtype: 'uint8' });
    await atomicWriteFile(join(opts.outDir, TOY_DIRS.sample, `${name}.txt`), record.kind === 'normal' ? '0' : '1');
    records.push(record);
    log(`${i + 1}/${slots.length} ${name}: ${record.kind}${record.radius === null ? '' : ` r=${record.radius.toFixed(1)} label=${record.labelVoxels}`}`);
  }

  const manifest: ToySetManifest = {
    format: 'moodlsr-toyset/1',
    seed: opts.seed,
    seedSalt: EVAL_SALT,
    size: opts.size,
    normal: opts.normal,
    perKind: opts.perKind,
    kinds: [...kinds],
    sources: sources.map((src) => src.name),
    cases: records,
  };
  await atomicWriteFile(join(opts.outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
