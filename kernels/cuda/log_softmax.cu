// Log-softmax on the GPU: see kernels/log_softmax.h. One thread per line (an outer index and an inner
// position): neighbouring threads take neighbouring inner positions, so when inner > 1 every step along the
// axis is a coalesced read. Sums accumulate in double, as on the CPU.
#include "kernels/cuda/launch.cuh"
#include "kernels/log_softmax.h"

namespace dscope::kernels::cuda {
namespace {

__global__ void log_softmax_forward_kernel(ReduceGeometry g, const float* x, float* y) {
  DSCOPE_GRID_STRIDE_LOOP(line, g.outer * g.inner) {
    const std::int64_t o = line / g.inner, i = line % g.inner;
    const float* in = x + o * g.extent * g.inner + i;
    float* out = y + o * g.extent * g.inner + i;
    float maximum = -INFINITY;
    for (std::int64_t e = 0; e < g.extent; ++e)
      maximum = fmaxf(maximum, in[e * g.inner]);
    double total = 0.0;
    for (std::int64_t e = 0; e < g.extent; ++e)
      total += expf(in[e * g.inner] - maximum);
    const float log_total = static_cast<float>(::log(total));
    for (std::int64_t e = 0; e < g.extent; ++e)
      out[e * g.inner] = (in[e * g.inner] - maximum) - log_total;
  }
}

__global__ void log_softmax_backward_kernel(ReduceGeometry g, const float* grad_y, const float* y,
                                            float* grad_x) {
  DSCOPE_GRID_STRIDE_LOOP(line, g.outer * g.inner) {
    const std::int64_t first = (line / g.inner) * g.extent * g.inner + line % g.inner;
    double total = 0.0;
    for (std::int64_t e = 0; e < g.extent; ++e)
      total += grad_y[first + e * g.inner];
    const float sum = static_cast<float>(total);
    for (std::int64_t e = 0; e < g.extent; ++e) {
      const std::int64_t at = first + e * g.inner;
      grad_x[at] = grad_y[at] - expf(y[at]) * sum;
    }
  }
}

}  // namespace

void log_softmax_forward(const ReduceGeometry& g, const float* x, float* y) {
  if (g.outer * g.inner * g.extent == 0) return;
  log_softmax_forward_kernel<<<blocks_for(g.outer * g.inner), kThreadsPerBlock, 0, current_stream()>>>(g, x,
                                                                                                       y);
  check_launch("log_softmax_forward");
}

void log_softmax_backward(const ReduceGeometry& g, const float* grad_y, const float* y, float* grad_x) {
  if (g.outer * g.inner * g.extent == 0) return;
  log_softmax_backward_kernel<<<blocks_for(g.outer * g.inner), kThreadsPerBlock, 0, current_stream()>>>(
      g, grad_y, y, grad_x);
  check_launch("log_softmax_backward");
}

}  // namespace dscope::kernels::cuda
