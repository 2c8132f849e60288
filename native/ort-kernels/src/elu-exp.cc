#include "elu-exp.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

bool eluExpVectorised() { return __builtin_cpu_supports("avx512f"); }

namespace {

/**
 * exp(t) for t ≤ 0: t = n·ln 2 + r with |r| ≤ ln 2 / 2, exp(r) by its Taylor polynomial to r⁷ (relative
 * error below 3e-8 on that interval), times 2ⁿ by scalef. Below −87.3 the result is flushed to 0 (the
 * float32 exp underflows there too).
 */
__attribute__((target("avx512f"))) __m512 expNonPositive(__m512 t) {
  const __m512 lowest = _mm512_set1_ps(-87.3f);
  const __mmask16 underflow = _mm512_cmp_ps_mask(t, lowest, _CMP_LT_OQ);
  t = _mm512_max_ps(t, lowest);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), t);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.f / 5040.f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 720.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~underflow), _mm512_scalef_ps(p, n));
}

__attribute__((target("avx512f"))) void eluExpAvx512(const float* x, float* y, float* e, int64_t count) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512 one = _mm512_set1_ps(1.f);
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512 ex = expNonPositive(_mm512_min_ps(v, zero));
    _mm512_storeu_ps(e + i, ex);
    _mm512_storeu_ps(y + i, _mm512_max_ps(v, _mm512_sub_ps(ex, one)));
  }
  if (i < count) {
    const __mmask16 m = static_cast<__mmask16>((1u << (count - i)) - 1u);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    const __m512 ex = expNonPositive(_mm512_min_ps(v, zero));
    _mm512_mask_storeu_ps(e + i, m, ex);
    _mm512_mask_storeu_ps(y + i, m, _mm512_max_ps(v, _mm512_sub_ps(ex, one)));
  }
}

}  // namespace

void eluExp(const float* x, float* y, float* e, int64_t count, bool vectorised) {
  if (vectorised && eluExpVectorised()) {
    eluExpAvx512(x, y, e, count);
    return;
  }
  for (int64_t i = 0; i < count; i++) {
    const float ex = std::exp(std::min(x[i], 0.f));
    e[i] = ex;
    y[i] = std::max(x[i], ex - 1.f);
  }
}
