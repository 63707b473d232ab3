// Batch normalisation on the GPU: see kernels/batch_norm2d.h.
//
// The channel sums (of x for the statistics, of grad_y and grad_y·(x − mean) for the backward) are the only
// non-elementwise work. One block per channel would leave most of the GPU idle when channels are few (64 of
// them on 132 multiprocessors), so each channel is cut into `splits` slices: a block sums one slice in double
// and writes a partial, and a one-thread-per-channel kernel adds the partials in a fixed order (the result
// does not depend on scheduling). The statistics use the CPU kernel's shifted one-pass moments, x₀ being the
// channel's first value, and the elementwise passes are the CPU kernel's formulas.
#include "kernels/batch_norm2d.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/launch.cuh"

namespace dscope::kernels::cuda {
namespace {

constexpr int kSumThreads = 512;
constexpr int kTargetBlocks = 528;  // about four blocks per multiprocessor on an H100

struct Sums {
  double first, second;
};

int splits_for(const BatchNorm2dGeometry& g) {
  const std::int64_t by_blocks = (kTargetBlocks + g.C - 1) / g.C;
  const std::int64_t by_work = (g.count() + 4 * kSumThreads - 1) / (4 * kSumThreads);  // ≥ 4 values a thread
  const std::int64_t splits = by_blocks < by_work ? by_blocks : by_work;
  return static_cast<int>(splits < 1 ? 1 : splits);
}

// grad_y[at], or 0 where a fused ReLU's output (when given) is not positive.
__device__ float masked_gradient(const float* grad_y, const float* relu_output, std::int64_t at) {
  return relu_output != nullptr && !(relu_output[at] > 0.0f) ? 0.0f : grad_y[at];
}

// Partial sums of slice blockIdx.y of channel blockIdx.x: with grad_y null, Σ(x − x₀) and Σ(x − x₀)²; with
// it, Σ grad_y and Σ grad_y·(x − mean), grad_y masked by relu_output when that is not null.
__global__ void channel_sums_kernel(BatchNorm2dGeometry g, const float* x, const float* grad_y,
                                    const float* relu_output, const float* mean, Sums* partials) {
  const std::int64_t c = blockIdx.x, plane = g.H * g.W, count = g.count();
  const std::int64_t slice = (count + gridDim.y - 1) / gridDim.y;
  const std::int64_t begin = blockIdx.y * slice, end = begin + slice < count ? begin + slice : count;
  const double shift = grad_y == nullptr ? static_cast<double>(x[c * plane]) : static_cast<double>(mean[c]);
  double first = 0.0, second = 0.0;
  for (std::int64_t m = begin + threadIdx.x; m < end; m += blockDim.x) {
    const std::int64_t at = ((m / plane) * g.C + c) * plane + m % plane;
    const double d = static_cast<double>(x[at]) - shift;
    if (grad_y == nullptr) {
      first += d;
      second += d * d;
    } else {
      const double grad = masked_gradient(grad_y, relu_output, at);
      first += grad;
      second += grad * d;
    }
  }
  first = block_sum(first);
  second = block_sum(second);
  if (threadIdx.x == 0) partials[c * gridDim.y + blockIdx.y] = {first, second};
}

// Fills `partials` (C·splits of them) with the channel sums.
void channel_sums(const BatchNorm2dGeometry& g, const float* x, const float* grad_y, const float* relu_output,
                  const float* mean, int splits, Sums* partials, cudaStream_t stream) {
  channel_sums_kernel<<<dim3(static_cast<unsigned>(g.C), static_cast<unsigned>(splits)), kSumThreads, 0,
                        stream>>>(g, x, grad_y, relu_output, mean, partials);
  check_launch("batch_norm2d channel sums");
}

__device__ Sums add_partials(const Sums* partials, std::int64_t c, int splits) {
  Sums total{0.0, 0.0};
  for (int s = 0; s < splits; ++s) {
    total.first += partials[c * splits + s].first;
    total.second += partials[c * splits + s].second;
  }
  return total;
}

__global__ void finish_statistics_kernel(BatchNorm2dGeometry g, const float* x, const Sums* partials,
                                         int splits, float* mean, float* variance) {
  DSCOPE_GRID_STRIDE_LOOP(c, g.C) {
    const Sums sums = add_partials(partials, c, splits);
    const double M = static_cast<double>(g.count());
    const double shift = x[c * g.H * g.W], shifted_mean = sums.first / M;
    mean[c] = static_cast<float>(shift + shifted_mean);
    variance[c] = static_cast<float>(fmax(sums.second / M - shifted_mean * shifted_mean, 0.0));
  }
}

__global__ void inverse_std_kernel(std::int64_t C, float eps, const float* variance, float* inv_std) {
  DSCOPE_GRID_STRIDE_LOOP(c, C) {
    inv_std[c] = static_cast<float>(1.0 / sqrt(static_cast<double>(variance[c]) + eps));
  }
}

__global__ void update_running_kernel(BatchNorm2dGeometry g, float momentum, const float* mean,
                                      const float* variance, float* running_mean, float* running_var) {
  const double unbiased = static_cast<double>(g.count()) / static_cast<double>(g.count() - 1);
  const double keep = 1.0 - momentum;
  DSCOPE_GRID_STRIDE_LOOP(c, g.C) {
    running_mean[c] = static_cast<float>(keep * running_mean[c] + momentum * static_cast<double>(mean[c]));
    running_var[c] =
        static_cast<float>(keep * running_var[c] + momentum * static_cast<double>(variance[c]) * unbiased);
  }
}

__global__ void forward_kernel(BatchNorm2dGeometry g, const float* x, const float* mean, const float* inv_std,
                               const float* gamma, const float* beta, float* y) {
  const std::int64_t plane = g.H * g.W;
  DSCOPE_GRID_STRIDE_LOOP(at, g.N * g.C * plane) {
    const std::int64_t c = (at / plane) % g.C;
    const float scale = (gamma ? gamma[c] : 1.0f) * inv_std[c];
    const float value = (x[at] - mean[c]) * scale + (beta ? beta[c] : 0.0f);
    y[at] = g.relu && value < 0.0f ? 0.0f : value;
  }
}

// Per channel, grad_x = grad_scale·grad_y + per_centered·(x − mean) + constant (the CPU kernel's expansion).
struct GradientCoefficients {
  float grad_scale, per_centered, constant;
};

__global__ void finish_backward_kernel(BatchNorm2dGeometry g, bool batch_statistics, const Sums* partials,
                                       int splits, const float* inv_std, const float* gamma,
                                       float* grad_gamma, float* grad_beta,
                                       GradientCoefficients* coefficients) {
  const double M = static_cast<double>(g.count());
  DSCOPE_GRID_STRIDE_LOOP(c, g.C) {
    const Sums sums = partials != nullptr ? add_partials(partials, c, splits) : Sums{0.0, 0.0};
    const double sum_grad = sums.first, sum_grad_x_hat = sums.second * inv_std[c];
    if (grad_gamma) grad_gamma[c] = static_cast<float>(sum_grad_x_hat);
    if (grad_beta) grad_beta[c] = static_cast<float>(sum_grad);
    if (coefficients == nullptr) continue;
    const double scale = static_cast<double>(gamma ? gamma[c] : 1.0f) * inv_std[c];
    coefficients[c] = batch_statistics
                          ? GradientCoefficients{static_cast<float>(scale),
                                                 static_cast<float>(-scale * inv_std[c] * sum_grad_x_hat / M),
                                                 static_cast<float>(-scale * sum_grad / M)}
                          : GradientCoefficients{static_cast<float>(scale), 0.0f, 0.0f};
  }
}

__global__ void grad_x_kernel(BatchNorm2dGeometry g, const float* grad_y, const float* relu_output,
                              const float* x, const float* mean, const GradientCoefficients* coefficients,
                              float* grad_x) {
  const std::int64_t plane = g.H * g.W;
  DSCOPE_GRID_STRIDE_LOOP(at, g.N * g.C * plane) {
    const std::int64_t c = (at / plane) % g.C;
    const GradientCoefficients k = coefficients[c];
    grad_x[at] = k.grad_scale * masked_gradient(grad_y, relu_output, at) +
                 k.per_centered * (x[at] - mean[c]) + k.constant;
  }
}

}  // namespace

void batch_norm2d_statistics(const BatchNorm2dGeometry& g, const float* x, float* mean, float* variance) {
  if (g.C == 0 || g.count() == 0) return;
  const cudaStream_t stream = current_stream();
  const int splits = splits_for(g);
  const Scratch<Sums> partials(static_cast<std::size_t>(g.C) * splits, stream);
  channel_sums(g, x, nullptr, nullptr, nullptr, splits, partials.get(), stream);
  finish_statistics_kernel<<<blocks_for(g.C), kThreadsPerBlock, 0, stream>>>(g, x, partials.get(), splits,
                                                                             mean, variance);
  check_launch("batch_norm2d_statistics");
}

void batch_norm2d_inverse_std(std::int64_t C, float eps, const float* variance, float* inv_std) {
  if (C == 0) return;
  inverse_std_kernel<<<blocks_for(C), kThreadsPerBlock, 0, current_stream()>>>(C, eps, variance, inv_std);
  check_launch("batch_norm2d_inverse_std");
}

void batch_norm2d_update_running_statistics(const BatchNorm2dGeometry& g, float momentum, const float* mean,
                                            const float* variance, float* running_mean, float* running_var) {
  if (g.C == 0) return;
  update_running_kernel<<<blocks_for(g.C), kThreadsPerBlock, 0, current_stream()>>>(
      g, momentum, mean, variance, running_mean, running_var);
  check_launch("batch_norm2d_update_running_statistics");
}

void batch_norm2d_forward(const BatchNorm2dGeometry& g, const float* x, const float* mean,
                          const float* inv_std, const float* gamma, const float* beta, float* y) {
  const std::int64_t n = g.N * g.C * g.H * g.W;
  if (n == 0) return;
  forward_kernel<<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(g, x, mean, inv_std, gamma, beta,
                                                                           y);
  check_launch("batch_norm2d_forward");
}

void batch_norm2d_backward(const BatchNorm2dGeometry& g, bool batch_statistics, const float* grad_y,
                           const float* relu_output, const float* x, const float* mean, const float* inv_std,
                           const float* gamma, float* grad_x, float* grad_gamma, float* grad_beta) {
  if (g.C == 0) return;
  const cudaStream_t stream = current_stream();
  const bool needs_sums = (batch_statistics && grad_x) || grad_gamma || grad_beta;
  const int splits = splits_for(g);
  const bool sums = needs_sums && g.count() > 0;
  const Scratch<Sums> partials(sums ? static_cast<std::size_t>(g.C) * splits : 0, stream);
  if (sums) channel_sums(g, x, grad_y, relu_output, mean, splits, partials.get(), stream);
  const Scratch<GradientCoefficients> coefficients(grad_x ? static_cast<std::size_t>(g.C) : 0, stream);
  finish_backward_kernel<<<blocks_for(g.C), kThreadsPerBlock, 0, stream>>>(
      g, batch_statistics, partials.get(), splits, inv_std, gamma, grad_gamma, grad_beta, coefficients.get());
  check_launch("batch_norm2d_backward");
  const std::int64_t n = g.N * g.C * g.H * g.W;
  if (grad_x && n > 0) {
    grad_x_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(g, grad_y, relu_output, x, mean,
                                                                  coefficients.get(), grad_x);
    check_launch("batch_norm2d_backward grad_x");
  }
}

}  // namespace dscope::kernels::cuda
