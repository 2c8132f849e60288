#!/bin/sh
# Ship the best DISYRE weights of a training run: the float16 pack of RUN/disyre.{json,bin} with the run's
# training record, its normal residual reference built from REFERENCE (other normals: not trained on, not
# HELDOUT) and the sample calibration on HELDOUT with the shipped scoring, into weights/REGION/disyre.
#   npx tsc -p tsconfig.json && sh scripts/ship-disyre.sh RUN [REGION] [HELDOUT] [REFERENCE] [--set key=value …]
# Arguments after REFERENCE go to `calibrate disyre` (the scoring stored as the shipped default, e.g. --set map=mean).
# Defaults: REGION brain, HELDOUT data/pop-REGION-holdout, REFERENCE data/REGION-reference-normals
# (brain: 40 volumes of data/pop-brain80, see docs/quality.md; abdom: `phantom --count 12 --seed 3`).
# Review `git diff weights/` before committing.
set -eu
cd "$(dirname "$0")/.."
[ "$#" -ge 1 ] || { echo "usage: sh scripts/ship-disyre.sh RUN [REGION] [HELDOUT]" >&2; exit 64; }
run=$1
region=${2:-brain}
heldout=${3:-data/pop-$region-holdout}
reference=${4:-data/$region-reference-normals}
[ "$#" -ge 4 ] && shift 4 || shift "$#"
[ -d "$reference" ] || { echo "ship-disyre: the reference normals folder $reference is missing" >&2; exit 1; }
out=weights/$region/disyre
for f in disyre.json disyre.bin training.json; do
    [ -f "$run/$f" ] || { echo "ship-disyre: $run/$f is missing" >&2; exit 1; }
done
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$run/disyre.json" "$run/disyre.bin" "$stage/"
cp "$run/training.json" "$stage/disyre.training.json"
rm -rf "$out.new"
node dist/src/cli.js weights pack --from "$stage" --to "$out.new" --dtype float16
node dist/src/cli.js calibrate disyre --weights "$out.new" --data "$heldout" --reference-data "$reference" --region "$region" "$@"
rm -rf "$out"
mv "$out.new" "$out"
node dist/src/cli.js weights checksum --dir weights --recursive --check
echo "shipped $out"
