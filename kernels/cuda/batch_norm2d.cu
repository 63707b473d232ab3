// Batch normalisation on the GPU: see kernels/batch_norm2d.h.
//
// The channel sums (of x for the statistics, of grad_y and grad_y·(x − mean) for the backward) are the only
// non-elementwise work. One block per channel would leave most of the GPU idle when channels are few (64 of
// them on 132 multiprocessors), so each channel is cut into `splits` slices: a block sums one slice in double
// and writes a partial, and a one-thread-per-channel kernel adds the partials in a fixed order (the result
// does not depend on scheduling). The statistics use the CPU kernel's shifted one-pass moments, x₀ being the
// channel's first value, and the elementwise passes are the CPU kernel's formulas. Element indices are
// 32-bit, and where planes are a multiple of 4 long every pass moves four values at a time (Layout, below).
// Activations (x, y, the residual, grad_y, grad_x) are float or bfloat16 (mixed precision): bfloat16 ones
// are widened as they are loaded and rounded as they are stored, and everything between is float, so a
// pass moves half the bytes for the same arithmetic.
#include <climits>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>

#include "kernels/batch_norm2d.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/fast_divmod.cuh"
#include "kernels/cuda/four_values.cuh"
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

// Where the elements of an NCHW tensor are, in 32-bit indices with multiply-shift divisions (the entry
// points check that the tensor fits). The kernels come in two widths: 4 when every plane is a multiple of 4
// long and every pointer aligned to four elements, so that four neighbours are one 16-byte (float) or
// 8-byte (bfloat16) load of one channel (four_values.cuh), else 1.
struct Layout {
  FastDivmod plane, channels;
  int C, plane_size, total;

  __device__ int channel(int at) const {
    int image_channel, position, image, c;
    plane.divmod(at, image_channel, position);
    channels.divmod(image_channel, image, c);
    return c;
  }
};

Layout layout_of(const BatchNorm2dGeometry& g) {
  if (g.N * g.C * g.H * g.W > INT_MAX)
    throw std::runtime_error("batch_norm2d: tensor too large for the CUDA kernels' 32-bit indices");
  Layout layout;
  layout.C = static_cast<int>(g.C), layout.plane_size = static_cast<int>(g.H * g.W);
  layout.total = static_cast<int>(g.N * g.C * g.H * g.W);
  layout.plane = FastDivmod(layout.plane_size > 0 ? layout.plane_size : 1);
  layout.channels = FastDivmod(layout.C > 0 ? layout.C : 1);
  return layout;
}

template <typename T>
bool four_wide(const BatchNorm2dGeometry& g, std::initializer_list<const T*> pointers) {
  if ((g.H * g.W) % 4 != 0) return false;
  for (const T* pointer : pointers)
    if (!aligned_for_four(pointer)) return false;
  return true;
}

// The forward's normalisation of channel c, (x − mean)·gamma·inv_std + beta (gamma and beta nullable). The
// backward's fused-ReLU mask is the sign of the same expression, so it rounds as the forward's output did.
struct Normalisation {
  const float* mean = nullptr;
  const float* inv_std = nullptr;
  const float* gamma = nullptr;
  const float* beta = nullptr;

  __device__ float operator()(int c, float x) const {
    const float scale = (gamma ? gamma[c] : 1.0f) * inv_std[c], offset = beta ? beta[c] : 0.0f;
    return (x - mean[c]) * scale + offset;
  }
};

// grad_y at `at`, each value 0 where, with a fused ReLU, the forward's output at the same place of x (`x`,
// loaded from `at`, channel c) was not positive.
template <int kWidth, typename T>
__device__ Pack<kWidth> masked_gradient(const T* grad_y, int at, const Pack<kWidth>& x, bool relu,
                                        const Normalisation& normalisation, int c) {
  Pack<kWidth> grad = load_values<kWidth>(grad_y + at);
  if (relu) {
#pragma unroll
    for (int e = 0; e < kWidth; ++e)
      if (!(normalisation(c, x.v[e]) > 0.0f)) grad.v[e] = 0.0f;
  }
  return grad;
}

// Partial sums of slice blockIdx.y of channel blockIdx.x: with grad_y null, Σ(x − x₀) and Σ(x − x₀)²; with
// it, Σ grad_y and Σ grad_y·(x − mean), grad_y masked as masked_gradient says. The channel's values are
// numbered m = image · plane + position; slices start at multiples of kWidth.
template <int kWidth, typename T>
__global__ void channel_sums_kernel(Layout layout, bool relu, const T* x, const T* grad_y,
                                    Normalisation normalisation, Sums* partials) {
  const int c = blockIdx.x, count = layout.total / layout.C;
  const int slice = ((count + gridDim.y - 1) / gridDim.y + kWidth - 1) / kWidth * kWidth;
  const int begin = blockIdx.y * slice, end = begin + slice < count ? begin + slice : count;
  const double shift = grad_y == nullptr ? static_cast<double>(load_values<1>(x + c * layout.plane_size).v[0])
                                         : static_cast<double>(normalisation.mean[c]);
  double first = 0.0, second = 0.0;
  for (int m = begin + kWidth * threadIdx.x; m < end; m += kWidth * blockDim.x) {
    int image, position;
    layout.plane.divmod(m, image, position);
    const int at = (image * layout.C + c) * layout.plane_size + position;
    const Pack<kWidth> values = load_values<kWidth>(x + at);
    if (grad_y == nullptr) {
#pragma unroll
      for (int e = 0; e < kWidth; ++e) {
        const double d = static_cast<double>(values.v[e]) - shift;
        first += d;
        second += d * d;
      }
    } else {
      const Pack<kWidth> grad = masked_gradient<kWidth, T>(grad_y, at, values, relu, normalisation, c);
#pragma unroll
      for (int e = 0; e < kWidth; ++e) {
        const double d = static_cast<double>(values.v[e]) - shift;
        first += grad.v[e];
        second += grad.v[e] * d;
      }
    }
  }
  first = block_sum(first);
  second = block_sum(second);
  if (threadIdx.x == 0) partials[c * gridDim.y + blockIdx.y] = {first, second};
}

// Fills `partials` (C·splits of them) with the channel sums.
template <typename T>
void channel_sums(const BatchNorm2dGeometry& g, const T* x, const T* grad_y,
                  const Normalisation& normalisation, int splits, Sums* partials, cudaStream_t stream) {
  const Layout layout = layout_of(g);
  const dim3 grid(static_cast<unsigned>(g.C), static_cast<unsigned>(splits));
  if (four_wide<T>(g, {x, grad_y}))
    channel_sums_kernel<4, T>
        <<<grid, kSumThreads, 0, stream>>>(layout, g.relu, x, grad_y, normalisation, partials);
  else
    channel_sums_kernel<1, T>
        <<<grid, kSumThreads, 0, stream>>>(layout, g.relu, x, grad_y, normalisation, partials);
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

template <typename T>
__global__ void finish_statistics_kernel(BatchNorm2dGeometry g, const T* x, const Sums* partials, int splits,
                                         float* mean, float* variance) {
  DSCOPE_GRID_STRIDE_LOOP(c, g.C) {
    const Sums sums = add_partials(partials, c, splits);
    const double M = static_cast<double>(g.count());
    const double shift = load_values<1>(x + c * g.H * g.W).v[0], shifted_mean = sums.first / M;
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

template <int kWidth, typename T>
__global__ void forward_kernel(Layout layout, bool relu, const T* x, Normalisation normalisation,
                               const T* residual, T* y) {
  DSCOPE_GRID_STRIDE_LOOP(group, layout.total / kWidth) {
    const int at = static_cast<int>(group) * kWidth, c = layout.channel(at);
    Pack<kWidth> values = load_values<kWidth>(x + at);
    Pack<kWidth> added{};
    if (residual != nullptr) added = load_values<kWidth>(residual + at);
#pragma unroll
    for (int e = 0; e < kWidth; ++e) {
      const float value = normalisation(c, values.v[e]) + added.v[e];
      values.v[e] = relu && value < 0.0f ? 0.0f : value;
    }
    store_values<kWidth>(y + at, values);
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

template <int kWidth, typename T>
__global__ void grad_x_kernel(Layout layout, bool relu, const T* grad_y, const T* x,
                              Normalisation normalisation, const GradientCoefficients* coefficients,
                              T* grad_x) {
  DSCOPE_GRID_STRIDE_LOOP(group, layout.total / kWidth) {
    const int at = static_cast<int>(group) * kWidth, c = layout.channel(at);
    const GradientCoefficients k = coefficients[c];
    Pack<kWidth> values = load_values<kWidth>(x + at);
    const Pack<kWidth> grad = masked_gradient<kWidth, T>(grad_y, at, values, relu, normalisation, c);
#pragma unroll
    for (int e = 0; e < kWidth; ++e)
      values.v[e] =
          k.grad_scale * grad.v[e] + k.per_centered * (values.v[e] - normalisation.mean[c]) + k.constant;
    store_values<kWidth>(grad_x + at, values);
  }
}

template <typename T>
void run_statistics(const BatchNorm2dGeometry& g, const T* x, float* mean, float* variance) {
  if (g.C == 0 || g.count() == 0) return;
  const cudaStream_t stream = current_stream();
  const int splits = splits_for(g);
  const Scratch<Sums> partials(static_cast<std::size_t>(g.C) * splits, stream);
  channel_sums<T>(g, x, nullptr, Normalisation{}, splits, partials.get(), stream);
  finish_statistics_kernel<T>
      <<<blocks_for(g.C), kThreadsPerBlock, 0, stream>>>(g, x, partials.get(), splits, mean, variance);
  check_launch("batch_norm2d_statistics");
}

template <typename T>
void run_forward(const BatchNorm2dGeometry& g, const T* x, const float* mean, const float* inv_std,
                 const float* gamma, const float* beta, const T* residual, T* y) {
  const std::int64_t n = g.N * g.C * g.H * g.W;
  if (n == 0) return;
  const Layout layout = layout_of(g);
  const Normalisation normalisation{mean, inv_std, gamma, beta};
  if (four_wide<T>(g, {x, residual, y}))
    forward_kernel<4, T><<<blocks_for(n / 4), kThreadsPerBlock, 0, current_stream()>>>(
        layout, g.relu, x, normalisation, residual, y);
  else
    forward_kernel<1, T><<<blocks_for(n), kThreadsPerBlock, 0, current_stream()>>>(
        layout, g.relu, x, normalisation, residual, y);
  check_launch("batch_norm2d_forward");
}

template <typename T>
void run_backward(const BatchNorm2dGeometry& g, bool batch_statistics, const T* grad_y, const T* x,
                  const float* mean, const float* inv_std, const float* gamma, const float* beta, T* grad_x,
                  float* grad_gamma, float* grad_beta) {
  if (g.C == 0) return;
  const cudaStream_t stream = current_stream();
  const Normalisation normalisation{mean, inv_std, gamma, beta};
  const bool needs_sums = (batch_statistics && grad_x) || grad_gamma || grad_beta;
  const int splits = splits_for(g);
  const bool sums = needs_sums && g.count() > 0;
  const Scratch<Sums> partials(sums ? static_cast<std::size_t>(g.C) * splits : 0, stream);
  if (sums) channel_sums(g, x, grad_y, normalisation, splits, partials.get(), stream);
  const Scratch<GradientCoefficients> coefficients(grad_x ? static_cast<std::size_t>(g.C) : 0, stream);
  finish_backward_kernel<<<blocks_for(g.C), kThreadsPerBlock, 0, stream>>>(
      g, batch_statistics, partials.get(), splits, inv_std, gamma, grad_gamma, grad_beta, coefficients.get());
  check_launch("batch_norm2d_backward");
  const std::int64_t n = g.N * g.C * g.H * g.W;
  if (grad_x && n > 0) {
    const Layout layout = layout_of(g);
    if (four_wide<T>(g, {grad_y, x, grad_x}))
      grad_x_kernel<4, T><<<blocks_for(n / 4), kThreadsPerBlock, 0, stream>>>(
          layout, g.relu, grad_y, x, normalisation, coefficients.get(), grad_x);
    else
      grad_x_kernel<1, T><<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(
          layout, g.relu, grad_y, x, normalisation, coefficients.get(), grad_x);
    check_launch("batch_norm2d_backward grad_x");
  }
}

}  // namespace

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

void batch_norm2d_statistics(const BatchNorm2dGeometry& g, const float* x, float* mean, float* variance) {
  run_statistics(g, x, mean, variance);
}
void batch_norm2d_statistics(const BatchNorm2dGeometry& g, const BFloat16* x, float* mean, float* variance) {
  run_statistics(g, x, mean, variance);
}

void batch_norm2d_forward(const BatchNorm2dGeometry& g, const float* x, const float* mean,
                          const float* inv_std, const float* gamma, const float* beta, const float* residual,
                          float* y) {
  run_forward(g, x, mean, inv_std, gamma, beta, residual, y);
}
void batch_norm2d_forward(const BatchNorm2dGeometry& g, const BFloat16* x, const float* mean,
                          const float* inv_std, const float* gamma, const float* beta,
                          const BFloat16* residual, BFloat16* y) {
  run_forward(g, x, mean, inv_std, gamma, beta, residual, y);
}

void batch_norm2d_backward(const BatchNorm2dGeometry& g, bool batch_statistics, const float* grad_y,
                           const float* x, const float* mean, const float* inv_std, const float* gamma,
                           const float* beta, float* grad_x, float* grad_gamma, float* grad_beta) {
  run_backward(g, batch_statistics, grad_y, x, mean, inv_std, gamma, beta, grad_x, grad_gamma, grad_beta);
}
void batch_norm2d_backward(const BatchNorm2dGeometry& g, bool batch_statistics, const BFloat16* grad_y,
                           const BFloat16* x, const float* mean, const float* inv_std, const float* gamma,
                           const float* beta, BFloat16* grad_x, float* grad_gamma, float* grad_beta) {
  run_backward(g, batch_statistics, grad_y, x, mean, inv_std, gamma, beta, grad_x, grad_gamma, grad_beta);
}

}  // namespace dscope::kernels::cuda
