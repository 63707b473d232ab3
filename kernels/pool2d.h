// 2-D max and average pooling over NCHW tensors, forward and backward.
//
// Output (p, q) reads the window of kernel_h × kernel_w input positions starting at (p·stride_h − pad_h,
// q·stride_w − pad_w). Positions outside the input are padding: −inf for max, 0 for average. The op layer
// guarantees pad ≤ kernel/2 and P, Q ≥ 1 (PyTorch's rules with ceil_mode off), which keeps every window
// inside the padded input and gives it at least one real position. So the average divides by
// kernel_h·kernel_w everywhere (count_include_pad), and every max window has a real argmax.
// Max pooling saves, per output, the index h·W + w of its maximum within the input plane: the first maximum
// in row-major window order, or the first NaN (NaN propagates, as in PyTorch, so a diverging run shows it).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/host_device.h"

namespace dscope::kernels {

struct Pool2dGeometry {
  std::int64_t N = 0, C = 0, H = 0, W = 0, P = 0, Q = 0;
  std::int64_t kernel_h = 1, kernel_w = 1;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_h = 0, pad_w = 0;
};

// The real input rows [begin, end) of the window of output row p (columns: the same with w, q).
struct PoolWindow {
  std::int64_t begin, end;
};
DSCOPE_HOST_DEVICE inline PoolWindow pool_window(std::int64_t output, std::int64_t stride, std::int64_t pad,
                                                 std::int64_t kernel, std::int64_t extent) {
  const std::int64_t start = output * stride - pad;
  return {start < 0 ? 0 : start, start + kernel < extent ? start + kernel : extent};
}

// Whether `value` replaces `best` as a window's maximum: strictly greater (so the first maximum wins), or
// the first NaN.
template <typename T>
bool replaces_maximum(T value, T best) {
  return value > best || (std::isnan(value) && !std::isnan(best));
}

namespace reference {
// x [N,C,H,W]; y, argmax [N,C,P,Q]; writes y and argmax (index h·W + w within the plane).
template <typename T>
void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, std::int64_t* argmax) {
  for (std::int64_t plane = 0; plane < g.N * g.C; ++plane)
    for (std::int64_t p = 0; p < g.P; ++p)
      for (std::int64_t q = 0; q < g.Q; ++q) {
        const PoolWindow rows = pool_window(p, g.stride_h, g.pad_h, g.kernel_h, g.H);
        const PoolWindow cols = pool_window(q, g.stride_w, g.pad_w, g.kernel_w, g.W);
        T best = -std::numeric_limits<T>::infinity();
        std::int64_t best_index = rows.begin * g.W + cols.begin;
        for (std::int64_t h = rows.begin; h < rows.end; ++h)
          for (std::int64_t w = cols.begin; w < cols.end; ++w) {
            const T value = x[plane * g.H * g.W + h * g.W + w];
            if (replaces_maximum(value, best)) {
              best = value;
              best_index = h * g.W + w;
            }
          }
        y[(plane * g.P + p) * g.Q + q] = best;
        argmax[(plane * g.P + p) * g.Q + q] = best_index;
      }
}

// grad_y, argmax [N,C,P,Q]; grad_x [N,C,H,W]; writes grad_x: each output's gradient goes to its argmax, and
// positions that are the maximum of several overlapping windows (stride < kernel) receive the sum.
template <typename T>
void max_pool2d_backward(const Pool2dGeometry& g, const T* grad_y, const std::int64_t* argmax, T* grad_x) {
  for (std::int64_t i = 0; i < g.N * g.C * g.H * g.W; ++i)
    grad_x[i] = 0;
  for (std::int64_t plane = 0; plane < g.N * g.C; ++plane)
    for (std::int64_t pq = 0; pq < g.P * g.Q; ++pq)
      grad_x[plane * g.H * g.W + argmax[plane * g.P * g.Q + pq]] += grad_y[plane * g.P * g.Q + pq];
}

// x [N,C,H,W]; y [N,C,P,Q]; writes y = the window's sum / (kernel_h · kernel_w), padding counting as 0.
template <typename T>
void avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y) {
  const T divisor = static_cast<T>(g.kernel_h * g.kernel_w);
  for (std::int64_t plane = 0; plane < g.N * g.C; ++plane)
    for (std::int64_t p = 0; p < g.P; ++p)
      for (std::int64_t q = 0; q < g.Q; ++q) {
        const PoolWindow rows = pool_window(p, g.stride_h, g.pad_h, g.kernel_h, g.H);
        const PoolWindow cols = pool_window(q, g.stride_w, g.pad_w, g.kernel_w, g.W);
        T total = 0;
        for (std::int64_t h = rows.begin; h < rows.end; ++h)
          for (std::int64_t w = cols.begin; w < cols.end; ++w)
            total += x[plane * g.H * g.W + h * g.W + w];
        y[(plane * g.P + p) * g.Q + q] = total / divisor;
      }
}

// grad_y [N,C,P,Q]; grad_x [N,C,H,W]; writes grad_x: each position receives grad_y / (kernel_h · kernel_w)
// from every window that covers it.
template <typename T>
void avg_pool2d_backward(const Pool2dGeometry& g, const T* grad_y, T* grad_x) {
  const T divisor = static_cast<T>(g.kernel_h * g.kernel_w);
  for (std::int64_t i = 0; i < g.N * g.C * g.H * g.W; ++i)
    grad_x[i] = 0;
  for (std::int64_t plane = 0; plane < g.N * g.C; ++plane)
    for (std::int64_t p = 0; p < g.P; ++p)
      for (std::int64_t q = 0; q < g.Q; ++q) {
        const PoolWindow rows = pool_window(p, g.stride_h, g.pad_h, g.kernel_h, g.H);
        const PoolWindow cols = pool_window(q, g.stride_w, g.pad_w, g.kernel_w, g.W);
        const T share = grad_y[(plane * g.P + p) * g.Q + q] / divisor;
        for (std::int64_t h = rows.begin; h < rows.end; ++h)
          for (std::int64_t w = cols.begin; w < cols.end; ++w)
            grad_x[plane * g.H * g.W + h * g.W + w] += share;
      }
}
}  // namespace reference

namespace cpu {
// Same contracts as the reference, parallel over the N·C planes. argmax may be null in max_pool2d_forward
// (inference, where no backward will read it).
void max_pool2d_forward(const Pool2dGeometry& g, const float* x, float* y, std::int64_t* argmax);
void max_pool2d_backward(const Pool2dGeometry& g, const float* grad_y, const std::int64_t* argmax,
                         float* grad_x);
void avg_pool2d_forward(const Pool2dGeometry& g, const float* x, float* y);
void avg_pool2d_backward(const Pool2dGeometry& g, const float* grad_y, float* grad_x);
}  // namespace cpu

namespace cuda {
// Same contracts, on device pointers; argmax may be null in max_pool2d_forward.
void max_pool2d_forward(const Pool2dGeometry& g, const float* x, float* y, std::int64_t* argmax);
void max_pool2d_backward(const Pool2dGeometry& g, const float* grad_y, const std::int64_t* argmax,
                         float* grad_x);
void avg_pool2d_forward(const Pool2dGeometry& g, const float* x, float* y);
void avg_pool2d_backward(const Pool2dGeometry& g, const float* grad_y, float* grad_x);
}  // namespace cuda

}  // namespace dscope::kernels
