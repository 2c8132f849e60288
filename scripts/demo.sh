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
# The MOOD entry scripts, exactly as the organisers call them (sh run_X.sh IN OUT), with the shipped weights.
node dist/src/cli.js leaderboard --set "$out/brain-set" --region brain --out "$out/brain-report" \
  --command "zscore=MOODLSR_METHOD=zscore sh scripts/run_{task}_brain.sh" \
  --bootstrap 200 --overlays 8 --seed "$seed"
echo
echo "report: $(pwd)/$out/brain-report/report.html"
