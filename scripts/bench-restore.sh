#!/bin/bash
# LSR vs LSGS (bidirectional, causal) restoration on one volume, alternating, 3 runs each, ONNX Runtime.
# Usage: bash scripts/bench-restore.sh [VOLUME] (default data/eval-brain20/toy/toy_0.nii.gz). Prints the
# per-stage log line of each run; docs/benchmarks.md ("LSR vs LSGS restoration") quotes the medians.
set -eu
cd "$(dirname "$0")/.."
volume=${1:-data/eval-brain20/toy/toy_0.nii.gz}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/in"
ln -s "$(realpath "$volume")" "$work/in/$(basename "$volume")"
for run in 1 2 3; do
  for entry in lsr:weights/brain/training/lsr lsgs:weights/brain/training/lsgs lsgs-causal:weights/brain/training/lsgs-causal; do
    name=${entry%%:*}
    echo "run $run $name, 1-min load $(cut -d' ' -f1 /proc/loadavg)"
    node dist/src/cli.js predict --task pixel --region brain -i "$work/in" -o "$work/out-$name-$run" \
      --method "${name%-causal}" --weights "${entry#*:}" --engine onnx 2>&1 | grep -E 'pixel \(|written \('
  done
done
