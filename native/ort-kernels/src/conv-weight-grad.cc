#include "conv-weight-grad.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

bool convWeightGradValid(const ConvWeightGradGeometry& g) {
  return g.batch > 0 && g.inChannels > 0 && g.outChannels > 0 && g.kernelHeight > 0 && g.kernelWidth > 0 && g.top >= 0 &&
         g.left >= 0 && g.bottom >= 0 && g.right >= 0 && g.outHeight == g.height + g.top + g.bottom - g.kernelHeight + 1 &&
         g.outWidth == g.width + g.left + g.right - g.kernelWidth + 1 && g.outHeight > 0 && g.outWidth > 0;
}

bool convWeightGradVectorised() { return __builtin_cpu_supports("avx512f"); }

namespace {

// Lanes of one vector; the padded rows carry this many spare zeros so a vector load that starts inside
// a row never leaves the buffer.
constexpr int64_t kLanes = 16;

struct Padded {
  int64_t rows, stride;  // rows of the padded plane; floats per padded row
};

Padded paddedLayout(const ConvWeightGradGeometry& g) {
  return {g.height + g.top + g.bottom, g.width + g.left + g.right + kLanes};
}

/** One sample's input, zero-padded, into `scratch` [inChannels][rows][stride]. */
void padSample(const float* x, const ConvWeightGradGeometry& g, const Padded& p, std::vector<float>& scratch) {
  scratch.assign(static_cast<size_t>(g.inChannels * p.rows * p.stride), 0.f);
  for (int64_t c = 0; c < g.inChannels; c++)
    for (int64_t r = 0; r < g.height; r++)
      std::memcpy(&scratch[static_cast<size_t>((c * p.rows + r + g.top) * p.stride + g.left)], x + (c * g.height + r) * g.width,
                  static_cast<size_t>(g.width) * sizeof(float));
}

// Register blocks: kOutBlock output channels × kTapBlock (input channel, ky, kx) taps, 24 accumulators.
constexpr int kOutBlock = 4;
constexpr int kTapBlock = 6;

__attribute__((target("avx512f"))) void sampleAvx512(const float* pad, const float* dy, float* dw, const ConvWeightGradGeometry& g,
                                                      const Padded& p) {
  const int64_t taps = g.inChannels * g.kernelHeight * g.kernelWidth;
  const int64_t plane = g.outHeight * g.outWidth;
  const int64_t vectors = g.outWidth / kLanes;
  const int64_t tail = g.outWidth % kLanes;
  const __mmask16 tailMask = static_cast<__mmask16>((1u << tail) - 1u);
  for (int64_t o0 = 0; o0 < g.outChannels; o0 += kOutBlock) {
    const int64_t outs = std::min<int64_t>(kOutBlock, g.outChannels - o0);
    const float* dyPlane[kOutBlock];
    for (int i = 0; i < kOutBlock; i++) dyPlane[i] = dy + (o0 + std::min<int64_t>(i, outs - 1)) * plane;
    for (int64_t t0 = 0; t0 < taps; t0 += kTapBlock) {
      const int64_t count = std::min<int64_t>(kTapBlock, taps - t0);
      const float* tapOrigin[kTapBlock];
      for (int j = 0; j < kTapBlock; j++) {
        const int64_t t = t0 + std::min<int64_t>(j, count - 1);
        const int64_t c = t / (g.kernelHeight * g.kernelWidth), ky = (t / g.kernelWidth) % g.kernelHeight, kx = t % g.kernelWidth;
        tapOrigin[j] = pad + (c * p.rows + ky) * p.stride + kx;
      }
      __m512 acc[kOutBlock][kTapBlock];
      for (auto& row : acc)
        for (auto& a : row) a = _mm512_setzero_ps();
      for (int64_t y = 0; y < g.outHeight; y++) {
        const float* d[kOutBlock];
        const float* xs[kTapBlock];
        for (int i = 0; i < kOutBlock; i++) d[i] = dyPlane[i] + y * g.outWidth;
        for (int j = 0; j < kTapBlock; j++) xs[j] = tapOrigin[j] + y * p.stride;
        for (int64_t v = 0; v < vectors; v++) {
          __m512 dv[kOutBlock];
          for (int i = 0; i < kOutBlock; i++) dv[i] = _mm512_loadu_ps(d[i] + v * kLanes);
          for (int j = 0; j < kTapBlock; j++) {
            const __m512 xv = _mm512_loadu_ps(xs[j] + v * kLanes);
            for (int i = 0; i < kOutBlock; i++) acc[i][j] = _mm512_fmadd_ps(dv[i], xv, acc[i][j]);
          }
        }
        if (tail != 0) {
          __m512 dv[kOutBlock];
          for (int i = 0; i < kOutBlock; i++) dv[i] = _mm512_maskz_loadu_ps(tailMask, d[i] + vectors * kLanes);
          for (int j = 0; j < kTapBlock; j++) {
            const __m512 xv = _mm512_maskz_loadu_ps(tailMask, xs[j] + vectors * kLanes);
            for (int i = 0; i < kOutBlock; i++) acc[i][j] = _mm512_fmadd_ps(dv[i], xv, acc[i][j]);
          }
        }
      }
      for (int64_t i = 0; i < outs; i++)
        for (int64_t j = 0; j < count; j++) dw[(o0 + i) * taps + t0 + j] += _mm512_reduce_add_ps(acc[i][j]);
    }
  }
}

void sampleScalar(const float* pad, const float* dy, float* dw, const ConvWeightGradGeometry& g, const Padded& p) {
  const int64_t taps = g.inChannels * g.kernelHeight * g.kernelWidth;
  for (int64_t o = 0; o < g.outChannels; o++)
    for (int64_t t = 0; t < taps; t++) {
      const int64_t c = t / (g.kernelHeight * g.kernelWidth), ky = (t / g.kernelWidth) % g.kernelHeight, kx = t % g.kernelWidth;
      double sum = 0;
      for (int64_t y = 0; y < g.outHeight; y++) {
        const float* d = dy + (o * g.outHeight + y) * g.outWidth;
        const float* xs = pad + (c * p.rows + y + ky) * p.stride + kx;
        for (int64_t x = 0; x < g.outWidth; x++) sum += static_cast<double>(d[x]) * xs[x];
      }
      dw[o * taps + t] += static_cast<float>(sum);
    }
}

}  // namespace

void convWeightGrad(const float* x, const float* dy, float* dw, const ConvWeightGradGeometry& g, std::vector<float>& scratch,
                    bool vectorised) {
  const Padded p = paddedLayout(g);
  vectorised = vectorised && convWeightGradVectorised();
  std::fill(dw, dw + g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth, 0.f);
  for (int64_t n = 0; n < g.batch; n++) {
    padSample(x + n * g.inChannels * g.height * g.width, g, p, scratch);
    const float* dyN = dy + n * g.outChannels * g.outHeight * g.outWidth;
    if (vectorised)
      sampleAvx512(scratch.data(), dyN, dw, g, p);
    else
      sampleScalar(scratch.data(), dyN, dw, g, p);
  }
}
