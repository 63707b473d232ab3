// The CPU log-softmax and fused cross-entropy kernels against their double-precision references, over
// tables of shapes: the last axis and middle axes, lines longer than the CPU kernel's block of 256, sizes
// large enough to run in parallel, one class, class weights and label smoothing. Backward kernels write
// every element (outputs are pre-filled with NaN, which all_close counts as a mismatch).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <vector>

#include "kernels/cross_entropy.h"
#include "kernels/log_softmax.h"
#include "tensor/random.h"
#include "tests/support/compare.h"

namespace dscope {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> normal_values(std::int64_t count, Generator& generator, float mean, float stddev) {
  std::vector<float> values(static_cast<std::size_t>(count));
  for (float& value : values)
    value = mean + stddev * generator.normal();
  return values;
}

std::vector<double> to_double(const std::vector<float>& values) {
  return {values.begin(), values.end()};
}

std::string describe(const kernels::ReduceGeometry& g) {
  std::ostringstream out;
  out << "[outer " << g.outer << ", extent " << g.extent << ", inner " << g.inner << "]";
  return out.str();
}

const std::vector<kernels::ReduceGeometry> kLogSoftmaxShapes = {
    {1, 1, 1}, {3, 7, 1},    {1, 1000, 1}, {2, 5, 3},  {4, 3, 257}, {1, 6, 256},
    {3, 1, 5}, {64, 300, 1}, {2, 40, 300}, {70, 7, 1}, {2, 300, 2},
};

TEST(LogSoftmaxKernels, ForwardMatchesReference) {
  Generator generator(11);
  for (const kernels::ReduceGeometry& g : kLogSoftmaxShapes) {
    const std::int64_t count = g.outer * g.extent * g.inner;
    // A large offset and spread: without the maximum subtracted, exp would overflow float.
    const std::vector<float> x = normal_values(count, generator, 100.0f, 5.0f);
    std::vector<float> y(x.size(), kNaN);
    std::vector<double> expected(x.size());
    kernels::cpu::log_softmax_forward(g, x.data(), y.data());
    kernels::reference::log_softmax_forward(g, to_double(x).data(), expected.data());
    EXPECT_TRUE(testing::all_close(y, expected, 2e-5, 1e-5, "log_softmax_forward " + describe(g)));
  }
}

TEST(LogSoftmaxKernels, BackwardMatchesReference) {
  Generator generator(12);
  for (const kernels::ReduceGeometry& g : kLogSoftmaxShapes) {
    const std::int64_t count = g.outer * g.extent * g.inner;
    const std::vector<float> x = normal_values(count, generator, 0.0f, 2.0f);
    const std::vector<float> grad_y = normal_values(count, generator, 0.0f, 1.0f);
    std::vector<float> y(x.size());
    kernels::cpu::log_softmax_forward(g, x.data(), y.data());
    std::vector<float> grad_x(x.size(), kNaN);
    std::vector<double> expected(x.size());
    kernels::cpu::log_softmax_backward(g, grad_y.data(), y.data(), grad_x.data());
    kernels::reference::log_softmax_backward(g, to_double(grad_y).data(), to_double(y).data(),
                                             expected.data());
    EXPECT_TRUE(testing::all_close(grad_x, expected, 1e-5, 1e-5, "log_softmax_backward " + describe(g)));
  }
}

TEST(LogSoftmaxKernels, HugeLogitsStayFinite) {
  const kernels::ReduceGeometry g{1, 3, 1};
  const std::vector<float> x = {1000.0f, 1001.0f, 1002.0f};
  std::vector<float> y(3, kNaN);
  kernels::cpu::log_softmax_forward(g, x.data(), y.data());
  // log_softmax is shift-invariant: the same as for {0, 1, 2}.
  const double lse = std::log(1.0 + std::exp(1.0) + std::exp(2.0));
  EXPECT_TRUE(
      testing::all_close(y, std::vector<double>{-lse, 1.0 - lse, 2.0 - lse}, 1e-6, 1e-6, "huge logits"));
}

struct CrossEntropyCase {
  std::int64_t N, classes;
  bool weighted;
  float label_smoothing;
};

std::string describe(const CrossEntropyCase& c) {
  std::ostringstream out;
  out << "[N " << c.N << ", classes " << c.classes << (c.weighted ? ", weighted" : "") << ", smoothing "
      << c.label_smoothing << "]";
  return out.str();
}

TEST(CrossEntropyKernels, ForwardAndBackwardMatchReference) {
  const std::vector<CrossEntropyCase> cases = {
      {1, 1, false, 0.0f},   {1, 1, true, 0.2f},     {4, 2, false, 0.0f}, {5, 7, false, 0.0f},
      {5, 7, true, 0.0f},    {5, 7, false, 0.1f},    {5, 7, true, 0.3f},  {300, 64, false, 0.0f},
      {300, 64, true, 0.1f}, {3, 1000, true, 0.05f},
  };
  Generator generator(13);
  for (const CrossEntropyCase& c : cases) {
    kernels::CrossEntropyGeometry g;
    g.N = c.N, g.classes = c.classes, g.label_smoothing = c.label_smoothing;
    const std::vector<float> logits = normal_values(c.N * c.classes, generator, 30.0f, 3.0f);
    std::vector<std::int64_t> targets(static_cast<std::size_t>(c.N));
    for (std::int64_t& target : targets)
      target = static_cast<std::int64_t>(generator.below(static_cast<std::uint64_t>(c.classes)));
    std::vector<float> weights;
    for (std::int64_t k = 0; c.weighted && k < c.classes; ++k)
      weights.push_back(0.2f + 2.0f * generator.uniform());
    const float* weights_data = c.weighted ? weights.data() : nullptr;
    const std::vector<double> weights_double = to_double(weights);
    const double* weights_double_data = c.weighted ? weights_double.data() : nullptr;
    const std::vector<double> logits_double = to_double(logits);

    std::vector<float> losses(targets.size(), kNaN), target_weights(targets.size(), kNaN);
    std::vector<double> expected_losses(targets.size()), expected_target_weights(targets.size());
    kernels::cpu::cross_entropy_forward(g, logits.data(), targets.data(), weights_data, losses.data(),
                                        target_weights.data());
    kernels::reference::cross_entropy_forward(g, logits_double.data(), targets.data(), weights_double_data,
                                              expected_losses.data(), expected_target_weights.data());
    EXPECT_TRUE(
        testing::all_close(losses, expected_losses, 2e-5, 1e-5, "cross_entropy losses " + describe(c)));
    EXPECT_TRUE(testing::all_close(target_weights, expected_target_weights, 0.0, 0.0,
                                   "cross_entropy target_weights " + describe(c)));

    const float scale = 0.37f;
    const double scale_double = scale;
    std::vector<float> grad_logits(logits.size(), kNaN);
    std::vector<double> expected_grad(logits.size());
    kernels::cpu::cross_entropy_backward(g, logits.data(), targets.data(), weights_data, &scale,
                                         grad_logits.data());
    kernels::reference::cross_entropy_backward(g, logits_double.data(), targets.data(), weights_double_data,
                                               &scale_double, expected_grad.data());
    EXPECT_TRUE(testing::all_close(grad_logits, expected_grad, 1e-6, 1e-5,
                                   "cross_entropy grad_logits " + describe(c)));
  }
}

TEST(CrossEntropyKernels, ReferenceMatchesLogSoftmaxDefinition) {
  // The fused reference against its definition spelled out with the log-softmax reference:
  // ℓ = −Σ_c q_c log_softmax(z)_c with q = (1−ε)·w[t]·one_hot(t) + ε/classes·w.
  const std::vector<double> logits = {0.5, -1.0, 2.0, 0.0, 1.5, 1.5, -0.5, 3.0};
  const std::vector<std::int64_t> targets = {2, 0};
  const std::vector<double> weights = {0.5, 2.0, 1.0, 3.0};
  kernels::CrossEntropyGeometry g;
  g.N = 2, g.classes = 4, g.label_smoothing = 0.25f;
  std::vector<double> log_probabilities(logits.size());
  kernels::reference::log_softmax_forward(kernels::ReduceGeometry{2, 4, 1}, logits.data(),
                                          log_probabilities.data());
  std::vector<double> expected(2, 0.0);
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t c = 0; c < 4; ++c) {
      const double q =
          0.25 / 4 * weights[c] + (static_cast<std::int64_t>(c) == targets[i] ? 0.75 * weights[c] : 0);
      expected[i] -= q * log_probabilities[i * 4 + c];
    }
  std::vector<double> losses(2), target_weights(2);
  kernels::reference::cross_entropy_forward(g, logits.data(), targets.data(), weights.data(), losses.data(),
                                            target_weights.data());
  EXPECT_TRUE(testing::all_close(losses, expected, 1e-12, 1e-12, "reference cross_entropy"));
  EXPECT_EQ(target_weights, (std::vector<double>{1.0, 0.5}));
}

}  // namespace
}  // namespace dscope
