// Pointwise activations, forward and backward. Backward kernels take what the forward saved (the output),
// because both derivatives are cheap functions of it: relu' = (y > 0), sigmoid' = y (1 - y).
#pragma once

#include <cstdint>

#include "kernels/bfloat16.h"

namespace dscope::kernels {

namespace cpu {

void relu_forward(std::int64_t n, const float* x, float* y);                                // y = max(x, 0)
void relu_backward(std::int64_t n, const float* grad_y, const float* y, float* grad_x);     // writes grad_x
void sigmoid_forward(std::int64_t n, const float* x, float* y);                             // y = 1/(1+e^-x)
void sigmoid_backward(std::int64_t n, const float* grad_y, const float* y, float* grad_x);  // writes grad_x
// y = max(a + b, 0): a residual block's join in one pass. Its backward is relu_backward.
void add_relu_forward(std::int64_t n, const float* a, const float* b, float* y);
// The ReLUs on bfloat16 activations (mixed precision): the same arithmetic in float, rounded as stored.
void relu_forward(std::int64_t n, const BFloat16* x, BFloat16* y);
void relu_backward(std::int64_t n, const BFloat16* grad_y, const BFloat16* y, BFloat16* grad_x);
void add_relu_forward(std::int64_t n, const BFloat16* a, const BFloat16* b, BFloat16* y);

}  // namespace cpu

namespace cuda {
// Same contracts, on device pointers.
void relu_forward(std::int64_t n, const float* x, float* y);
void relu_backward(std::int64_t n, const float* grad_y, const float* y, float* grad_x);
void sigmoid_forward(std::int64_t n, const float* x, float* y);
void sigmoid_backward(std::int64_t n, const float* grad_y, const float* y, float* grad_x);
void add_relu_forward(std::int64_t n, const float* a, const float* b, float* y);
void relu_forward(std::int64_t n, const BFloat16* x, BFloat16* y);
void relu_backward(std::int64_t n, const BFloat16* grad_y, const BFloat16* y, BFloat16* grad_x);
void add_relu_forward(std::int64_t n, const BFloat16* a, const BFloat16* b, BFloat16* y);
}  // namespace cuda

}  // namespace dscope::kernels
