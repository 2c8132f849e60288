# Recipe A/B on a fresh PixelSNAIL prior over lsr-vq5's codes (CPU torch, one thread per arm, 600 steps × 32 maps)
# Needs .gpu/lsr6-vq (export-net --kind vqvae of weights/brain/training/lsr-vq5), .gpu/recipe-prior-d0.1 and -d0 (docs/training.md, session 18) and .gpu/lsr-batches.mjs.
# usage: sh scripts/recipe-ab.sh ARM   (ARM: paper | cosine | nodrop | batch128)
set -eu
cd "$(dirname "$0")/.."
arm=$1
common="--vq-export .gpu/lsr6-vq --batches-js .gpu/lsr-batches.mjs --src .gpu/ch2bet.nii.gz --work /tmp/recipe-$arm --out data/runs-recipe/$arm \
  --volumes 24 --holdout-volumes 4 --vq-minutes 0 --prior-minutes 40 --total-minutes 42 --producers 1 --eval-every 100 --seed recipe-ab --threads 1 --device cpu"
case $arm in
  paper)    args="--prior-export .gpu/recipe-prior-d0.1 --prior-batch 32 --max-steps 600 --prior-lr 1e-4 --warmup 0 --final-ratio 1" ;;
  cosine)   args="--prior-export .gpu/recipe-prior-d0.1 --prior-batch 32 --max-steps 600 --prior-lr 1e-3 --warmup 60 --final-ratio 0.02" ;;
  nodrop)   args="--prior-export .gpu/recipe-prior-d0 --prior-batch 32 --max-steps 600 --prior-lr 1e-3 --warmup 60 --final-ratio 0.02" ;;
  batch128) args="--prior-export .gpu/recipe-prior-d0.1 --prior-batch 128 --max-steps 150 --prior-lr 1e-3 --warmup 15 --final-ratio 0.02 --eval-every 25" ;;
  *) echo "recipe-ab: unknown arm $arm (paper, cosine, nodrop, batch128)" >&2; exit 64 ;;
esac
PATH=/usr/bin:$PATH PYTHONUNBUFFERED=1 exec nice -n 5 python3 scripts/gpu/train_lsr.py $common $args
