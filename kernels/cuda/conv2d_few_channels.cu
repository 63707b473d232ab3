// The input gradient for inputs with few channels: the launch of conv2d_few_channels.cuh. Each block first
// copies the weights into shared memory in the [R][S][K][C] order the threads read them in (a few KB: the
// stem's 64 × 3 × 3 × 3 filters are 7 KB), then its threads take input positions, w fastest.
#include "kernels/cuda/conv2d_few_channels.cuh"

namespace dscope::kernels::cuda::few_channels {
namespace {

__global__ void input_gradient_kernel(ConvShape g, const float* grad_y, const float* w, float* grad_x) {
  extern __shared__ float weights[];
  for (int i = threadIdx.x; i < g.K * g.CRS; i += blockDim.x)
    weights[copy_index(g, i)] = w[i];
  __syncthreads();
  DSCOPE_GRID_STRIDE_LOOP(at, static_cast<std::int64_t>(g.N) * g.HW) {
    const int position = static_cast<int>(at), n = position / g.HW, hw = position % g.HW;
    input_gradient_at(g, grad_y, weights, n, hw / g.W, hw % g.W, grad_x);
  }
}

}  // namespace

void conv2d_backward_input(const Conv2dGeometry& g, const float* grad_y, const float* w, float* grad_x) {
  const ConvShape shape(g);
  const std::int64_t positions = static_cast<std::int64_t>(shape.N) * shape.HW;
  if (positions == 0) return;
  const std::size_t bytes = static_cast<std::size_t>(shape.K) * shape.CRS * sizeof(float);
  input_gradient_kernel<<<blocks_for(positions), kThreadsPerBlock, bytes, current_stream()>>>(shape, grad_y,
                                                                                              w, grad_x);
  check_launch("conv2d_backward_input few channels");
}

}  // namespace dscope::kernels::cuda::few_channels
