#!/bin/sh
# Fills .gpu/ for scripts/gpu/run-baselines.sh: the node binary, the batch producer bundle, the brain template,
# LSGS's VQ-VAE (frozen) and transformer, and the VAE, each exported with its training graph (export-net.ts),
# starting from the folders given (default: the shipped brain weights).
#   npx tsc -p tsconfig.json && sh scripts/gpu/prepare-baselines.sh [LSGS_DIR [VAE_DIR]]
set -eu
cd "$(dirname "$0")/../.."
lsgs=${1:-weights/brain/lsgs}
vae=${2:-weights/brain/vae}
mkdir -p .gpu
[ -s .gpu/node.xz ] || xz -T2 -6 -c "$(command -v node)" > .gpu/node.xz
npx esbuild scripts/gpu/lsr-batches.ts --bundle --platform=node --format=esm --target=node20 --outfile=.gpu/lsr-batches.mjs --log-level=warning
cp data/mricron/ch2bet.nii.gz .gpu/ch2bet.nii.gz
rm -rf .gpu/lsgs-vq .gpu/lsgs-tr .gpu/vae
node dist/scripts/gpu/export-net.js --kind vqvae --weights "$lsgs" --out .gpu/lsgs-vq --region brain
node dist/scripts/gpu/export-net.js --kind transformer --weights "$lsgs" --out .gpu/lsgs-tr
node dist/scripts/gpu/export-net.js --kind vae --weights "$vae" --out .gpu/vae --region brain
du -sh .gpu
