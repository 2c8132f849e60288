#!/bin/bash
# Issue 15 VQ-VAE long run (resumable: rerun this script; it passes --resume). Code: branch train @ 9ac72ab, copied to .run-train.
cd /work/wt-train
exec node .run-train/src/cli.js train vqvae --region brain --data data/pop-brain80 --engine onnx \
  --init weights/brain/training/vqvae --lr 3e-4 --warmup 100 --decay cosine --epochs 60 --steps-per-epoch 60 \
  --seed 15 --out data/runs-i15/vqvae --resume
