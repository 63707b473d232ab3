// The weight gradient by Winograd's F(4×4, 3×3) on the GPU: the launches of the steps that
// conv2d_winograd.cuh describes. One thread per transformed tile (steps 1) and per filter tap pair (k, c)
// (step 3); neighbouring threads take neighbouring tiles, so each of the 36 values a thread writes lands
// next to its neighbours' (V[ξ][c][t], U[ξ][k][t]), and neighbouring channels in step 3, which reads
// products[z][k][c].
#include "kernels/cuda/conv2d_winograd.cuh"

namespace dscope::kernels::cuda::winograd {
namespace {

__global__ void transform_input_kernel(WeightGradientPlan plan, const float* x, float* transformed) {
  DSCOPE_GRID_STRIDE_LOOP(at, static_cast<std::int64_t>(plan.C) * plan.depth) {
    transform_input_tile(plan, x, static_cast<int>(at / plan.depth), static_cast<int>(at % plan.depth),
                         transformed);
  }
}

__global__ void transform_gradient_kernel(WeightGradientPlan plan, const float* grad_y, float* transformed) {
  DSCOPE_GRID_STRIDE_LOOP(at, static_cast<std::int64_t>(plan.K) * plan.depth) {
    transform_gradient_tile(plan, grad_y, static_cast<int>(at / plan.depth),
                            static_cast<int>(at % plan.depth), transformed);
  }
}

__global__ void filter_gradient_kernel(WeightGradientPlan plan, const float* products, float* grad_w) {
  DSCOPE_GRID_STRIDE_LOOP(at, static_cast<std::int64_t>(plan.K) * plan.C) {
    filter_gradient(plan, products, static_cast<int>(at / plan.C), static_cast<int>(at % plan.C), grad_w);
  }
}

}  // namespace

void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* grad_y, float* grad_w) {
  const WeightGradientPlan plan = plan_weight_gradient(g, implicit_gemm::multiprocessor_count());
  const cudaStream_t stream = current_stream();
  const Scratch<float> gradient(static_cast<std::size_t>(plan.gradient_floats()), stream);
  const Scratch<float> input(static_cast<std::size_t>(plan.input_floats()), stream);
  const Scratch<float> products(static_cast<std::size_t>(plan.product_floats()), stream);

  transform_gradient_kernel<<<blocks_for(static_cast<std::int64_t>(plan.K) * plan.depth), kThreadsPerBlock, 0,
                              stream>>>(plan, grad_y, gradient.get());
  check_launch("conv2d_backward_weight winograd gradient transform");
  transform_input_kernel<<<blocks_for(static_cast<std::int64_t>(plan.C) * plan.depth), kThreadsPerBlock, 0,
                           stream>>>(plan, x, input.get());
  check_launch("conv2d_backward_weight winograd input transform");

  const PointProducts ops = point_products(plan, gradient.get(), input.get());
  const int parts = kPoints * plan.splits;
  if (plan.tile_m == 64)
    implicit_gemm::launch<64, implicit_gemm::CudaCoreTile<64>>(ops, parts, plan.chunk, products.get(),
                                                               stream);
  else
    implicit_gemm::launch<128, implicit_gemm::CudaCoreTile<128>>(ops, parts, plan.chunk, products.get(),
                                                                 stream);
  check_launch("conv2d_backward_weight winograd products");

  filter_gradient_kernel<<<blocks_for(static_cast<std::int64_t>(plan.K) * plan.C), kThreadsPerBlock, 0,
                           stream>>>(plan, products.get(), grad_w);
  check_launch("conv2d_backward_weight winograd filter transform");
}

}  // namespace dscope::kernels::cuda::winograd
