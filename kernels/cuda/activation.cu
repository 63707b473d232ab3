// Pointwise activations on the GPU: see kernels/activation.h.
#include "kernels/activation.h"
#include "kernels/cuda/launch.cuh"

namespace dscope::kernels::cuda {
namespace {

__global__ void relu_forward_kernel(std::int64_t n, const float* x, float* y) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  }
}
__global__ void relu_backward_kernel(std::int64_t n, const float* grad_y, const float* y, float* grad_x) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    grad_x[i] = y[i] > 0.0f ? grad_y[i] : 0.0f;
  }
}
__global__ void add_relu_forward_kernel(std::int64_t n, const float* a, const float* b, float* y) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    const float sum = a[i] + b[i];
    y[i] = sum > 0.0f ? sum : 0.0f;
  }
}
__global__ void sigmoid_forward_kernel(std::int64_t n, const float* x, float* y) {
  // As on the CPU, exp never overflows: for x < 0 use e^x / (1 + e^x).
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    if (x[i] >= 0.0f) {
      y[i] = 1.0f / (1.0f + expf(-x[i]));
    } else {
      const float e = expf(x[i]);
      y[i] = e / (1.0f + e);
    }
  }
}
__global__ void sigmoid_backward_kernel(std::int64_t n, const float* grad_y, const float* y, float* grad_x) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    grad_x[i] = grad_y[i] * y[i] * (1.0f - y[i]);
  }
}

}  // namespace

void relu_forward(std::int64_t n, const float* x, float* y) {
  if (n == 0) return;
  relu_forward_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, x, y);
  check_launch("relu_forward");
}
void relu_backward(std::int64_t n, const float* grad_y, const float* y, float* grad_x) {
  if (n == 0) return;
  relu_backward_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, grad_y, y, grad_x);
  check_launch("relu_backward");
}
void add_relu_forward(std::int64_t n, const float* a, const float* b, float* y) {
  if (n == 0) return;
  add_relu_forward_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, a, b, y);
  check_launch("add_relu_forward");
}
void sigmoid_forward(std::int64_t n, const float* x, float* y) {
  if (n == 0) return;
  sigmoid_forward_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, x, y);
  check_launch("sigmoid_forward");
}
void sigmoid_backward(std::int64_t n, const float* grad_y, const float* y, float* grad_x) {
  if (n == 0) return;
  sigmoid_backward_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, grad_y, y, grad_x);
  check_launch("sigmoid_backward");
}

}  // namespace dscope::kernels::cuda
