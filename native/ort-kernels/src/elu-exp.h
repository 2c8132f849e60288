// ELU and the exponential its derivative reuses, in one pass: y = max(x, e − 1), e = exp(min(x, 0)),
// the values of the four-operator ELU of src/onnx/graph.ts.
#pragma once
#include <cstdint>

/** True where the vectorised loop runs (AVX-512F). */
bool eluExpVectorised();

void eluExp(const float* x, float* y, float* e, int64_t count, bool vectorised = eluExpVectorised());
