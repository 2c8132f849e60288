#!/bin/sh
# The device machine's baseline job (scripts/gpu/prepare-baselines.sh made .gpu/ here first): LSGS's
# transformer on the codes of its frozen VQ-VAE for TRANSFORMER_MINUTES, then the VAE for VAE_MINUTES, with
# PRODUCERS batch processes each; results in $OUT/lsgs and $OUT/vae (best weights, records, logs).
#   sh scripts/gpu/run-baselines.sh TRANSFORMER_MINUTES VAE_MINUTES PRODUCERS
set -eu
tr=$1; vae=$2; producers=$3
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out/lsgs" "$out/vae" /tmp/nd
[ -x /tmp/nd/node ] || { xz -dc .gpu/node.xz > /tmp/nd/node && chmod +x /tmp/nd/node; }
common="--batches-js .gpu/lsr-batches.mjs --node /tmp/nd/node --src .gpu/ch2bet.nii.gz --producers $producers"
PYTHONUNBUFFERED=1 python3 scripts/gpu/train_lsr.py --vq-export .gpu/lsgs-vq --prior-export .gpu/lsgs-tr $common --work /tmp/pop-lsgs \
  --out "$out/lsgs" --vq-minutes 0 --prior-minutes "$tr" --seed lsgs-gpu0 2>&1 | tee "$out/lsgs/log.txt"
PYTHONUNBUFFERED=1 python3 scripts/gpu/train_vae.py --export .gpu/vae $common --work /tmp/pop-vae --out "$out/vae" --minutes "$vae" \
  --seed vae-gpu0 2>&1 | tee "$out/vae/log.txt"
