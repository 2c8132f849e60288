#!/bin/sh
# The device machine's LSR training job (one call of the device tool; scripts/gpu/prepare-lsr.sh made
# .gpu/ here first): the VQ-VAE for VQ_MINUTES, then the PixelSNAIL prior on its codes for PRIOR_MINUTES,
# with PRODUCERS batch processes; everything lands in $OUT (vqvae-best.f32, pixelsnail-best.f32, records, log).
#   sh scripts/gpu/run-lsr.sh VQ_MINUTES PRIOR_MINUTES PRODUCERS [extra train_lsr.py args]
set -eu
vq=$1; prior=$2; producers=$3; shift 3
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out" /tmp/nd
[ -x /tmp/nd/node ] || { xz -dc .gpu/node.xz > /tmp/nd/node && chmod +x /tmp/nd/node; }
echo "node $(/tmp/nd/node --version); $(nproc) cores; $(python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")')"
PYTHONUNBUFFERED=1 python3 scripts/gpu/train_lsr.py --vq-export .gpu/lsr-vq --prior-export .gpu/lsr-prior --batches-js .gpu/lsr-batches.mjs \
  --node /tmp/nd/node --src .gpu/ch2bet.nii.gz --work /tmp/lsr-pop --out "$out" --vq-minutes "$vq" --prior-minutes "$prior" \
  --producers "$producers" "$@" 2>&1 | tee "$out/log.txt"
