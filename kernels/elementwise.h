// Elementwise arithmetic with NumPy broadcasting, and the scalar and unary maps built on the same loops.
//
// Broadcasting is expressed as strides: an input dimension of extent 1 that is broadcast has stride 0, so
// one loop nest serves every combination. Outputs are always dense row-major.
#pragma once

#include <cstdint>

#include "kernels/bfloat16.h"
#include "kernels/copy.h"

namespace dscope::kernels {

// Output extents plus the strides (in elements, 0 where broadcast) of the two inputs.
struct BroadcastGeometry {
  int rank = 0;
  std::int64_t shape[kMaxRank] = {};
  std::int64_t a_strides[kMaxRank] = {};
  std::int64_t b_strides[kMaxRank] = {};
};

namespace cpu {
// y[numel(shape)] = a ∘ b elementwise, a and b read through their broadcast strides.
void add(const BroadcastGeometry& geometry, const float* a, const float* b, float* y);
void sub(const BroadcastGeometry& geometry, const float* a, const float* b, float* y);
void mul(const BroadcastGeometry& geometry, const float* a, const float* b, float* y);
void div(const BroadcastGeometry& geometry, const float* a, const float* b, float* y);

// Dense maps over n elements; y may equal x (in place).
void add_scalar(std::int64_t n, const float* x, float scalar, float* y);  // y = x + scalar
void mul_scalar(std::int64_t n, const float* x, float scalar, float* y);  // y = x * scalar
void neg(std::int64_t n, const float* x, float* y);                       // y = -x
void exp(std::int64_t n, const float* x, float* y);                       // y = e^x
void log(std::int64_t n, const float* x, float* y);                       // y = ln x
// y += alpha * x over n elements: gradient accumulation and optimizer steps.
void axpy(std::int64_t n, float alpha, const float* x, float* y);
// The same on bfloat16 gradients (mixed precision): added in float, each sum rounded once.
void axpy(std::int64_t n, float alpha, const BFloat16* x, BFloat16* y);
}  // namespace cpu

namespace cuda {
// Same contracts as kernels::cpu, on device pointers.
void add(const BroadcastGeometry& geometry, const float* a, const float* b, float* y);
void sub(const BroadcastGeometry& geometry, const float* a, const float* b, float* y);
void mul(const BroadcastGeometry& geometry, const float* a, const float* b, float* y);
void div(const BroadcastGeometry& geometry, const float* a, const float* b, float* y);
void add_scalar(std::int64_t n, const float* x, float scalar, float* y);
void mul_scalar(std::int64_t n, const float* x, float scalar, float* y);
void neg(std::int64_t n, const float* x, float* y);
void exp(std::int64_t n, const float* x, float* y);
void log(std::int64_t n, const float* x, float* y);
void axpy(std::int64_t n, float alpha, const float* x, float* y);
void axpy(std::int64_t n, float alpha, const BFloat16* x, BFloat16* y);
}  // namespace cuda

}  // namespace dscope::kernels
