#!/bin/sh
# One-time setup on a fresh Debian/Ubuntu machine: system packages the tests use, npm dependencies
# (which also compiles the TypeScript), and the real MRI data (Debian's mricron-data).
#   python3-sklearn, python3-nibabel: independent reference implementations the tests compare against
#   python3-torch, python3-onnx: PyTorch's autograd as an independent check of the project's training
#     graphs and gradients (scripts/gpu/onnx_torch.py, the GPU trainer's interpreter, run on CPU in the tests)
#   chromium: the headless browser that checks the HTML report
# and this project's ONNX Runtime binding with its custom training kernels (native/ort-kernels), built with
# the machine's g++ against Node's own headers; without a compiler training falls back to standard operators.
set -eu
cd "$(dirname "$0")/.."
need=""
/usr/bin/python3 -c 'import sklearn, nibabel' >/dev/null 2>&1 || need="$need python3-sklearn python3-nibabel"
/usr/bin/python3 -c 'import torch, onnx' >/dev/null 2>&1 || need="$need python3-torch python3-onnx"
[ -x /usr/bin/chromium ] || need="$need chromium"
if [ -n "$need" ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "setup: need Debian packages:$need (run as root or install them yourself)" >&2; exit 1
  fi
  echo "setup: installing Debian packages:$need"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
npm ci --no-audit --no-fund
if command -v "${CXX:-g++}" >/dev/null 2>&1; then sh native/ort-kernels/build.sh; else echo "setup: no C++ compiler, native/ort-kernels not built (training uses standard ONNX operators)"; fi
sh scripts/fetch-data.sh
