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
// Rows are taken kBandRows at a time for every block before the next band, so a band's dy and x rows
// stay in L1 across the blocks (13–23 % faster than whole planes per block at 64² and 128²); the
// blocks' accumulators wait in `partial` between bands.
constexpr int kOutBlock = 4;
constexpr int kTapBlock = 6;
constexpr int64_t kBandRows = 16;

struct Blocks {
  int64_t outBlocks, tapBlocks, taps;
};

Blocks blocksOf(const ConvWeightGradGeometry& g) {
  const int64_t taps = g.inChannels * g.kernelHeight * g.kernelWidth;
  return {(g.outChannels + kOutBlock - 1) / kOutBlock, (taps + kTapBlock - 1) / kTapBlock, taps};
}

/** Adds one sample's sums into `partial` (kLanes floats per output channel × tap of each block). */
__attribute__((target("avx512f"))) void sampleAvx512(const float* pad, const float* dy, float* partial, const ConvWeightGradGeometry& g,
                                                      const Padded& p, const Blocks& b) {
  const int64_t plane = g.outHeight * g.outWidth;
  const int64_t vectors = g.outWidth / kLanes;
  const int64_t tail = g.outWidth % kLanes;
  const __mmask16 tailMask = static_cast<__mmask16>((1u << tail) - 1u);
  for (int64_t y0 = 0; y0 < g.outHeight; y0 += kBandRows) {
    const int64_t y1 = std::min(g.outHeight, y0 + kBandRows);
    for (int64_t ob = 0; ob < b.outBlocks; ob++) {
      const float* dyPlane[kOutBlock];
      for (int i = 0; i < kOutBlock; i++) dyPlane[i] = dy + std::min<int64_t>(ob * kOutBlock + i, g.outChannels - 1) * plane;
      for (int64_t tb = 0; tb < b.tapBlocks; tb++) {
        const float* tapOrigin[kTapBlock];
        for (int j = 0; j < kTapBlock; j++) {
          const int64_t t = std::min<int64_t>(tb * kTapBlock + j, b.taps - 1);
          const int64_t c = t / (g.kernelHeight * g.kernelWidth), ky = (t / g.kernelWidth) % g.kernelHeight, kx = t % g.kernelWidth;
          tapOrigin[j] = pad + (c * p.rows + ky) * p.stride + kx;
        }
        float* saved = partial + (ob * b.tapBlocks + tb) * kOutBlock * kTapBlock * kLanes;
        __m512 acc[kOutBlock][kTapBlock];
        for (int i = 0; i < kOutBlock; i++)
          for (int j = 0; j < kTapBlock; j++) acc[i][j] = _mm512_loadu_ps(saved + (i * kTapBlock + j) * kLanes);
        for (int64_t y = y0; y < y1; y++) {
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
        for (int i = 0; i < kOutBlock; i++)
          for (int j = 0; j < kTapBlock; j++) _mm512_storeu_ps(saved + (i * kTapBlock + j) * kLanes, acc[i][j]);
      }
    }
  }
}

/** dw from the blocks' accumulators: each output channel × tap is the sum of its kLanes partial sums. */
__attribute__((target("avx512f"))) void reduceBlocks(const float* partial, float* dw, const ConvWeightGradGeometry& g, const Blocks& b) {
  for (int64_t ob = 0; ob < b.outBlocks; ob++)
    for (int64_t tb = 0; tb < b.tapBlocks; tb++)
      for (int i = 0; i < kOutBlock; i++)
        for (int j = 0; j < kTapBlock; j++) {
          const int64_t o = ob * kOutBlock + i, t = tb * kTapBlock + j;
          if (o < g.outChannels && t < b.taps)
            dw[o * b.taps + t] = _mm512_reduce_add_ps(_mm512_loadu_ps(partial + ((ob * b.tapBlocks + tb) * kOutBlock * kTapBlock + i * kTapBlock + j) * kLanes));
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
  const Blocks b = blocksOf(g);
  std::vector<float> partial(vectorised ? static_cast<size_t>(b.outBlocks * b.tapBlocks * kOutBlock * kTapBlock * kLanes) : 0, 0.f);
  for (int64_t n = 0; n < g.batch; n++) {
    padSample(x + n * g.inChannels * g.height * g.width, g, p, scratch);
    const float* dyN = dy + n * g.outChannels * g.outHeight * g.outWidth;
    if (vectorised)
      sampleAvx512(scratch.data(), dyN, partial.data(), g, p, b);
    else
      sampleScalar(scratch.data(), dyN, dw, g, p);
  }
  if (vectorised) reduceBlocks(partial.data(), dw, g, b);
}
