#include "plane-ops.h"

#include <immintrin.h>

bool planeOpsVectorised() { return __builtin_cpu_supports("avx512f"); }

namespace {

__attribute__((target("avx512f"))) void planeSumsAvx512(const float* dy, const float* x, float* s0, float* s1, int64_t planes, int64_t size) {
  const int64_t tail = size % 16;
  const __mmask16 m = static_cast<__mmask16>((1u << tail) - 1u);
  for (int64_t p = 0; p < planes; p++) {
    const float* d = dy + p * size;
    const float* v = x + p * size;
    // Two accumulators each, so consecutive FMAs do not wait on one another.
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= size; i += 32) {
      const __m512 d0 = _mm512_loadu_ps(d + i), d1 = _mm512_loadu_ps(d + i + 16);
      a0 = _mm512_add_ps(a0, d0);
      a1 = _mm512_add_ps(a1, d1);
      b0 = _mm512_fmadd_ps(d0, _mm512_loadu_ps(v + i), b0);
      b1 = _mm512_fmadd_ps(d1, _mm512_loadu_ps(v + i + 16), b1);
    }
    for (; i + 16 <= size; i += 16) {
      const __m512 d0 = _mm512_loadu_ps(d + i);
      a0 = _mm512_add_ps(a0, d0);
      b0 = _mm512_fmadd_ps(d0, _mm512_loadu_ps(v + i), b0);
    }
    if (tail != 0) {
      const __m512 d0 = _mm512_maskz_loadu_ps(m, d + i);
      a1 = _mm512_add_ps(a1, d0);
      b1 = _mm512_fmadd_ps(d0, _mm512_maskz_loadu_ps(m, v + i), b1);
    }
    s0[p] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    s1[p] = _mm512_reduce_add_ps(_mm512_add_ps(b0, b1));
  }
}

__attribute__((target("avx512f"))) void planeCombineAvx512(const float* dy, const float* x, const float* a, const float* b, const float* c, float* out,
                                                            int64_t planes, int64_t size) {
  const int64_t tail = size % 16;
  const __mmask16 m = static_cast<__mmask16>((1u << tail) - 1u);
  for (int64_t p = 0; p < planes; p++) {
    const float* d = dy + p * size;
    const float* v = x + p * size;
    float* o = out + p * size;
    const __m512 va = _mm512_set1_ps(a[p]), vb = _mm512_set1_ps(b[p]), vc = _mm512_set1_ps(c[p]);
    int64_t i = 0;
    for (; i + 16 <= size; i += 16)
      _mm512_storeu_ps(o + i, _mm512_fnmadd_ps(vb, _mm512_loadu_ps(v + i), _mm512_fmadd_ps(va, _mm512_loadu_ps(d + i), vc)));
    if (tail != 0)
      _mm512_mask_storeu_ps(o + i, m, _mm512_fnmadd_ps(vb, _mm512_maskz_loadu_ps(m, v + i), _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, d + i), vc)));
  }
}

}  // namespace

void planeSums(const float* dy, const float* x, float* s0, float* s1, int64_t planes, int64_t size, bool vectorised) {
  if (vectorised && planeOpsVectorised()) {
    planeSumsAvx512(dy, x, s0, s1, planes, size);
    return;
  }
  for (int64_t p = 0; p < planes; p++) {
    double a = 0, b = 0;
    for (int64_t i = 0; i < size; i++) {
      a += dy[p * size + i];
      b += static_cast<double>(dy[p * size + i]) * x[p * size + i];
    }
    s0[p] = static_cast<float>(a);
    s1[p] = static_cast<float>(b);
  }
}

void planeCombine(const float* dy, const float* x, const float* a, const float* b, const float* c, float* out, int64_t planes, int64_t size,
                  bool vectorised) {
  if (vectorised && planeOpsVectorised()) {
    planeCombineAvx512(dy, x, a, b, c, out, planes, size);
    return;
  }
  for (int64_t p = 0; p < planes; p++)
    for (int64_t i = 0; i < size; i++) out[p * size + i] = a[p] * dy[p * size + i] - b[p] * x[p * size + i] + c[p];
}
