// Conversions between float32 and bfloat16 arrays (kernels/bfloat16.h says how a value rounds): the cast
// between an activation stored in bfloat16 and the float the arithmetic runs in.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/bfloat16.h"

namespace dscope::kernels {

namespace cpu {
// y[i] = x[i] rounded to bfloat16 (to nearest, ties to even), for i < n.
void float_to_bfloat16(std::int64_t n, const float* x, BFloat16* y);
// y[i] = x[i] widened to float (exact), for i < n.
void bfloat16_to_float(std::int64_t n, const BFloat16* x, float* y);
// x[0, n) widened into a new float buffer, empty for a null x: how the CPU's bfloat16 kernel overloads
// (conv2d, batch_norm2d) hand bfloat16 activations to their float kernels.
std::vector<float> widened(const BFloat16* x, std::int64_t n);
}  // namespace cpu

namespace cuda {
// Same contracts, on device pointers.
void float_to_bfloat16(std::int64_t n, const float* x, BFloat16* y);
void bfloat16_to_float(std::int64_t n, const BFloat16* x, float* y);
}  // namespace cuda

}  // namespace dscope::kernels
