#!/bin/sh
# Fills .gpu/ (git-ignored, carried to the device machine) for scripts/gpu/run-disyre.sh: this machine's
# node binary (xz), the batch producer bundled with esbuild, the brain template, and the exported
# training graph + start weights of INIT (default: the shipped brain DISYRE) into .gpu/NAME (default disyre).
#   npx tsc -p tsconfig.json && sh scripts/gpu/prepare.sh [INIT [NAME]]
set -eu
cd "$(dirname "$0")/../.."
init=${1:-weights/brain/disyre}
name=${2:-disyre}
mkdir -p .gpu
[ -s .gpu/node.xz ] || xz -T2 -6 -c "$(command -v node)" > .gpu/node.xz
npx esbuild scripts/gpu/disyre-batches.ts --bundle --platform=node --format=esm --target=node20 --outfile=.gpu/batches.mjs --log-level=warning
cp data/mricron/ch2bet.nii.gz .gpu/ch2bet.nii.gz
node dist/scripts/gpu/export-disyre.js export --init "$init" --out ".gpu/$name"
du -sh .gpu
