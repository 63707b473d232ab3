// Batch-norm CPU kernels against the double-precision reference over a table of shapes (batch 1, one
// channel, 1×1 planes, plane sizes that leave a tail after the 8-lane loops), with NaN-prefilled outputs
// so that an element the kernel forgets to write shows up.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/batch_norm2d.h"
#include "tensor/random.h"
#include "tests/support/compare.h"

namespace dscope {
namespace {

using kernels::BatchNorm2dGeometry;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// The last has planes of 1,073 values, so its sums run over several float chunks
// (kernels/cpu/batch_norm2d.cpp).
const std::vector<BatchNorm2dGeometry> kShapes = {
    {2, 3, 4, 5},  {1, 1, 7, 9},   {3, 5, 1, 1},  {4, 2, 3, 3},
    {1, 17, 6, 6}, {2, 4, 13, 11}, {8, 16, 8, 8}, {2, 3, 37, 29},
};

std::string name(const BatchNorm2dGeometry& g) {
  std::ostringstream out;
  out << "[N,C,H,W] = [" << g.N << "," << g.C << "," << g.H << "," << g.W << "]";
  return out.str();
}

std::vector<float> normal_values(std::int64_t n, std::uint64_t seed, float mean = 0.0f, float stddev = 1.0f) {
  Generator generator(seed);
  std::vector<float> values(static_cast<std::size_t>(n));
  for (float& value : values)
    value = mean + stddev * generator.normal();
  return values;
}

std::vector<double> widen(const std::vector<float>& values) {
  return {values.begin(), values.end()};
}

std::int64_t elements(const BatchNorm2dGeometry& g) {
  return g.N * g.C * g.H * g.W;
}

// An activation-like input: every channel has its own offset and spread, far from mean 0 and std 1.
std::vector<float> channel_shifted_input(const BatchNorm2dGeometry& g, std::uint64_t seed) {
  std::vector<float> x = normal_values(elements(g), seed);
  const std::int64_t plane = g.H * g.W;
  for (std::int64_t i = 0; i < elements(g); ++i) {
    const std::int64_t c = (i / plane) % g.C;
    x[static_cast<std::size_t>(i)] = 3.0f + static_cast<float>(c) +
                                     (0.5f + 0.25f * static_cast<float>(c)) * x[static_cast<std::size_t>(i)];
  }
  return x;
}

TEST(BatchNorm2dKernels, StatisticsMatchReference) {
  for (const BatchNorm2dGeometry& g : kShapes) {
    const std::vector<float> x = channel_shifted_input(g, 1);
    std::vector<float> mean(static_cast<std::size_t>(g.C), kNaN), variance(mean);
    kernels::cpu::batch_norm2d_statistics(g, x.data(), mean.data(), variance.data());
    std::vector<double> mean_ref(mean.size()), variance_ref(mean.size());
    kernels::reference::batch_norm2d_statistics(g, widen(x).data(), mean_ref.data(), variance_ref.data());
    EXPECT_TRUE(testing::all_close(mean, mean_ref, 1e-6, 1e-6, "mean " + name(g)));
    EXPECT_TRUE(testing::all_close(variance, variance_ref, 1e-6, 1e-5, "variance " + name(g)));
  }
}

TEST(BatchNorm2dKernels, VarianceStaysAccurateFarFromZero) {
  // std 0.01 around 1000: Σx²/M − mean² would cancel 8 of float's 7 digits; the shifted sums do not.
  const BatchNorm2dGeometry g{4, 2, 8, 8};
  const std::vector<float> x = normal_values(elements(g), 2, 1000.0f, 0.01f);
  std::vector<float> mean(2, kNaN), variance(2, kNaN);
  kernels::cpu::batch_norm2d_statistics(g, x.data(), mean.data(), variance.data());
  std::vector<double> mean_ref(2), variance_ref(2);
  kernels::reference::batch_norm2d_statistics(g, widen(x).data(), mean_ref.data(), variance_ref.data());
  EXPECT_TRUE(testing::all_close(variance, variance_ref, 0.0, 1e-4, "variance around 1000"));
}

TEST(BatchNorm2dKernels, ConstantChannelHasZeroVariance) {
  const BatchNorm2dGeometry g{2, 1, 3, 3};
  const std::vector<float> x(18, 0.1f);
  float mean = kNaN, variance = kNaN;
  kernels::cpu::batch_norm2d_statistics(g, x.data(), &mean, &variance);
  EXPECT_FLOAT_EQ(mean, 0.1f);
  EXPECT_EQ(variance, 0.0f);
}

TEST(BatchNorm2dKernels, InverseStdAndRunningUpdateMatchReference) {
  const BatchNorm2dGeometry g{2, 5, 3, 3};
  const std::vector<float> variance = {0.0f, 1e-6f, 0.5f, 1.0f, 40.0f};
  std::vector<float> inv_std(5, kNaN);
  kernels::cpu::batch_norm2d_inverse_std(5, 1e-5f, variance.data(), inv_std.data());
  std::vector<double> inv_std_ref(5);
  kernels::reference::batch_norm2d_inverse_std(5, static_cast<double>(1e-5f), widen(variance).data(),
                                               inv_std_ref.data());
  EXPECT_TRUE(testing::all_close(inv_std, inv_std_ref, 0.0, 1e-6, "inverse_std"));

  const std::vector<float> mean = {-1.0f, 0.0f, 0.5f, 2.0f, 10.0f};
  std::vector<float> running_mean = {0.0f, 0.1f, 0.2f, 0.3f, 0.4f},
                     running_var = {1.0f, 1.0f, 2.0f, 0.5f, 1.0f};
  std::vector<double> running_mean_ref = widen(running_mean), running_var_ref = widen(running_var);
  kernels::cpu::batch_norm2d_update_running_statistics(g, 0.1f, mean.data(), variance.data(),
                                                       running_mean.data(), running_var.data());
  kernels::reference::batch_norm2d_update_running_statistics(g, static_cast<double>(0.1f), widen(mean).data(),
                                                             widen(variance).data(), running_mean_ref.data(),
                                                             running_var_ref.data());
  EXPECT_TRUE(testing::all_close(running_mean, running_mean_ref, 1e-7, 1e-6, "running_mean"));
  EXPECT_TRUE(testing::all_close(running_var, running_var_ref, 1e-7, 1e-6, "running_var"));
}

// The reference's missing residual, typed for its template.
constexpr const double* kNoResidual = nullptr;

TEST(BatchNorm2dKernels, ForwardMatchesReferenceWithAndWithoutAffine) {
  for (const BatchNorm2dGeometry& g : kShapes) {
    const std::vector<float> x = channel_shifted_input(g, 3);
    const std::vector<float> mean = normal_values(g.C, 4, 3.0f), inv_std = normal_values(g.C, 5, 1.0f, 0.2f);
    const std::vector<float> gamma = normal_values(g.C, 6, 1.0f, 0.5f), beta = normal_values(g.C, 7);
    for (const bool affine : {true, false}) {
      std::vector<float> y(static_cast<std::size_t>(elements(g)), kNaN);
      kernels::cpu::batch_norm2d_forward(g, x.data(), mean.data(), inv_std.data(),
                                         affine ? gamma.data() : nullptr, affine ? beta.data() : nullptr,
                                         nullptr, y.data());
      std::vector<double> y_ref(y.size());
      const std::vector<double> gamma_ref = widen(gamma), beta_ref = widen(beta);
      kernels::reference::batch_norm2d_forward(g, widen(x).data(), widen(mean).data(), widen(inv_std).data(),
                                               affine ? gamma_ref.data() : nullptr,
                                               affine ? beta_ref.data() : nullptr, kNoResidual, y_ref.data());
      EXPECT_TRUE(testing::all_close(y, y_ref, 1e-5, 1e-5, (affine ? "affine " : "plain ") + name(g)));
    }
  }
}

// A residual added before the ReLU (a ResNet block's join), and without the ReLU.
TEST(BatchNorm2dKernels, ForwardWithResidualMatchesReference) {
  for (BatchNorm2dGeometry g : kShapes) {
    const std::vector<float> x = channel_shifted_input(g, 31), residual = normal_values(elements(g), 32);
    const std::vector<float> mean = normal_values(g.C, 33, 3.0f),
                             inv_std = normal_values(g.C, 34, 1.0f, 0.2f);
    const std::vector<float> gamma = normal_values(g.C, 35, 1.0f, 0.5f), beta = normal_values(g.C, 36);
    for (const bool relu : {true, false}) {
      g.relu = relu;
      std::vector<float> y(static_cast<std::size_t>(elements(g)), kNaN);
      kernels::cpu::batch_norm2d_forward(g, x.data(), mean.data(), inv_std.data(), gamma.data(), beta.data(),
                                         residual.data(), y.data());
      std::vector<double> y_ref(y.size());
      kernels::reference::batch_norm2d_forward(g, widen(x).data(), widen(mean).data(), widen(inv_std).data(),
                                               widen(gamma).data(), widen(beta).data(),
                                               widen(residual).data(), y_ref.data());
      EXPECT_TRUE(
          testing::all_close(y, y_ref, 1e-5, 1e-5, (relu ? "residual, relu " : "residual ") + name(g)));
    }
  }
}

TEST(BatchNorm2dKernels, BackwardMatchesReferenceInBothModes) {
  for (const BatchNorm2dGeometry& g : kShapes) {
    const std::vector<float> x = channel_shifted_input(g, 8), grad_y = normal_values(elements(g), 9);
    std::vector<double> mean_ref(static_cast<std::size_t>(g.C)), variance_ref(mean_ref),
        inv_std_ref(mean_ref);
    kernels::reference::batch_norm2d_statistics(g, widen(x).data(), mean_ref.data(), variance_ref.data());
    kernels::reference::batch_norm2d_inverse_std(g.C, 1e-5, variance_ref.data(), inv_std_ref.data());
    const std::vector<float> mean(mean_ref.begin(), mean_ref.end()),
        inv_std(inv_std_ref.begin(), inv_std_ref.end());
    const std::vector<float> gamma = normal_values(g.C, 10, 1.0f, 0.5f);
    for (const bool batch_statistics : {true, false}) {
      std::vector<float> grad_x(static_cast<std::size_t>(elements(g)), kNaN);
      std::vector<float> grad_gamma(static_cast<std::size_t>(g.C), kNaN), grad_beta(grad_gamma);
      kernels::cpu::batch_norm2d_backward(g, batch_statistics, grad_y.data(), x.data(), mean.data(),
                                          inv_std.data(), gamma.data(), nullptr, grad_x.data(),
                                          grad_gamma.data(), grad_beta.data());
      std::vector<double> grad_x_ref(grad_x.size()), grad_gamma_ref(grad_gamma.size()),
          grad_beta_ref(grad_gamma.size());
      kernels::reference::batch_norm2d_backward<double>(
          g, batch_statistics, widen(grad_y).data(), widen(x).data(), widen(mean).data(),
          widen(inv_std).data(), widen(gamma).data(), nullptr, grad_x_ref.data(), grad_gamma_ref.data(),
          grad_beta_ref.data());
      const std::string context = (batch_statistics ? "training " : "evaluation ") + name(g);
      // grad_x in training is a difference of O(1) terms: compare with an absolute floor of that size.
      EXPECT_TRUE(testing::all_close(grad_x, grad_x_ref, 2e-5, 1e-4, "grad_x " + context));
      EXPECT_TRUE(testing::all_close(grad_gamma, grad_gamma_ref, 1e-4, 1e-5, "grad_gamma " + context));
      EXPECT_TRUE(testing::all_close(grad_beta, grad_beta_ref, 1e-4, 1e-5, "grad_beta " + context));
    }
  }
}

TEST(BatchNorm2dKernels, BackwardSkipsNullOutputsAndTreatsNullGammaAsOne) {
  const BatchNorm2dGeometry g{2, 3, 5, 5};
  const std::vector<float> x = channel_shifted_input(g, 11), grad_y = normal_values(elements(g), 12);
  std::vector<float> mean(3, kNaN), variance(3, kNaN), inv_std(3, kNaN);
  kernels::cpu::batch_norm2d_statistics(g, x.data(), mean.data(), variance.data());
  kernels::cpu::batch_norm2d_inverse_std(3, 1e-5f, variance.data(), inv_std.data());
  const std::vector<float> ones(3, 1.0f);
  std::vector<float> with_ones(static_cast<std::size_t>(elements(g)), kNaN), with_null(with_ones);
  kernels::cpu::batch_norm2d_backward(g, true, grad_y.data(), x.data(), mean.data(), inv_std.data(),
                                      ones.data(), nullptr, with_ones.data(), nullptr, nullptr);
  kernels::cpu::batch_norm2d_backward(g, true, grad_y.data(), x.data(), mean.data(), inv_std.data(), nullptr,
                                      nullptr, with_null.data(), nullptr, nullptr);
  EXPECT_EQ(with_ones, with_null);
  std::vector<float> grad_beta(3, kNaN);
  kernels::cpu::batch_norm2d_backward(g, true, grad_y.data(), x.data(), mean.data(), inv_std.data(), nullptr,
                                      nullptr, nullptr, nullptr, grad_beta.data());
  for (float value : grad_beta)
    EXPECT_FALSE(std::isnan(value));
}

TEST(BatchNorm2dKernels, FusedReluMatchesReferenceForwardAndBackward) {
  // The forward clamps at 0; the backward recomputes the forward's output from x and drops grad_y wherever
  // that is not positive. The reference does the same in double, and in evaluation, where grad_x is
  // gamma·inv_std·grad_y masked, the float kernel's zeros must fall exactly where its forward wrote zeros.
  for (BatchNorm2dGeometry g : kShapes) {
    g.relu = true;
    const std::vector<float> x = channel_shifted_input(g, 13), grad_y = normal_values(elements(g), 14);
    std::vector<float> mean(static_cast<std::size_t>(g.C), kNaN), variance(mean), inv_std(mean);
    kernels::cpu::batch_norm2d_statistics(g, x.data(), mean.data(), variance.data());
    kernels::cpu::batch_norm2d_inverse_std(g.C, 1e-5f, variance.data(), inv_std.data());
    const std::vector<float> gamma = normal_values(g.C, 15, 1.0f, 0.5f), beta = normal_values(g.C, 16);
    std::vector<float> y(static_cast<std::size_t>(elements(g)), kNaN);
    kernels::cpu::batch_norm2d_forward(g, x.data(), mean.data(), inv_std.data(), gamma.data(), beta.data(),
                                       nullptr, y.data());
    std::vector<double> y_ref(y.size());
    kernels::reference::batch_norm2d_forward(g, widen(x).data(), widen(mean).data(), widen(inv_std).data(),
                                             widen(gamma).data(), widen(beta).data(), kNoResidual,
                                             y_ref.data());
    EXPECT_TRUE(testing::all_close(y, y_ref, 1e-5, 1e-5, "fused relu forward " + name(g)));
    const auto zeros = static_cast<std::size_t>(std::count(y.begin(), y.end(), 0.0f));
    EXPECT_GT(zeros, y.size() / 5) << "the ReLU should clip a good share of " << name(g);
    EXPECT_LT(zeros, y.size() * 4 / 5) << name(g);

    for (const bool batch_statistics : {true, false}) {
      std::vector<float> grad_x(y.size(), kNaN), grad_gamma(static_cast<std::size_t>(g.C), kNaN),
          grad_beta(grad_gamma);
      kernels::cpu::batch_norm2d_backward(g, batch_statistics, grad_y.data(), x.data(), mean.data(),
                                          inv_std.data(), gamma.data(), beta.data(), grad_x.data(),
                                          grad_gamma.data(), grad_beta.data());
      std::vector<double> grad_x_ref(grad_x.size()), grad_gamma_ref(grad_gamma.size()),
          grad_beta_ref(grad_gamma.size());
      kernels::reference::batch_norm2d_backward(g, batch_statistics, widen(grad_y).data(), widen(x).data(),
                                                widen(mean).data(), widen(inv_std).data(),
                                                widen(gamma).data(), widen(beta).data(), grad_x_ref.data(),
                                                grad_gamma_ref.data(), grad_beta_ref.data());
      const std::string context =
          (batch_statistics ? "fused relu training " : "fused relu evaluation ") + name(g);
      EXPECT_TRUE(testing::all_close(grad_x, grad_x_ref, 2e-5, 1e-4, "grad_x " + context));
      EXPECT_TRUE(testing::all_close(grad_gamma, grad_gamma_ref, 1e-4, 1e-5, "grad_gamma " + context));
      EXPECT_TRUE(testing::all_close(grad_beta, grad_beta_ref, 1e-4, 1e-5, "grad_beta " + context));
      if (batch_statistics) continue;
      std::size_t disagreements = 0;
      for (std::size_t i = 0; i < y.size(); ++i)
        disagreements += (y[i] > 0.0f) != (grad_x[i] != 0.0f);
      EXPECT_EQ(disagreements, 0u) << "the backward's ReLU mask differs from the forward's output, "
                                   << name(g);
    }
  }
}

}  // namespace
}  // namespace dscope
