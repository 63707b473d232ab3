// The passes by Winograd's F(4×4, 3×3) on the GPU: the launches of the steps that conv2d_winograd.cuh
// describes. One thread per transformed tile (tile transforms), per filter and channel (filter transforms),
// per filter and tile (output transform); neighbouring threads take neighbouring tiles or channels, so the
// 36 values each writes (or reads) land next to its neighbours'.
#include "kernels/cuda/conv2d_winograd.cuh"

namespace dscope::kernels::cuda::winograd {
namespace {

__global__ void transform_input_kernel(Plan plan, const float* x, float* transformed) {
  DSCOPE_GRID_STRIDE_LOOP(at, static_cast<std::int64_t>(plan.C) * plan.depth) {
    transform_input_tile(plan, x, static_cast<int>(at / plan.depth), static_cast<int>(at % plan.depth),
                         transformed);
  }
}

__global__ void transform_gradient_kernel(Plan plan, const float* grad_y, float* transformed) {
  DSCOPE_GRID_STRIDE_LOOP(at, static_cast<std::int64_t>(plan.K) * plan.depth) {
    transform_gradient_tile(plan, grad_y, static_cast<int>(at / plan.depth),
                            static_cast<int>(at % plan.depth), transformed);
  }
}

__global__ void filter_gradient_kernel(Plan plan, const float* products, float* grad_w) {
  DSCOPE_GRID_STRIDE_LOOP(at, static_cast<std::int64_t>(plan.K) * plan.C) {
    filter_gradient(plan, products, static_cast<int>(at / plan.C), static_cast<int>(at % plan.C), grad_w);
  }
}

__global__ void transform_filter_kernel(Plan plan, const float* w, bool turned, float* transformed) {
  DSCOPE_GRID_STRIDE_LOOP(at, static_cast<std::int64_t>(plan.K) * plan.C) {
    transform_filter(plan, w, turned, static_cast<int>(at / plan.C), static_cast<int>(at % plan.C),
                     transformed);
  }
}

__global__ void output_kernel(Plan plan, const float* products, const float* bias, float* y) {
  DSCOPE_GRID_STRIDE_LOOP(at, static_cast<std::int64_t>(plan.K) * plan.tiles) {
    output_tile(plan, products, bias, static_cast<int>(at / plan.tiles), static_cast<int>(at % plan.tiles),
                y);
  }
}

// The split product `ops` into `parts` parts of `chunk`, each written to its slice of `products`.
void run_parts(const Plan& plan, const PointProducts& ops, int parts, int chunk, float* products,
               cudaStream_t stream) {
  if (plan.tile_m == 64)
    implicit_gemm::launch<64, implicit_gemm::CudaCoreTile<64>>(ops, parts, chunk, products, stream);
  else
    implicit_gemm::launch<128, implicit_gemm::CudaCoreTile<128>>(ops, parts, chunk, products, stream);
}

// What launch errors and DSCOPE_CUDA_PROFILE call the forward's steps, for each pass that runs it.
struct StepNames {
  const char *filters, *input, *products, *output;
};
constexpr StepNames kForwardSteps = {
    "conv2d_forward winograd filter transform", "conv2d_forward winograd input transform",
    "conv2d_forward winograd products", "conv2d_forward winograd output transform"};
constexpr StepNames kInputGradientSteps = {
    "conv2d_backward_input winograd filter transform", "conv2d_backward_input winograd gradient transform",
    "conv2d_backward_input winograd products", "conv2d_backward_input winograd output transform"};

// The forward of g, with w as it comes ([K, C, 3, 3]) or turned (the input gradient's, see transform_filter).
void forward(const Conv2dGeometry& g, const float* x, const float* w, bool turned, const float* bias,
             float* y, const StepNames& names) {
  const Plan plan = plan_tiles(g);
  const cudaStream_t stream = current_stream();
  const std::int64_t filter_pairs = static_cast<std::int64_t>(plan.K) * plan.C;
  const Scratch<float> filters(static_cast<std::size_t>(kPoints * filter_pairs), stream);
  const Scratch<float> input(static_cast<std::size_t>(kPoints) * plan.C * plan.depth, stream);
  const Scratch<float> products(static_cast<std::size_t>(kPoints) * plan.K * plan.tiles, stream);

  transform_filter_kernel<<<blocks_for(filter_pairs), kThreadsPerBlock, 0, stream>>>(plan, w, turned,
                                                                                     filters.get());
  check_launch(names.filters);
  transform_input_kernel<<<blocks_for(static_cast<std::int64_t>(plan.C) * plan.depth), kThreadsPerBlock, 0,
                           stream>>>(plan, x, input.get());
  check_launch(names.input);
  run_parts(plan, forward_products(plan, filters.get(), input.get()), kPoints, plan.C, products.get(),
            stream);
  check_launch(names.products);
  output_kernel<<<blocks_for(static_cast<std::int64_t>(plan.K) * plan.tiles), kThreadsPerBlock, 0, stream>>>(
      plan, products.get(), bias, y);
  check_launch(names.output);
}

}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  forward(g, x, w, false, bias, y, kForwardSteps);
}

void conv2d_backward_input(const Conv2dGeometry& g, const float* grad_y, const float* w, float* grad_x) {
  forward(input_gradient_geometry(g), grad_y, w, true, nullptr, grad_x, kInputGradientSteps);
}

void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* grad_y, float* grad_w) {
  const Plan plan = plan_weight_gradient(g, implicit_gemm::multiprocessor_count());
  const cudaStream_t stream = current_stream();
  const Scratch<float> gradient(static_cast<std::size_t>(kPoints) * plan.K * plan.depth, stream);
  const Scratch<float> input(static_cast<std::size_t>(kPoints) * plan.C * plan.depth, stream);
  const Scratch<float> products(static_cast<std::size_t>(kPoints) * plan.splits * plan.K * plan.C, stream);

  transform_gradient_kernel<<<blocks_for(static_cast<std::int64_t>(plan.K) * plan.depth), kThreadsPerBlock, 0,
                              stream>>>(plan, grad_y, gradient.get());
  check_launch("conv2d_backward_weight winograd gradient transform");
  transform_input_kernel<<<blocks_for(static_cast<std::int64_t>(plan.C) * plan.depth), kThreadsPerBlock, 0,
                           stream>>>(plan, x, input.get());
  check_launch("conv2d_backward_weight winograd input transform");
  run_parts(plan, weight_gradient_products(plan, gradient.get(), input.get()), kPoints * plan.splits,
            plan.chunk, products.get(), stream);
  check_launch("conv2d_backward_weight winograd products");
  filter_gradient_kernel<<<blocks_for(static_cast<std::int64_t>(plan.K) * plan.C), kThreadsPerBlock, 0,
                           stream>>>(plan, products.get(), grad_w);
  check_launch("conv2d_backward_weight winograd filter transform");
}

}  // namespace dscope::kernels::cuda::winograd
