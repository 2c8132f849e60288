/**
 * Diagnostic: does the prior see the anomaly at all? For every anomalous case of a toy-format set, the
 * code NLLs (LSR or any engine with `codeNlls`) of the codes whose patch lies mostly inside the sphere,
 * against (a) every other foreground code of the same case and (b) the same stack positions in the
 * held-out normals. Prints one row per case and a summary per kind:
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/lsr-anomaly-codes.js --set data/dev-brain --weights weights/brain/lsr \
 *     --held-out data/pop-brain-holdout [--every 8] [--inside 0.5]
 *
 * - `rank`: mean percentile of the anomalous codes' NLL among the case's foreground codes (0.5 = no signal);
 * - `Δref`: mean NLL of the anomalous codes minus the held-out mean at the same positions (nats);
 * - `>λs`: share of anomalous codes above the calibration's λs, against the share of the other foreground codes;
 * - `dist rank`: as `rank`, for the encoder's quantisation distance ‖z − e‖² instead of the NLL.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readNifti, isNiftiFileName } from '../src/io/nifti.js';
import { loadLsrModel } from '../src/methods/lsr/model.js';
import { encodeVolumeWithDistances } from '../src/score/sample-score.js';
import { latentGeometry } from '../src/methods/lsr/networks.js';
import { foregroundCodes, selected } from '../src/score/sample-aggregates.js';
import { caseGroupsOf } from '../eval/harness/evaluate.js';
import { TOY_DIRS, type ToySetManifest } from '../eval/inject/toyset.js';
import type { Volume } from '../src/volume/volume.js';

function option(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]!;
  if (fallback === undefined) throw new Error(`--${name} is required`);
  return fallback;
}

/**
 * Share of each code cell's patch inside the label, on the stack grid [count, side, side]: slice zs[i]
 * of the label volume, cut into side × side equal blocks (the model slice is the whole axial plane
 * resized, so a code covers nx/side × ny/side voxels).
 */
export function labelShareOfCodes(label: Volume, zs: readonly number[], side: number): Float32Array {
  const [nx, ny] = label.shape;
  const out = new Float32Array(zs.length * side * side);
  for (const [i, z] of zs.entries()) {
    for (let cy = 0; cy < side; cy++)
      for (let cx = 0; cx < side; cx++) {
        const x0 = Math.floor((cx * nx) / side);
        const x1 = Math.floor(((cx + 1) * nx) / side);
        const y0 = Math.floor((cy * ny) / side);
        const y1 = Math.floor(((cy + 1) * ny) / side);
        let inside = 0;
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (label.data[x + nx * (y + ny * z)]! > 0.5) inside++;
        out[(i * side + cy) * side + cx] = inside / ((x1 - x0) * (y1 - y0));
      }
  }
  return out;
}

/** Share of `sorted` (ascending) strictly below v: its percentile among them. */
function rankIn(sorted: Float32Array, v: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo / sorted.length;
}

async function main(): Promise<void> {
  const setDir = option('set');
  const every = Number(option('every', '8'));
  const insideShare = Number(option('inside', '0.5'));
  const model = await loadLsrModel(option('weights', 'weights/brain/lsr'), { engine: 'onnx' });
  const { engine, calibration: cal } = model;
  const { width: side } = latentGeometry(engine.nets.prior);
  const nllOf = async (volume: Volume) => {
    const encoded = await encodeVolumeWithDistances(engine, volume, 'brain', { every });
    const nll = await engine.codeNlls(encoded.codes, encoded.stack.positions);
    const fg = foregroundCodes(encoded.stack.data, encoded.stack.count, encoded.stack.width, side, 0);
    return { nll, fg, zs: encoded.stack.zs, distances: encoded.distances };
  };

  const heldDir = option('held-out', 'data/pop-brain-holdout');
  let refSum: Float64Array | undefined;
  const heldFiles = (await readdir(heldDir)).filter(isNiftiFileName).sort();
  for (const f of heldFiles) {
    const { nll } = await nllOf((await readNifti(join(heldDir, f))).volume);
    refSum ??= new Float64Array(nll.length);
    nll.forEach((v, i) => (refSum![i] += v));
  }
  const refMean = Float64Array.from(refSum!, (s) => s / heldFiles.length);

  const manifest = JSON.parse(await readFile(join(setDir, 'manifest.json'), 'utf8')) as ToySetManifest;
  const groups = caseGroupsOf(manifest);
  const names = (await readdir(join(setDir, TOY_DIRS.image))).filter(isNiftiFileName).sort();
  const perKind = new Map<string, { rank: number[]; delta: number[]; above: number[]; aboveOther: number[]; distanceRank: number[] }>();
  console.log(['case', 'kind', 'size', 'codes', 'rank', 'Δref', '>λs', '>λs other', 'dist rank'].join('\t'));
  for (const name of names) {
    const group = groups.get(name) ?? { kind: 'unknown' };
    if (group.kind === 'normal') continue;
    const { volume } = await readNifti(join(setDir, TOY_DIRS.image, name));
    const { volume: label } = await readNifti(join(setDir, TOY_DIRS.pixel, name));
    const { nll, fg, zs, distances } = await nllOf(volume);
    const share = labelShareOfCodes(label, zs, side);
    const fgValues = selected(nll, fg).sort();
    const fgDistances = selected(distances, fg).sort();
    const rankOf = (v: number): number => rankIn(fgValues, v);
    let n = 0;
    let distanceRank = 0;
    let rank = 0;
    let delta = 0;
    let above = 0;
    let other = 0;
    let otherAbove = 0;
    for (let i = 0; i < nll.length; i++) {
      if (share[i]! >= insideShare) {
        n++;
        rank += rankOf(nll[i]!);
        distanceRank += rankIn(fgDistances, distances[i]!);
        delta += nll[i]! - refMean[i]!;
        if (nll[i]! > cal.lambdaS) above++;
      } else if (fg[i] === 1 && share[i] === 0) {
        other++;
        if (nll[i]! > cal.lambdaS) otherAbove++;
      }
    }
    const row = { rank: n ? rank / n : NaN, delta: n ? delta / n : NaN, above: n ? above / n : NaN, aboveOther: otherAbove / Math.max(1, other), distanceRank: n ? distanceRank / n : NaN };
    console.log([name, group.kind, group.size ?? '', n, row.rank.toFixed(3), row.delta.toFixed(2), row.above.toFixed(3), row.aboveOther.toFixed(3), row.distanceRank.toFixed(3)].join('\t'));
    if (n === 0) continue;
    const k = perKind.get(group.kind) ?? perKind.set(group.kind, { rank: [], delta: [], above: [], aboveOther: [], distanceRank: [] }).get(group.kind)!;
    k.rank.push(row.rank);
    k.delta.push(row.delta);
    k.above.push(row.above);
    k.aboveOther.push(row.aboveOther);
    k.distanceRank.push(row.distanceRank);
  }
  const mean = (xs: number[]): string => (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(3);
  console.log(`\nper kind (λs ${cal.lambdaS.toFixed(2)} nats; codes with ≥ ${insideShare} of their patch inside the sphere)`);
  console.log(['kind', 'cases', 'rank', 'Δref', '>λs', '>λs other', 'dist rank'].join('\t'));
  for (const [kind, k] of [...perKind].sort()) console.log([kind, k.rank.length, mean(k.rank), mean(k.delta), mean(k.above), mean(k.aboveOther), mean(k.distanceRank)].join('\t'));
  await engine.dispose();
}

main().catch((err) => {
  process.stderr.write(`lsr-anomaly-codes: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
