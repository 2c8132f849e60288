#!/usr/bin/env bash
# Training throughput, ONNX Runtime vs TF.js wasm vs PyTorch CPU, side by side: each round runs, for
# each network, one `moodlsr bench train --json` line per ONNX Runtime setting (one session on 2
# threads, one on 1 thread, two 1-thread sessions in two worker threads on halves of the batch) and
# TF.js wasm (2 workers), then PyTorch CPU 2 threads (scripts/bench_train_torch.py, both networks)
# where torch is installed, so every engine sees the same machine load within a round.
#   npx tsc -p tsconfig.json && bash scripts/bench-train-engines.sh [ROUNDS] [STEPS] > bench.jsonl
# ENGINES (default "onnx tfjs torch") picks the engines, e.g. ENGINES="onnx torch".
set -euo pipefail
rounds=${1:-2}
steps=${2:-4}
engines=${ENGINES:-onnx tfjs torch}
cli="node dist/src/cli.js"
has() { [[ " $engines " == *" $1 "* ]]; }
for ((r = 1; r <= rounds; r++)); do
  for net in vqvae prior; do
    if has onnx; then
      $cli bench train --net "$net" --engine onnx --sessions 1 --threads 2 --steps "$steps" --json 2>/dev/null | tail -1
      $cli bench train --net "$net" --engine onnx --sessions 1 --threads 1 --steps "$steps" --json 2>/dev/null | tail -1
      $cli bench train --net "$net" --engine onnx --sessions 2 --steps "$steps" --json 2>/dev/null | tail -1
    fi
    if has tfjs; then $cli bench train --net "$net" --engine tfjs --workers 2 --steps "$steps" --json 2>/dev/null | tail -1; fi
  done
  if has torch; then
    # the interpreter scripts/bench-train.ts runs (Debian's python3-torch lives there)
    if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
      node dist/scripts/bench-train.js --quick --torch-only --steps "$steps"
    else
      echo '{"engine":"pytorch","error":"python3 cannot import torch on this machine"}'
    fi
  fi
done
