#!/bin/sh
# Fills .gpu/ (git-ignored, carried to the device machine) for scripts/gpu/run-lsr.sh: this machine's node
# binary (xz), the batch producer bundled with esbuild, the brain template, the VQ-VAE of VQ_INIT (default:
# weights/brain/training/i15-vqvae) and a fresh PixelSNAIL of the shipped config, each exported with its
# training graph (export-net.ts).
#   npx tsc -p tsconfig.json && sh scripts/gpu/prepare-lsr.sh [VQ_INIT [PRIOR_SEED]]
set -eu
cd "$(dirname "$0")/../.."
vq=${1:-weights/brain/training/i15-vqvae}
seed=${2:-gpu-prior-1}
mkdir -p .gpu
[ -s .gpu/node.xz ] || xz -T2 -6 -c "$(command -v node)" > .gpu/node.xz
npx esbuild scripts/gpu/lsr-batches.ts --bundle --platform=node --format=esm --target=node20 --outfile=.gpu/lsr-batches.mjs --log-level=warning
cp data/mricron/ch2bet.nii.gz .gpu/ch2bet.nii.gz
rm -rf .gpu/lsr-vq .gpu/lsr-prior
node dist/scripts/gpu/export-net.js --kind vqvae --weights "$vq" --out .gpu/lsr-vq --region brain
node dist/scripts/gpu/export-net.js --kind pixelsnail --weights weights/brain/lsr --out .gpu/lsr-prior --fresh "$seed"
du -sh .gpu
