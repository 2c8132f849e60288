// Per-plane sums and combinations of two NCHW tensors, the full-size passes of GroupNorm's backward
// (src/onnx/autodiff/fuse-groupnorm.ts): one pass for both of its sums, one for dx.
#pragma once
#include <cstdint>

/** True where the vectorised loops run (AVX-512F). */
bool planeOpsVectorised();

/** Over `planes` planes of `size` floats: s0[p] = Σ dy, s1[p] = Σ dy·x. */
void planeSums(const float* dy, const float* x, float* s0, float* s1, int64_t planes, int64_t size, bool vectorised = planeOpsVectorised());

/** out = a[p]·dy − b[p]·x + c[p] over each plane p. */
void planeCombine(const float* dy, const float* x, const float* a, const float* b, const float* c, float* out, int64_t planes, int64_t size,
                  bool vectorised = planeOpsVectorised());
