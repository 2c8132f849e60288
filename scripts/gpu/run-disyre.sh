#!/bin/sh
# The device machine's DISYRE training job (one call of the device tool; scripts/gpu/prepare.sh made
# .gpu/ here first). Unpacks the carried node binary, then trains on the GPU for MINUTES with
# PRODUCERS batch processes; everything it writes lands in $OUT (best.f32, last.f32, record.json, log).
#   sh scripts/gpu/run-disyre.sh MINUTES PRODUCERS [extra train_disyre.py args, e.g. --region abdom --volumes 28]
set -eu
minutes=$1; producers=$2; shift 2
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out" /tmp/nd
xz -dc .gpu/node.xz > /tmp/nd/node && chmod +x /tmp/nd/node
echo "node $(/tmp/nd/node --version); $(nproc) cores; $(python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
PYTHONUNBUFFERED=1 python3 scripts/gpu/train_disyre.py --export .gpu/disyre --batches-js .gpu/batches.mjs --node /tmp/nd/node \
  --src .gpu/ch2bet.nii.gz --work /tmp/disyre-pop --out "$out" --minutes "$minutes" --producers "$producers" "$@" 2>&1 | tee "$out/log.txt"
