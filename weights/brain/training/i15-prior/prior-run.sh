#!/bin/bash
# Issue 15 prior long run (resumable: rerun this script; it passes --resume). Code: branch train, copied to .run-train-b.
# Frozen VQ-VAE: a copy of weights/brain/training/vqvae (epoch-20 best, the warm start of the VQ-VAE run), in data/runs-i15/prior-vqvae.
cd /work/wt-train
exec node .run-train-b/src/cli.js train prior --region brain --data data/pop-brain80 --vqvae data/runs-i15/prior-vqvae --engine onnx \
  --lr 3e-4 --warmup 100 --decay cosine --epochs 60 --steps-per-epoch 50 --aug-codes 0.5 \
  --stack-cache data/runs-i15/stack-cache --seed 15 --out data/runs-i15/prior --resume
