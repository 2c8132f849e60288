#!/bin/sh
# The main job, end to end on this machine: real MRI data → a seeded MOOD-format toy set with every
# anomaly kind → the shipped methods through the MOOD entry scripts → MOOD-exact evaluation → report.
# Usage: npm run demo   (after npm ci). Output under data/demo/ (git-ignored).
set -eu
cd "$(dirname "$0")/.."
[ -f dist/src/cli.js ] || npm run build
sh scripts/fetch-data.sh
out=data/demo
size=${MOODLSR_DEMO_SIZE:-256}
seed=${MOODLSR_DEMO_SEED:-2026}
node dist/src/cli.js inject --src data/mricron/ch2bet.nii.gz --out "$out/brain-set" \
  --normal 2 --per-kind 1 --size "$size" --seed "$seed"
set -- --method zscore
if [ -f weights/brain/vqvae.json ] && [ -f weights/brain/pixelsnail.json ]; then set -- "$@" --method lsr; fi
node dist/src/cli.js leaderboard --set "$out/brain-set" "$@" --region brain --out "$out/brain-report" \
  --bootstrap 200 --overlays 8 --seed "$seed"
echo
echo "report: $(pwd)/$out/brain-report/report.html"
