// cross_entropy: hand-computed values for two samples, the fused op against a composite oracle built from
// log_softmax (every combination of class weights, label smoothing and reduction), gradient checks of the
// same combinations, non-contiguous logits, and misuse errors that name the argument and the shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "tensor/ops/all.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"

namespace dscope {
namespace {

Tensor leaf(const std::vector<float>& values, const Shape& shape) {
  Tensor x = Tensor::from_vector(values, shape);
  x.set_requires_grad(true);
  return x;
}

CrossEntropyOptions make_options(const std::vector<float>& weights, float label_smoothing,
                                 Reduction reduction) {
  CrossEntropyOptions options;
  if (!weights.empty())
    options.class_weights = Tensor::from_vector(weights, {static_cast<std::int64_t>(weights.size())});
  options.label_smoothing = label_smoothing;
  options.reduction = reduction;
  return options;
}

// The definition spelled out with other ops: −Σ_i Σ_c q_ic · log_softmax(z)_ic, divided for Mean by
// Σ_i w[t_i], with q_ic = (1−ε)·w[t_i]·[c = t_i] + ε/classes·w[c] (PyTorch's definition).
Tensor composite_cross_entropy(const Tensor& logits, const std::vector<std::int64_t>& targets,
                               const std::vector<float>& weights, float smoothing, Reduction reduction) {
  const std::int64_t N = logits.size(0), classes = logits.size(1);
  std::vector<float> q(static_cast<std::size_t>(N * classes));
  double denominator = 0.0;
  for (std::int64_t i = 0; i < N; ++i) {
    const std::int64_t target = targets[static_cast<std::size_t>(i)];
    const auto weight = [&](std::int64_t c) {
      return weights.empty() ? 1.0f : weights[static_cast<std::size_t>(c)];
    };
    for (std::int64_t c = 0; c < classes; ++c)
      q[static_cast<std::size_t>(i * classes + c)] = smoothing / static_cast<float>(classes) * weight(c) +
                                                     (c == target ? (1.0f - smoothing) * weight(c) : 0.0f);
    denominator += weight(target);
  }
  const Tensor total = -sum(Tensor::from_vector(q, {N, classes}) * log_softmax(logits, 1));
  return reduction == Reduction::Mean ? total / static_cast<float>(denominator) : total;
}

TEST(CrossEntropy, HandComputedTwoSamples) {
  // Sample 0: logits [1,2,3], target 2: loss = log(e + e² + e³) − 3 = log(1 + e⁻¹ + e⁻²).
  // Sample 1: logits [1,1,1], target 0: loss = log 3.
  Tensor logits = leaf({1, 2, 3, 1, 1, 1}, {2, 3});
  const Tensor targets = Tensor::from_int64({2, 0}, {2});
  const double loss0 = std::log(1.0 + std::exp(-1.0) + std::exp(-2.0)), loss1 = std::log(3.0);
  EXPECT_NEAR(loss0, 0.4076059644, 1e-9);
  Tensor loss = cross_entropy(logits, targets);
  EXPECT_EQ(loss.rank(), 0);
  EXPECT_NEAR(loss.item<float>(), (loss0 + loss1) / 2, 1e-6);
  loss.backward();
  // grad = (softmax − one_hot) / N.
  const double s = 1.0 + std::exp(1.0) + std::exp(2.0);
  const std::vector<double> expected = {
      1 / s / 2, std::exp(1.0) / s / 2, (std::exp(2.0) / s - 1) / 2, (1.0 / 3 - 1) / 2, 1.0 / 6, 1.0 / 6};
  EXPECT_TRUE(testing::all_close(logits.grad().to_vector<float>(), expected, 1e-6, 1e-6, "grad_logits"));

  // Sum, and weights [1, 2, 3]: Mean divides Σ w[t_i]·loss_i by w[2] + w[0] = 4.
  EXPECT_NEAR(cross_entropy(logits, targets, make_options({}, 0.0f, Reduction::Sum)).item<float>(),
              loss0 + loss1, 1e-6);
  EXPECT_NEAR(cross_entropy(logits, targets, make_options({1, 2, 3}, 0.0f, Reduction::Mean)).item<float>(),
              (3 * loss0 + 1 * loss1) / 4, 1e-6);
  // Smoothing 0.3 without weights: target 0.8 on the label and 0.1 elsewhere.
  const double smoothed0 = 0.8 * loss0 + 0.1 * (loss0 + 2) + 0.1 * (loss0 + 1);
  EXPECT_NEAR(cross_entropy(logits, targets, make_options({}, 0.3f, Reduction::Mean)).item<float>(),
              (smoothed0 + loss1) / 2, 1e-6);
}

struct Variant {
  std::vector<float> weights;
  float label_smoothing;
  Reduction reduction;
  std::string name;
};

const std::vector<Variant> kVariants = {
    {{}, 0.0f, Reduction::Mean, "plain mean"},
    {{}, 0.0f, Reduction::Sum, "plain sum"},
    {{0.5f, 2.0f, 1.0f, 0.25f, 3.0f}, 0.0f, Reduction::Mean, "weighted mean"},
    {{0.5f, 2.0f, 1.0f, 0.25f, 3.0f}, 0.0f, Reduction::Sum, "weighted sum"},
    {{}, 0.1f, Reduction::Mean, "smoothed mean"},
    {{}, 0.1f, Reduction::Sum, "smoothed sum"},
    {{0.5f, 2.0f, 1.0f, 0.25f, 3.0f}, 0.2f, Reduction::Mean, "weighted smoothed mean"},
    {{0.5f, 2.0f, 1.0f, 0.25f, 3.0f}, 0.2f, Reduction::Sum, "weighted smoothed sum"},
};

const std::vector<std::int64_t> kTargets = {3, 0, 4, 4, 1, 2};

TEST(CrossEntropy, MatchesCompositeOracle) {
  Generator generator(31);
  const Tensor values = Tensor::randn({6, 5}, generator, 0.0f, 2.0f);
  const Tensor targets = Tensor::from_int64(kTargets, {6});
  for (const Variant& variant : kVariants) {
    Tensor fused_logits = dense_copy(values).set_requires_grad(true);
    Tensor composite_logits = dense_copy(values).set_requires_grad(true);
    const Tensor fused = cross_entropy(
        fused_logits, targets, make_options(variant.weights, variant.label_smoothing, variant.reduction));
    const Tensor composite = composite_cross_entropy(composite_logits, kTargets, variant.weights,
                                                     variant.label_smoothing, variant.reduction);
    EXPECT_NEAR(fused.item<float>(), composite.item<float>(), 1e-5 * std::abs(composite.item<float>()))
        << variant.name;
    fused.backward();
    composite.backward();
    EXPECT_TRUE(testing::all_close(fused_logits.grad().to_vector<float>(),
                                   composite_logits.grad().to_vector<float>(), 1e-6, 1e-5, variant.name));
  }
}

TEST(CrossEntropy, GradientChecks) {
  Generator generator(32);
  const Tensor logits = Tensor::randn({6, 5}, generator);
  const Tensor targets = Tensor::from_int64(kTargets, {6});
  for (const Variant& variant : kVariants) {
    const CrossEntropyOptions options =
        make_options(variant.weights, variant.label_smoothing, variant.reduction);
    EXPECT_TRUE(testing::gradcheck(
        [&options](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1], options); },
        {logits, targets}))
        << variant.name;
  }
}

TEST(CrossEntropy, UpstreamGradientScalesTheResult) {
  Tensor logits = leaf({0.5f, -1.0f, 2.0f, 0.0f}, {2, 2});
  const Tensor targets = Tensor::from_int64({1, 0}, {2});
  const Tensor loss = cross_entropy(logits, targets) * 3.0f;
  loss.backward();
  const std::vector<float> tripled = logits.grad().to_vector<float>();
  logits.set_grad(Tensor());
  cross_entropy(logits, targets).backward();
  const std::vector<float> single = logits.grad().to_vector<float>();
  for (std::size_t i = 0; i < single.size(); ++i)
    EXPECT_NEAR(tripled[i], 3.0f * single[i], 1e-6);
}

TEST(CrossEntropy, NonContiguousLogits) {
  Generator generator(33);
  const Tensor stored = Tensor::randn({5, 6}, generator);  // classes × samples: transposed below
  const Tensor targets = Tensor::from_int64(kTargets, {6});
  const Tensor dense = dense_copy(stored.transpose(0, 1));
  EXPECT_NEAR(cross_entropy(stored.transpose(0, 1), targets).item<float>(),
              cross_entropy(dense, targets).item<float>(), 1e-6);
  EXPECT_TRUE(testing::gradcheck(
      [](const std::vector<Tensor>& in) { return cross_entropy(in[0].transpose(0, 1), in[1]); },
      {stored, targets}));
}

template <typename ErrorType>
void expect_error(const std::function<void()>& call, const std::vector<std::string>& fragments) {
  try {
    call();
    FAIL() << "expected an error containing " << fragments.front();
  } catch (const ErrorType& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("cross_entropy"), std::string::npos) << message;
    for (const std::string& fragment : fragments)
      EXPECT_NE(message.find(fragment), std::string::npos) << message;
  }
}

TEST(CrossEntropy, MisuseErrors) {
  const Tensor logits = Tensor::zeros({4, 3});
  const Tensor targets = Tensor::from_int64({0, 1, 2, 1}, {4});
  expect_error<ShapeError>([&] { cross_entropy(Tensor::zeros({3}), Tensor::from_int64({0}, {1})); }, {"[3]"});
  expect_error<DTypeError>(
      [&] {
        cross_entropy(Tensor::from_int64({0, 1}, {1, 2}), Tensor::from_int64({0}, {1}));
      },
      {"logits"});
  expect_error<DTypeError>([&] { cross_entropy(logits, Tensor::zeros({4})); }, {"targets", "int64", "[4,3]"});
  expect_error<ShapeError>(
      [&] {
        cross_entropy(logits, Tensor::from_int64({0, 1, 2}, {3}));
      },
      {"targets [3]", "logits [4,3]", "expected [4]"});
  expect_error<ValueError>(
      [&] {
        cross_entropy(logits, Tensor::from_int64({0, 1, 3, 1}, {4}));
      },
      {"targets[2] = 3", "[0, 3)", "[4,3]"});
  expect_error<ValueError>(
      [&] {
        cross_entropy(logits, Tensor::from_int64({0, -1, 2, 1}, {4}));
      },
      {"targets[1] = -1"});
  expect_error<ShapeError>(
      [&] {
        cross_entropy(logits, targets, make_options({1, 2}, 0.0f, Reduction::Mean));
      },
      {"class_weights [2]", "[4,3]", "expected [3]"});
  expect_error<ValueError>([&] { cross_entropy(logits, targets, make_options({}, 1.0f, Reduction::Mean)); },
                           {"label_smoothing", "[0, 1)"});
  expect_error<ValueError>([&] { cross_entropy(logits, targets, make_options({}, -0.1f, Reduction::Sum)); },
                           {"label_smoothing"});
}

}  // namespace
}  // namespace dscope
