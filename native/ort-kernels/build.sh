#!/bin/sh
# Builds ort_kernels.node (this project's ONNX Runtime binding and custom operators) with the machine's
# C++ compiler and Node's own headers; no download. Run by scripts/setup.sh; safe to run again.
set -eu
cd "$(dirname "$0")"
headers="$(node -p "require('path').join(require('path').dirname(require('path').dirname(process.execPath)), 'include', 'node')")"
[ -f "$headers/node_api.h" ] || { echo "ort-kernels: no node_api.h under $headers" >&2; exit 1; }
mkdir -p build
${CXX:-g++} -std=c++17 -O3 -fPIC -shared -fvisibility=hidden -Wall -Wextra -Wno-unused-parameter -Wno-maybe-uninitialized \
  -I"$headers" src/addon.cc src/runtime.cc src/custom-ops.cc src/conv-weight-grad.cc src/elu-exp.cc src/plane-ops.cc -o build/ort_kernels.node.tmp -ldl
mv build/ort_kernels.node.tmp build/ort_kernels.node
echo "ort-kernels: built $(pwd)/build/ort_kernels.node"
