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
# The abdomen: the SYNTHETIC CT-like phantom at MOOD's 512³ (the shipped abdominal weights are fitted at 512³).
node dist/src/cli.js inject --region abdom --out "$out/abdom-set" \
  --normal "${MOODLSR_DEMO_ABDOM_NORMAL:-2}" --per-kind 1 --seed "$seed"
# The four MOOD entry scripts, exactly as the organisers call them (sh run_X.sh IN OUT), with the shipped weights.
# zscore (the training-free floor) beside the shipped default (weights/REGION/default-method: disyre for both).
for region in brain abdom; do
  set -- --command "zscore=MOODLSR_METHOD=zscore sh scripts/run_{task}_$region.sh" --command "default=sh scripts/run_{task}_$region.sh"
  node dist/src/cli.js leaderboard --set "$out/$region-set" --region "$region" --out "$out/$region-report" \
    "$@" --bootstrap 200 --overlays 8 --seed "$seed"
done
echo
echo "brain report:   $(pwd)/$out/brain-report/report.html"
echo "abdomen report: $(pwd)/$out/abdom-report/report.html (synthetic phantom, not real CT)"
