// This project's custom operators (domain com.moodlsr), each a kernel of ./*.cc behind ONNX Runtime's
// custom-operator interface:
//   ConvWeightGrad (x, dy; kernel_shape, pads) → dW   stride-1 convolution weight gradient, summed over the batch
//   EluExp (x) → [max(x, e − 1), e = exp(min(x, 0))]   ELU and the exponential its backward reuses
//   PlaneSums (dy, x) → [Σ dy, Σ dy·x] per plane        GroupNorm backward's two sums
//   PlaneCombine (dy, x, a, b, c) → a·dy − b·x + c     GroupNorm backward's dx, per plane
#pragma once
#include <string>

#include "ort-slots.h"

/** Adds every operator to `domain`; returns ONNX Runtime's error message, empty on success. */
std::string addCustomOps(const ort::Api& api, ort::CustomOpDomain* domain);
