// 2-D max and average pooling on the GPU: see kernels/pool2d.h.
//
// Forward: one thread per output. Backward: one thread per input position, which gathers from the few
// outputs whose windows cover it (at most ⌈kernel/stride⌉² of them). Gathering instead of scattering from
// the outputs needs no atomic additions where windows overlap, so the result does not depend on the order
// threads run in: the same inputs give the same gradient, bit for bit, run after run.
#include "kernels/cuda/launch.cuh"
#include "kernels/pool2d.h"

namespace dscope::kernels::cuda {
namespace {

__device__ bool replaces(float value, float best) {
  return value > best || (isnan(value) && !isnan(best));
}

__global__ void max_pool2d_forward_kernel(Pool2dGeometry g, const float* x, float* y, std::int64_t* argmax) {
  DSCOPE_GRID_STRIDE_LOOP(at, g.N * g.C * g.P * g.Q) {
    const std::int64_t q = at % g.Q, p = (at / g.Q) % g.P, plane = at / (g.P * g.Q);
    const PoolWindow rows = pool_window(p, g.stride_h, g.pad_h, g.kernel_h, g.H);
    const PoolWindow cols = pool_window(q, g.stride_w, g.pad_w, g.kernel_w, g.W);
    const float* in = x + plane * g.H * g.W;
    float best = -INFINITY;
    std::int64_t best_index = rows.begin * g.W + cols.begin;
    for (std::int64_t h = rows.begin; h < rows.end; ++h)
      for (std::int64_t w = cols.begin; w < cols.end; ++w)
        if (replaces(in[h * g.W + w], best)) {
          best = in[h * g.W + w];
          best_index = h * g.W + w;
        }
    y[at] = best;
    if (argmax != nullptr) argmax[at] = best_index;
  }
}

// The outputs along one axis whose windows cover input position `i`: [first, last].
struct Covering {
  std::int64_t first, last;
};
__device__ Covering covering(std::int64_t i, std::int64_t stride, std::int64_t pad, std::int64_t kernel,
                             std::int64_t outputs) {
  // Output o covers i when o·stride − pad ≤ i < o·stride − pad + kernel.
  const std::int64_t low = i + pad - kernel + 1;
  std::int64_t first = low <= 0 ? 0 : (low + stride - 1) / stride;
  std::int64_t last = (i + pad) / stride;
  if (last > outputs - 1) last = outputs - 1;
  return {first, last};
}

__global__ void max_pool2d_backward_kernel(Pool2dGeometry g, const float* grad_y, const std::int64_t* argmax,
                                           float* grad_x) {
  DSCOPE_GRID_STRIDE_LOOP(at, g.N * g.C * g.H * g.W) {
    const std::int64_t w = at % g.W, h = (at / g.W) % g.H, plane = at / (g.H * g.W);
    const Covering rows = covering(h, g.stride_h, g.pad_h, g.kernel_h, g.P);
    const Covering cols = covering(w, g.stride_w, g.pad_w, g.kernel_w, g.Q);
    const std::int64_t index = h * g.W + w;
    float total = 0.0f;
    for (std::int64_t p = rows.first; p <= rows.last; ++p)
      for (std::int64_t q = cols.first; q <= cols.last; ++q) {
        const std::int64_t out = (plane * g.P + p) * g.Q + q;
        if (argmax[out] == index) total += grad_y[out];
      }
    grad_x[at] = total;
  }
}

__global__ void avg_pool2d_forward_kernel(Pool2dGeometry g, const float* x, float* y) {
  const float divisor = static_cast<float>(g.kernel_h * g.kernel_w);
  DSCOPE_GRID_STRIDE_LOOP(at, g.N * g.C * g.P * g.Q) {
    const std::int64_t q = at % g.Q, p = (at / g.Q) % g.P, plane = at / (g.P * g.Q);
    const PoolWindow rows = pool_window(p, g.stride_h, g.pad_h, g.kernel_h, g.H);
    const PoolWindow cols = pool_window(q, g.stride_w, g.pad_w, g.kernel_w, g.W);
    const float* in = x + plane * g.H * g.W;
    float total = 0.0f;
    for (std::int64_t h = rows.begin; h < rows.end; ++h)
      for (std::int64_t w = cols.begin; w < cols.end; ++w)
        total += in[h * g.W + w];
    y[at] = total / divisor;
  }
}

__global__ void avg_pool2d_backward_kernel(Pool2dGeometry g, const float* grad_y, float* grad_x) {
  const float divisor = static_cast<float>(g.kernel_h * g.kernel_w);
  DSCOPE_GRID_STRIDE_LOOP(at, g.N * g.C * g.H * g.W) {
    const std::int64_t w = at % g.W, h = (at / g.W) % g.H, plane = at / (g.H * g.W);
    const Covering rows = covering(h, g.stride_h, g.pad_h, g.kernel_h, g.P);
    const Covering cols = covering(w, g.stride_w, g.pad_w, g.kernel_w, g.Q);
    float total = 0.0f;
    for (std::int64_t p = rows.first; p <= rows.last; ++p)
      for (std::int64_t q = cols.first; q <= cols.last; ++q)
        total += grad_y[(plane * g.P + p) * g.Q + q] / divisor;
    grad_x[at] = total;
  }
}

}  // namespace

void max_pool2d_forward(const Pool2dGeometry& g, const float* x, float* y, std::int64_t* argmax) {
  const std::int64_t n = g.N * g.C * g.P * g.Q;
  if (n == 0) return;
  max_pool2d_forward_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(g, x, y, argmax);
  check_launch("max_pool2d_forward");
}

void max_pool2d_backward(const Pool2dGeometry& g, const float* grad_y, const std::int64_t* argmax,
                         float* grad_x) {
  const std::int64_t n = g.N * g.C * g.H * g.W;
  if (n == 0) return;
  max_pool2d_backward_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(g, grad_y, argmax,
                                                                                       grad_x);
  check_launch("max_pool2d_backward");
}

void avg_pool2d_forward(const Pool2dGeometry& g, const float* x, float* y) {
  const std::int64_t n = g.N * g.C * g.P * g.Q;
  if (n == 0) return;
  avg_pool2d_forward_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(g, x, y);
  check_launch("avg_pool2d_forward");
}

void avg_pool2d_backward(const Pool2dGeometry& g, const float* grad_y, float* grad_x) {
  const std::int64_t n = g.N * g.C * g.H * g.W;
  if (n == 0) return;
  avg_pool2d_backward_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(g, grad_y, grad_x);
  check_launch("avg_pool2d_backward");
}

}  // namespace dscope::kernels::cuda
