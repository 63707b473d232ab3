// focal_loss: with γ = 0 it is the cross-entropy (and with α and Sum, the class-weighted cross-entropy);
// hand-computed values for γ = 2 with and without α; gradient checks; confident samples whose 1 − p_t
// underflows keep a finite loss and gradient; misuse errors name the argument and the shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "nn/focal_loss.h"
#include "tensor/ops/all.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"

namespace dscope {
namespace {

using nn::focal_loss;
using nn::FocalLossOptions;

Tensor leaf(const Tensor& value) {
  Tensor copy = dense_copy(value);
  copy.set_requires_grad(true);
  return copy;
}

FocalLossOptions make_options(float gamma, const std::vector<float>& alpha, Reduction reduction) {
  FocalLossOptions options;
  options.gamma = gamma;
  if (!alpha.empty()) options.alpha = Tensor::from_vector(alpha, {static_cast<std::int64_t>(alpha.size())});
  options.reduction = reduction;
  return options;
}

// Loss and logits gradient of both functions on the same logits agree to float32 rounding.
void expect_same_loss_and_gradient(const Tensor& logits, const std::function<Tensor(const Tensor&)>& ours,
                                   const std::function<Tensor(const Tensor&)>& theirs,
                                   const std::string& what) {
  const Tensor a = leaf(logits), b = leaf(logits);
  const Tensor loss_a = ours(a), loss_b = theirs(b);
  EXPECT_TRUE(
      testing::all_close(loss_a.to_vector<float>(), loss_b.to_vector<float>(), 1e-6, 1e-5, what + " loss"));
  loss_a.backward();
  loss_b.backward();
  EXPECT_TRUE(testing::all_close(a.grad().to_vector<float>(), b.grad().to_vector<float>(), 1e-6, 1e-5,
                                 what + " grad_logits"));
}

TEST(FocalLoss, GammaZeroIsCrossEntropy) {
  Generator generator(1);
  const Tensor logits = Tensor::randn({9, 5}, generator, 0.0f, 2.0f);
  const Tensor targets = Tensor::from_int64({0, 4, 2, 2, 1, 3, 0, 4, 1}, {9});
  for (const Reduction reduction : {Reduction::Mean, Reduction::Sum}) {
    CrossEntropyOptions plain;
    plain.reduction = reduction;
    expect_same_loss_and_gradient(
        logits, [&](const Tensor& z) { return focal_loss(z, targets, make_options(0.0f, {}, reduction)); },
        [&](const Tensor& z) { return cross_entropy(z, targets, plain); }, "gamma 0");
  }
  // With α and Sum, α_t multiplies each sample's loss exactly as cross_entropy's class weights do.
  const std::vector<float> alpha = {0.5f, 2.0f, 1.0f, 0.25f, 3.0f};
  CrossEntropyOptions weighted;
  weighted.class_weights = Tensor::from_vector(alpha, {5});
  weighted.reduction = Reduction::Sum;
  expect_same_loss_and_gradient(
      logits,
      [&](const Tensor& z) { return focal_loss(z, targets, make_options(0.0f, alpha, Reduction::Sum)); },
      [&](const Tensor& z) { return cross_entropy(z, targets, weighted); }, "gamma 0 with alpha");
}

TEST(FocalLoss, HandComputedValues) {
  // Sample 0: logits [1,2,3], target 2: p_t = 1/(1 + e⁻¹ + e⁻²). Sample 1: logits [0,0,0], target 0: p_t =
  // 1/3.
  const Tensor logits = Tensor::from_vector({1, 2, 3, 0, 0, 0}, {2, 3});
  const Tensor targets = Tensor::from_int64({2, 0}, {2});
  const double p0 = 1.0 / (1.0 + std::exp(-1.0) + std::exp(-2.0)), p1 = 1.0 / 3.0;
  const double focal0 = -std::pow(1.0 - p0, 2.0) * std::log(p0),
               focal1 = -std::pow(1.0 - p1, 2.0) * std::log(p1);

  EXPECT_NEAR(focal_loss(logits, targets).item<float>(), (focal0 + focal1) / 2.0, 1e-6);
  EXPECT_NEAR(focal_loss(logits, targets, make_options(2.0f, {}, Reduction::Sum)).item<float>(),
              focal0 + focal1, 1e-6);
  // α = [0.25, 1, 0.75]: sample 0 has α_t = 0.75, sample 1 α_t = 0.25; Mean still divides by N = 2.
  EXPECT_NEAR(
      focal_loss(logits, targets, make_options(2.0f, {0.25f, 1.0f, 0.75f}, Reduction::Mean)).item<float>(),
      (0.75 * focal0 + 0.25 * focal1) / 2.0, 1e-6);
  // γ = 0.5: a fractional power.
  EXPECT_NEAR(focal_loss(logits, targets, make_options(0.5f, {}, Reduction::Sum)).item<float>(),
              -std::sqrt(1.0 - p0) * std::log(p0) - std::sqrt(1.0 - p1) * std::log(p1), 1e-6);
}

TEST(FocalLoss, GradientsMatchFiniteDifferences) {
  Generator generator(2);
  const Tensor logits = Tensor::randn({6, 4}, generator);
  const Tensor targets = Tensor::from_int64({3, 0, 1, 1, 2, 0}, {6});
  for (const float gamma : {0.0f, 0.5f, 2.0f, 3.0f})
    for (const bool with_alpha : {false, true})
      for (const Reduction reduction : {Reduction::Mean, Reduction::Sum}) {
        const FocalLossOptions options = make_options(
            gamma, with_alpha ? std::vector<float>{0.1f, 0.4f, 0.7f, 1.5f} : std::vector<float>{}, reduction);
        EXPECT_TRUE(testing::gradcheck(
            [&](const std::vector<Tensor>& inputs) { return focal_loss(inputs[0], inputs[1], options); },
            {logits, targets}))
            << "gamma " << gamma << (with_alpha ? " with alpha" : "")
            << (reduction == Reduction::Sum ? " sum" : " mean");
      }
}

TEST(FocalLoss, ConfidentSamplesStayFinite) {
  // The target leads by 200: 1 − p_t underflows to 0 in float32. The loss is 0 and the gradient 0, not NaN.
  Tensor logits = leaf(Tensor::from_vector({200, 0, 0, 0, 1, 0}, {2, 3}));
  const Tensor targets = Tensor::from_int64({0, 1}, {2});
  for (const float gamma : {0.5f, 2.0f}) {
    const Tensor loss = focal_loss(logits, targets, make_options(gamma, {}, Reduction::Sum));
    EXPECT_TRUE(std::isfinite(loss.item<float>())) << "gamma " << gamma;
    logits.set_grad(Tensor());
    loss.backward();
    const std::vector<float> grad = logits.grad().to_vector<float>();
    for (float value : grad)
      EXPECT_TRUE(std::isfinite(value)) << "gamma " << gamma;
    for (int c = 0; c < 3; ++c)
      EXPECT_EQ(grad[static_cast<std::size_t>(c)], 0.0f) << "gamma " << gamma;
  }
}

TEST(FocalLoss, FocusesOnTheHardSamples) {
  // An easy sample (p_t ≈ 0.9) loses far more of its cross-entropy than a hard one (p_t ≈ 0.1).
  const Tensor easy = Tensor::from_vector({std::log(9.0f), 0.0f}, {1, 2});
  const Tensor hard = Tensor::from_vector({-std::log(9.0f), 0.0f}, {1, 2});
  const Tensor target = Tensor::from_int64({0}, {1});
  const float easy_ratio = focal_loss(easy, target).item<float>() / cross_entropy(easy, target).item<float>();
  const float hard_ratio = focal_loss(hard, target).item<float>() / cross_entropy(hard, target).item<float>();
  EXPECT_NEAR(easy_ratio, 0.01f, 1e-5f);  // (1 − 0.9)²
  EXPECT_NEAR(hard_ratio, 0.81f, 1e-5f);  // (1 − 0.1)²
}

std::string message_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(FocalLoss, MisuseIsANamedError) {
  const Tensor logits = Tensor::zeros({3, 4});
  const Tensor targets = Tensor::from_int64({0, 1, 2}, {3});
  EXPECT_THROW(focal_loss(Tensor::zeros({3, 4, 1}), targets), ShapeError);
  EXPECT_THROW(focal_loss(logits, Tensor::zeros({3})), DTypeError);
  EXPECT_NE(message_of([&] {
              focal_loss(logits, Tensor::from_int64({0, 1}, {2}));
            }).find("focal_loss: targets [2] do not match logits [3,4] (expected [3])"),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              focal_loss(logits, Tensor::from_int64({0, 4, 1}, {3}));
            }).find("focal_loss: targets[1] = 4 is outside [0, 4)"),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              focal_loss(logits, targets, make_options(-1.0f, {}, Reduction::Mean));
            }).find("focal_loss: gamma must be >= 0 but is -1"),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              focal_loss(logits, targets, make_options(2.0f, {1, 1, 1}, Reduction::Mean));
            }).find("focal_loss: alpha [3] does not match logits [3,4] (expected [4])"),
            std::string::npos);
}

}  // namespace
}  // namespace dscope
