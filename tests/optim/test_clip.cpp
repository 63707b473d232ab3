// Gradient clipping by global norm: norms worked by hand, PyTorch's scaling rule (scale by
// max_norm / (norm + 1e-6) only when that is below 1), parameters without a gradient, the threaded sum of a
// large gradient, and misuse.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "optim/clip.h"
#include "tests/support/compare.h"

namespace dscope {
namespace {

using optim::clip_grad_norm;

// A parameter of the gradient's shape holding that gradient.
Tensor with_gradient(const std::vector<float>& grad) {
  const Shape shape{static_cast<std::int64_t>(grad.size())};
  Tensor param = Tensor::zeros(shape);
  param.set_requires_grad(true);
  param.set_grad(Tensor::from_vector(grad, shape));
  return param;
}

TEST(ClipGradNorm, ScalesAllGradientsByOneFactor) {
  // The global norm of [3, 4] and [12] is sqrt(9 + 16 + 144) = 13; max_norm 6.5 halves every element.
  const Tensor a = with_gradient({3.0f, 4.0f});
  const Tensor b = with_gradient({12.0f});
  EXPECT_FLOAT_EQ(clip_grad_norm({a, b}, 6.5f), 13.0f);
  const double scale = 6.5 / (13.0 + 1e-6);
  EXPECT_TRUE(testing::all_close(a.grad().to_vector<float>(), std::vector<double>{3 * scale, 4 * scale}, 0,
                                 1e-6, "a"));
  EXPECT_TRUE(testing::all_close(b.grad().to_vector<float>(), std::vector<double>{12 * scale}, 0, 1e-6, "b"));
  // The clipped gradients have norm max_norm (less the 1e-6 guard), so clipping again scales them by a
  // factor within 1e-6 of 1.
  EXPECT_NEAR(clip_grad_norm({a, b}, 6.5f), 6.5f, 1e-5f);
  EXPECT_NEAR(a.grad().to_vector<float>()[0], 3 * scale, 1e-6);
}

TEST(ClipGradNorm, GradientsWithinTheLimitAreUntouched) {
  const Tensor a = with_gradient({3.0f, -4.0f});
  EXPECT_FLOAT_EQ(clip_grad_norm({a}, 20.0f), 5.0f);
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{3.0f, -4.0f}));
}

TEST(ClipGradNorm, ParametersWithoutGradientAreSkipped) {
  Tensor no_grad = Tensor::ones({3});
  no_grad.set_requires_grad(true);
  const Tensor a = with_gradient({0.0f, 6.0f, 8.0f});
  EXPECT_FLOAT_EQ(clip_grad_norm({no_grad, a}, 5.0f), 10.0f);
  EXPECT_FALSE(no_grad.grad().defined());
  EXPECT_NEAR(a.grad().to_vector<float>()[2], 4.0f, 1e-5f);
  EXPECT_EQ(clip_grad_norm({no_grad}, 1.0f), 0.0f);
  EXPECT_EQ(clip_grad_norm({}, 1.0f), 0.0f);
}

TEST(ClipGradNorm, LargeGradientNormIsExact) {
  // 200,001 elements take the threaded path of the sum of squares. Values k/1000 for k = −100,000..100,000:
  // Σ (k/1000)² = 2 · (n(n+1)(2n+1)/6) / 10⁶ with n = 100,000.
  constexpr int kHalf = 100000;
  std::vector<float> values;
  for (int k = -kHalf; k <= kHalf; ++k)
    values.push_back(static_cast<float>(k) / 1000.0f);
  double expected = 0.0;
  for (const float v : values)
    expected += static_cast<double>(v) * static_cast<double>(v);
  const double n = kHalf;
  EXPECT_NEAR(expected, 2.0 * n * (n + 1) * (2 * n + 1) / 6.0 / 1e6, 1e-3 * expected);
  const Tensor a = with_gradient(values);
  EXPECT_NEAR(clip_grad_norm({a}, 1e9f), std::sqrt(expected), 1e-6 * std::sqrt(expected));
}

TEST(ClipGradNorm, MaxNormMustBePositive) {
  const Tensor a = with_gradient({1.0f});
  for (const float max_norm : {0.0f, -1.0f, NAN, INFINITY}) {
    try {
      clip_grad_norm({a}, max_norm);
      ADD_FAILURE() << "max_norm " << max_norm << " accepted";
    } catch (const ValueError& error) {
      EXPECT_NE(std::string(error.what()).find("max_norm"), std::string::npos) << error.what();
    }
  }
}

}  // namespace
}  // namespace dscope
