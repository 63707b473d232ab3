// Batch normalisation on the CPU (see kernels/batch_norm2d.h).
//
// Channel reductions run one channel per OpenMP task. Without -ffast-math the compiler must add into one
// running sum in program order, one dependent addition after another; the `omp simd reduction` lets it keep
// a partial sum per vector lane instead, which vectorises and overlaps. The lanes sum in float over chunks of
// kSumChunk values (at most kSumChunk / 8 terms per lane, so a relative rounding error of about 1e-6), and
// the chunks' sums are added in double: a float lane holds twice the values of a double one and needs no
// conversion, which made these sums the larger part of the batch norm's time when they were double.
// The variance comes from one pass over sums of d = x − x₀ and d², x₀ being the channel's first value:
// the shift keeps d near the data's spread, so Σd²/M − (Σd/M)² does not cancel the way Σx²/M − mean² does
// when |mean| ≫ std, and it costs one read of x instead of the two a mean-then-deviations pass needs.
#include "kernels/batch_norm2d.h"

#include <algorithm>
#include <vector>

#include "kernels/convert.h"

namespace dscope::kernels::cpu {
namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr std::int64_t kParallelThreshold = 16384;

struct ChannelSums {
  double first = 0.0;   // Σ of the first quantity
  double second = 0.0;  // Σ of the second quantity
};

constexpr std::int64_t kSumChunk = 512;

// Adds Σ (v − shift) and Σ (v − shift)² over values[0, n).
void add_shifted_moments(const float* values, std::int64_t n, float shift, ChannelSums& sums) {
  for (std::int64_t start = 0; start < n; start += kSumChunk) {
    const std::int64_t end = std::min(n, start + kSumChunk);
    float first = 0.0f, second = 0.0f;
#pragma omp simd reduction(+ : first, second)
    for (std::int64_t i = start; i < end; ++i) {
      const float d = values[i] - shift;
      first += d;
      second += d * d;
    }
    sums.first += first;
    sums.second += second;
  }
}

// One channel's normalisation: scale = gamma·inv_std, shift = beta. The forward's output and the backward's
// fused-ReLU mask both come from this expression, so they round alike (kernels/batch_norm2d.h).
struct Affine {
  float center, scale, shift;
  float operator()(float x) const { return (x - center) * scale + shift; }
};

Affine channel_affine(std::int64_t c, const float* mean, const float* inv_std, const float* gamma,
                      const float* beta) {
  return {mean[c], (gamma ? gamma[c] : 1.0f) * inv_std[c], beta ? beta[c] : 0.0f};
}

// grad_y, or with a fused ReLU (kRelu) 0 where the forward's output was not positive: a select of values,
// which GCC vectorises inside the loops below. kRelu is a template parameter so that each loop is compiled
// for one case; with it a run-time flag, the backward ran a third slower.
template <bool kRelu>
float kept_gradient(float grad_y, float x, Affine affine) {
  if constexpr (kRelu) return affine(x) > 0.0f ? grad_y : 0.0f;
  return grad_y;
}

// Adds Σ grad_y and Σ grad_y · (x − mean) over [0, n), grad_y masked as kept_gradient says.
template <bool kRelu>
void add_gradient_sums(const float* grad_y, const float* x, std::int64_t n, Affine affine,
                       ChannelSums& sums) {
  for (std::int64_t start = 0; start < n; start += kSumChunk) {
    const std::int64_t end = std::min(n, start + kSumChunk);
    float first = 0.0f, second = 0.0f;
#pragma omp simd reduction(+ : first, second)
    for (std::int64_t i = start; i < end; ++i) {
      const float kept = kept_gradient<kRelu>(grad_y[i], x[i], affine);
      first += kept;
      second += kept * (x[i] - affine.center);
    }
    sums.first += first;
    sums.second += second;
  }
}

// batch_norm2d_backward for channel c (kernels/batch_norm2d.h).
template <bool kRelu>
void backward_channel(const BatchNorm2dGeometry& g, std::int64_t c, bool batch_statistics,
                      const float* grad_y, const float* x, const float* mean, const float* inv_std,
                      const float* gamma, const float* beta, float* grad_x, float* grad_gamma,
                      float* grad_beta) {
  const std::int64_t plane = g.H * g.W;
  const double M = static_cast<double>(g.count());
  const Affine affine = channel_affine(c, mean, inv_std, gamma, beta);
  ChannelSums sums;  // Σ grad_y and Σ grad_y · (x − mean)
  if (batch_statistics || grad_gamma || grad_beta)
    for (std::int64_t n = 0; n < g.N; ++n) {
      const std::int64_t offset = (n * g.C + c) * plane;
      add_gradient_sums<kRelu>(grad_y + offset, x + offset, plane, affine, sums);
    }
  const double sum_grad = sums.first;
  const double sum_grad_x_hat = sums.second * inv_std[c];
  if (grad_gamma) grad_gamma[c] = static_cast<float>(sum_grad_x_hat);
  if (grad_beta) grad_beta[c] = static_cast<float>(sum_grad);
  if (!grad_x) return;

  const double scale = static_cast<double>(gamma ? gamma[c] : 1.0f) * inv_std[c];
  const float grad_scale = static_cast<float>(scale);
  if (!batch_statistics) {
    for (std::int64_t n = 0; n < g.N; ++n) {
      const std::int64_t offset = (n * g.C + c) * plane;
      for (std::int64_t i = 0; i < plane; ++i)
        grad_x[offset + i] = grad_scale * kept_gradient<kRelu>(grad_y[offset + i], x[offset + i], affine);
    }
    return;
  }
  // Expanding x̂ = (x − mean)·inv_std turns the training formula into one multiply-add per term:
  // grad_x = scale·grad_y + per_centered·(x − mean) + constant.
  const float per_centered = static_cast<float>(-scale * inv_std[c] * sum_grad_x_hat / M);
  const float constant = static_cast<float>(-scale * sum_grad / M);
  for (std::int64_t n = 0; n < g.N; ++n) {
    const std::int64_t offset = (n * g.C + c) * plane;
    const float* grad = grad_y + offset;
    const float* in = x + offset;
    float* out = grad_x + offset;
    for (std::int64_t i = 0; i < plane; ++i)
      out[i] = grad_scale * kept_gradient<kRelu>(grad[i], in[i], affine) +
               per_centered * (in[i] - affine.center) + constant;
  }
}

}  // namespace

void batch_norm2d_statistics(const BatchNorm2dGeometry& g, const float* x, float* mean, float* variance) {
  const std::int64_t plane = g.H * g.W;
  const double M = static_cast<double>(g.count());
#pragma omp parallel for schedule(static) if (g.N * g.C * plane > kParallelThreshold)
  for (std::int64_t c = 0; c < g.C; ++c) {
    const float shift = x[c * plane];
    ChannelSums sums;
    for (std::int64_t n = 0; n < g.N; ++n)
      add_shifted_moments(x + (n * g.C + c) * plane, plane, shift, sums);
    const double shifted_mean = sums.first / M;
    mean[c] = static_cast<float>(shift + shifted_mean);
    // Rounding can leave a tiny negative for a constant channel; the variance is never below 0.
    variance[c] = static_cast<float>(std::max(sums.second / M - shifted_mean * shifted_mean, 0.0));
  }
}

void batch_norm2d_inverse_std(std::int64_t C, float eps, const float* variance, float* inv_std) {
  for (std::int64_t c = 0; c < C; ++c)
    inv_std[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(variance[c]) + eps));
}

void batch_norm2d_update_running_statistics(const BatchNorm2dGeometry& g, float momentum, const float* mean,
                                            const float* variance, float* running_mean, float* running_var) {
  const double unbiased = static_cast<double>(g.count()) / static_cast<double>(g.count() - 1);
  const double keep = 1.0 - momentum;
  for (std::int64_t c = 0; c < g.C; ++c) {
    running_mean[c] = static_cast<float>(keep * running_mean[c] + momentum * static_cast<double>(mean[c]));
    running_var[c] =
        static_cast<float>(keep * running_var[c] + momentum * static_cast<double>(variance[c]) * unbiased);
  }
}

void batch_norm2d_forward(const BatchNorm2dGeometry& g, const float* x, const float* mean,
                          const float* inv_std, const float* gamma, const float* beta, const float* residual,
                          float* y) {
  const std::int64_t plane = g.H * g.W;
#pragma omp parallel for schedule(static) if (g.N * g.C * plane > kParallelThreshold)
  for (std::int64_t nc = 0; nc < g.N * g.C; ++nc) {
    const Affine affine = channel_affine(nc % g.C, mean, inv_std, gamma, beta);
    const float* in = x + nc * plane;
    float* out = y + nc * plane;
    if (residual != nullptr) {
      const float* added = residual + nc * plane;
      if (g.relu) {
        for (std::int64_t i = 0; i < plane; ++i)
          out[i] = std::max(affine(in[i]) + added[i], 0.0f);
      } else {
        for (std::int64_t i = 0; i < plane; ++i)
          out[i] = affine(in[i]) + added[i];
      }
    } else if (g.relu) {
      for (std::int64_t i = 0; i < plane; ++i)
        out[i] = std::max(affine(in[i]), 0.0f);
    } else {
      for (std::int64_t i = 0; i < plane; ++i)
        out[i] = affine(in[i]);
    }
  }
}

void batch_norm2d_backward(const BatchNorm2dGeometry& g, bool batch_statistics, const float* grad_y,
                           const float* x, const float* mean, const float* inv_std, const float* gamma,
                           const float* beta, float* grad_x, float* grad_gamma, float* grad_beta) {
#pragma omp parallel for schedule(static) if (g.N * g.C * g.H * g.W > kParallelThreshold)
  for (std::int64_t c = 0; c < g.C; ++c) {
    if (g.relu)
      backward_channel<true>(g, c, batch_statistics, grad_y, x, mean, inv_std, gamma, beta, grad_x,
                             grad_gamma, grad_beta);
    else
      backward_channel<false>(g, c, batch_statistics, grad_y, x, mean, inv_std, gamma, beta, grad_x,
                              grad_gamma, grad_beta);
  }
}

// ---- bfloat16 activations: widened, the float kernels, rounded ----

namespace {
float* or_null(std::vector<float>& values) {
  return values.empty() ? nullptr : values.data();
}
}  // namespace

void batch_norm2d_statistics(const BatchNorm2dGeometry& g, const BFloat16* x, float* mean, float* variance) {
  const std::vector<float> x_values = widened(x, g.N * g.C * g.H * g.W);
  batch_norm2d_statistics(g, x_values.data(), mean, variance);
}

void batch_norm2d_forward(const BatchNorm2dGeometry& g, const BFloat16* x, const float* mean,
                          const float* inv_std, const float* gamma, const float* beta,
                          const BFloat16* residual, BFloat16* y) {
  const std::int64_t n = g.N * g.C * g.H * g.W;
  std::vector<float> x_values = widened(x, n), residual_values = widened(residual, n),
                     y_values(static_cast<std::size_t>(n));
  batch_norm2d_forward(g, x_values.data(), mean, inv_std, gamma, beta, or_null(residual_values),
                       y_values.data());
  float_to_bfloat16(n, y_values.data(), y);
}

void batch_norm2d_backward(const BatchNorm2dGeometry& g, bool batch_statistics, const BFloat16* grad_y,
                           const BFloat16* x, const float* mean, const float* inv_std, const float* gamma,
                           const float* beta, BFloat16* grad_x, float* grad_gamma, float* grad_beta) {
  const std::int64_t n = g.N * g.C * g.H * g.W;
  const std::vector<float> grad_y_values = widened(grad_y, n), x_values = widened(x, n);
  std::vector<float> grad_x_values(grad_x ? static_cast<std::size_t>(n) : 0);
  batch_norm2d_backward(g, batch_statistics, grad_y_values.data(), x_values.data(), mean, inv_std, gamma,
                        beta, or_null(grad_x_values), grad_gamma, grad_beta);
  if (grad_x) float_to_bfloat16(n, grad_x_values.data(), grad_x);
}

}  // namespace dscope::kernels::cpu
