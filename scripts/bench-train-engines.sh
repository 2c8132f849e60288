#!/usr/bin/env bash
# Training throughput, ONNX Runtime vs TF.js wasm, side by side: for each network, the engines
# alternate ROUNDS times (so both see the same machine load), one `moodlsr bench train --json` line
# each (ONNX Runtime: one session on 2 threads, one on 1 thread, two 1-thread sessions in two worker threads on halves of the batch);
# then PyTorch CPU 2 threads (scripts/bench_train_torch.py) where torch is installed.
#   npx tsc -p tsconfig.json && bash scripts/bench-train-engines.sh [ROUNDS] [STEPS] > bench.jsonl
set -euo pipefail
rounds=${1:-2}
steps=${2:-4}
cli="node dist/src/cli.js"
for net in vqvae prior; do
  for ((r = 1; r <= rounds; r++)); do
    $cli bench train --net "$net" --engine onnx --sessions 1 --threads 2 --steps "$steps" --json 2>/dev/null | tail -1
    $cli bench train --net "$net" --engine onnx --sessions 1 --threads 1 --steps "$steps" --json 2>/dev/null | tail -1
    $cli bench train --net "$net" --engine onnx --sessions 2 --steps "$steps" --json 2>/dev/null | tail -1
    $cli bench train --net "$net" --engine tfjs --workers 2 --steps "$steps" --json 2>/dev/null | tail -1
  done
done
# the same interpreter scripts/bench-train.ts runs (Debian's python3-torch lives there)
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  node dist/scripts/bench-train.js --quick --steps "$steps" >&2
else
  echo '{"engine":"pytorch","error":"python3 cannot import torch on this machine"}'
fi
