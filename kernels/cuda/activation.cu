// Pointwise activations on the GPU: see kernels/activation.h.
#include "kernels/activation.h"
#include "kernels/cuda/launch.cuh"

namespace dscope::kernels::cuda {
namespace {

// The ReLUs serve float and bfloat16 activations with one body (kernels/bfloat16.h).
template <typename T>
__global__ void relu_forward_kernel(std::int64_t n, const T* x, T* y) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    const float value = as_float(x[i]);
    store_float(&y[i], value > 0.0f ? value : 0.0f);
  }
}
template <typename T>
__global__ void relu_backward_kernel(std::int64_t n, const T* grad_y, const T* y, T* grad_x) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    store_float(&grad_x[i], as_float(y[i]) > 0.0f ? as_float(grad_y[i]) : 0.0f);
  }
}
template <typename T>
__global__ void add_relu_forward_kernel(std::int64_t n, const T* a, const T* b, T* y) {
  DSCOPE_GRID_STRIDE_LOOP(i, n) {
    const float sum = as_float(a[i]) + as_float(b[i]);
    store_float(&y[i], sum > 0.0f ? sum : 0.0f);
  }
}

template <typename T>
void relu_forward_of(std::int64_t n, const T* x, T* y) {
  if (n == 0) return;
  relu_forward_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, x, y);
  check_launch("relu_forward");
}
template <typename T>
void relu_backward_of(std::int64_t n, const T* grad_y, const T* y, T* grad_x) {
  if (n == 0) return;
  relu_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, grad_y, y, grad_x);
  check_launch("relu_backward");
}
template <typename T>
void add_relu_forward_of(std::int64_t n, const T* a, const T* b, T* y) {
  if (n == 0) return;
  add_relu_forward_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(n, a, b, y);
  check_launch("add_relu_forward");
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
  relu_forward_of(n, x, y);
}
void relu_forward(std::int64_t n, const BFloat16* x, BFloat16* y) {
  relu_forward_of(n, x, y);
}
void relu_backward(std::int64_t n, const float* grad_y, const float* y, float* grad_x) {
  relu_backward_of(n, grad_y, y, grad_x);
}
void relu_backward(std::int64_t n, const BFloat16* grad_y, const BFloat16* y, BFloat16* grad_x) {
  relu_backward_of(n, grad_y, y, grad_x);
}
void add_relu_forward(std::int64_t n, const float* a, const float* b, float* y) {
  add_relu_forward_of(n, a, b, y);
}
void add_relu_forward(std::int64_t n, const BFloat16* a, const BFloat16* b, BFloat16* y) {
  add_relu_forward_of(n, a, b, y);
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
