#!/bin/sh
# The README's brain results: every shipped method with its shipped defaults, as a new user runs it, on
# a FRESH set that was never used to choose anything (inject seed 1402; the development set is 1401).
#   npx tsc -p tsconfig.json && sh scripts/readme-results.sh [OUT]    (≈ 20–40 min on 2 cores)
set -eu
cd "$(dirname "$0")/.."
out=${1:-data/board-fresh}
set_dir=data/fresh-brain
[ -f "$set_dir/manifest.json" ] || node dist/src/cli.js inject --src data/mricron/ch2bet.nii.gz --out "$set_dir" --normal 12 --per-kind 2 --size 256 --seed 1402
node dist/src/cli.js leaderboard --set "$set_dir" --method zscore --method lsr --method lsgs --method vae-rec \
  --engine onnx --out "$out" --bootstrap 1000 --seed 1402 --overlays 6
node dist/src/cli.js leaderboard --set "$set_dir" --tasks sample --method vae-elbo --engine onnx --out "$out-vae-elbo" --bootstrap 1000 --seed 1402 --overlays 0
node dist/src/cli.js leaderboard --set "$set_dir" --method disyre --engine onnx --out "$out-disyre" --bootstrap 1000 --seed 1402 --overlays 0
