// The weight gradient of a stride-1, ungrouped 2-D convolution, summed over the batch:
//   dW[o][i][ky][kx] = Σ_n Σ_y Σ_x dy[n][o][y][x] · xpad[n][i][y + ky][x + kx],
// xpad being x with `top`/`left`/`bottom`/`right` zero rows and columns around it.
#pragma once
#include <cstdint>
#include <vector>

struct ConvWeightGradGeometry {
  int64_t batch, inChannels, outChannels;
  int64_t height, width;          // x's plane
  int64_t outHeight, outWidth;    // dy's plane
  int64_t kernelHeight, kernelWidth;
  int64_t top, left, bottom, right;
};

/** Whether the geometry is consistent: dy's plane is the stride-1 output of x's padded plane. */
bool convWeightGradValid(const ConvWeightGradGeometry& g);

/** True where the vectorised kernel runs (AVX-512F); elsewhere a scalar loop computes the same sums. */
bool convWeightGradVectorised();

/**
 * dw [outChannels·inChannels·kh·kw] = the sums above; `scratch` holds one sample's padded input.
 * `vectorised` false takes the scalar loop (where AVX-512F is missing, and in the tests).
 */
void convWeightGrad(const float* x, const float* dy, float* dw, const ConvWeightGradGeometry& g, std::vector<float>& scratch,
                    bool vectorised = convWeightGradVectorised());
