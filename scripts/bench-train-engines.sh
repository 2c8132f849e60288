#!/usr/bin/env bash
# Training throughput, ONNX Runtime vs TF.js wasm vs PyTorch CPU, side by side: each round runs, for
# each network, one `moodlsr bench train --json` line per ONNX Runtime setting (one session on 2
# threads, one on 1 thread, two 1-thread sessions in two worker threads on halves of the batch) and
# TF.js wasm (2 workers), and PyTorch CPU 2 threads (scripts/bench_train_torch.py, both networks)
# where torch is installed, so every engine sees the same machine load within a round.
#   npx tsc -p tsconfig.json && bash scripts/bench-train-engines.sh [ROUNDS] [STEPS] > bench.jsonl
# ENGINES (default "onnx tfjs torch") picks the engines, e.g. ENGINES="onnx torch".
set -euo pipefail
rounds=${1:-2}
steps=${2:-4}
engines=${ENGINES:-onnx tfjs torch}
cli="node dist/src/cli.js"
has() { [[ " $engines " == *" $1 "* ]]; }
run_onnx() {
  $cli bench train --net "$1" --engine onnx --sessions 1 --threads 2 --steps "$steps" --json 2>/dev/null | tail -1
  $cli bench train --net "$1" --engine onnx --sessions 1 --threads 1 --steps "$steps" --json 2>/dev/null | tail -1
  $cli bench train --net "$1" --engine onnx --sessions 2 --steps "$steps" --json 2>/dev/null | tail -1
}
run_tfjs() { $cli bench train --net "$1" --engine tfjs --workers 2 --steps "$steps" --json 2>/dev/null | tail -1; }
run_torch() {
  # the interpreter scripts/bench-train.ts runs (Debian's python3-torch lives there)
  if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    node dist/scripts/bench-train.js --quick --torch-only --steps "$steps"
  else
    echo '{"engine":"pytorch","error":"python3 cannot import torch on this machine"}'
  fi
}
# Odd rounds run ONNX Runtime, TF.js, then PyTorch; even rounds the reverse: whichever engine runs
# first in a pair measured ~5 % faster here (session 21: 30 alternating ONNX/PyTorch pairs, medians
# 1.08× with ONNX first, 0.97× with PyTorch first), so alternating cancels the order.
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2 == 0)) && has torch; then run_torch; fi
  for net in vqvae prior; do
    if ((r % 2)); then
      if has onnx; then run_onnx "$net"; fi
      if has tfjs; then run_tfjs "$net"; fi
    else
      if has tfjs; then run_tfjs "$net"; fi
      if has onnx; then run_onnx "$net"; fi
    fi
  done
  if ((r % 2)) && has torch; then run_torch; fi
done
