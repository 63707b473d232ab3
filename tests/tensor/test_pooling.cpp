// max_pool2d, avg_pool2d and global_avg_pool2d: output shapes, values on small hand-checked planes,
// gradients (inputs kept away from max-pool ties), tie-breaking, strided inputs and misuse errors.
#include <gtest/gtest.h>

#include <functional>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "tensor/ops/all.h"
#include "tests/support/expect_error.h"
#include "tests/support/gradcheck.h"

namespace dscope {
namespace {

Pool2dOptions pool(std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
  Pool2dOptions options;
  options.kernel_h = options.kernel_w = kernel;
  options.stride_h = options.stride_w = stride;
  options.padding_h = options.padding_w = padding;
  return options;
}

// Distinct values 0.1 apart in a random order, so no max-pool window holds a tie, even under the
// gradient check's ±1e-3 steps.
Tensor distinct_values(const Shape& shape, std::uint64_t seed) {
  std::vector<float> values(static_cast<std::size_t>(shape.numel()));
  std::iota(values.begin(), values.end(), 0.0f);
  Generator generator(seed);
  for (std::size_t i = values.size(); i > 1; --i)
    std::swap(values[i - 1], values[generator.below(i)]);
  for (float& value : values)
    value = 0.1f * value - 0.05f * static_cast<float>(shape.numel());
  return Tensor::from_vector(values, shape);
}

using testing::expect_error;

TEST(Pooling, OutputShapesRoundDown) {
  const Tensor x = Tensor::zeros({2, 3, 8, 7});
  EXPECT_EQ(max_pool2d(x, pool(2, 2, 0)).shape(), (Shape{2, 3, 4, 3}));
  EXPECT_EQ(max_pool2d(x, pool(3, 2, 1)).shape(), (Shape{2, 3, 4, 4}));
  EXPECT_EQ(avg_pool2d(x, pool(3, 2, 0)).shape(), (Shape{2, 3, 3, 3}));
  EXPECT_EQ(avg_pool2d(x, pool(1, 3, 0)).shape(), (Shape{2, 3, 3, 3}));
  EXPECT_EQ(global_avg_pool2d(x).shape(), (Shape{2, 3}));
}

TEST(Pooling, MaxAndAverageOfASmallPlane) {
  const Tensor x = Tensor::from_vector({1, 2, 3, 4,     //
                                        5, 6, 7, 8,     //
                                        9, 10, 11, 12,  //
                                        13, 14, 15, 16},
                                       {1, 1, 4, 4});
  EXPECT_EQ(max_pool2d(x, pool(2, 2, 0)).to_vector<float>(), (std::vector<float>{6, 8, 14, 16}));
  EXPECT_EQ(avg_pool2d(x, pool(2, 2, 0)).to_vector<float>(), (std::vector<float>{3.5f, 5.5f, 11.5f, 13.5f}));
  // 3×3 windows, stride 2, padding 1: the corner window holds {1, 2, 5, 6} and five zeros of padding.
  const std::vector<float> averages = avg_pool2d(x, pool(3, 2, 1)).to_vector<float>();
  EXPECT_FLOAT_EQ(averages[0], 14.0f / 9.0f);
  EXPECT_FLOAT_EQ(averages[3], (6 + 7 + 8 + 10 + 11 + 12 + 14 + 15 + 16) / 9.0f);
  EXPECT_EQ(max_pool2d(x, pool(3, 2, 1)).to_vector<float>(), (std::vector<float>{6, 8, 14, 16}));
  EXPECT_EQ(global_avg_pool2d(x).to_vector<float>(), (std::vector<float>{8.5f}));
}

TEST(Pooling, MaxPoolPadsWithMinusInfinity) {
  const Tensor x = Tensor::full({1, 1, 3, 3}, -5.0f);
  EXPECT_EQ(max_pool2d(x, pool(3, 2, 1)).to_vector<float>(), std::vector<float>(4, -5.0f));
}

TEST(Pooling, MaxPoolGradients) {
  EXPECT_TRUE(
      testing::gradcheck([](const std::vector<Tensor>& in) { return max_pool2d(in[0], pool(3, 2, 1)); },
                         {distinct_values({2, 2, 5, 5}, 1)}));
  // Overlapping windows (stride 1): an input that is the maximum of several windows gets their sum.
  EXPECT_TRUE(
      testing::gradcheck([](const std::vector<Tensor>& in) { return max_pool2d(in[0], pool(2, 1, 0)); },
                         {distinct_values({1, 3, 4, 5}, 2)}));
}

TEST(Pooling, MaxPoolTiesSendTheGradientToTheFirstMaximum) {
  Tensor x = Tensor::full({1, 1, 2, 2}, 1.0f);
  x.set_requires_grad(true);
  sum(max_pool2d(x, pool(2, 2, 0))).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{1, 0, 0, 0}));
}

TEST(Pooling, AveragePoolGradients) {
  Generator generator(3);
  const Tensor x = Tensor::randn({2, 2, 5, 6}, generator);
  EXPECT_TRUE(testing::gradcheck(
      [](const std::vector<Tensor>& in) { return avg_pool2d(in[0], pool(3, 2, 1)); }, {x}));
  EXPECT_TRUE(testing::gradcheck(
      [](const std::vector<Tensor>& in) { return avg_pool2d(in[0], pool(2, 1, 1)); }, {x}));
  EXPECT_TRUE(
      testing::gradcheck([](const std::vector<Tensor>& in) { return global_avg_pool2d(in[0]); }, {x}));
}

TEST(Pooling, StridedInputGivesTheSameResult) {
  const Tensor nhwc = distinct_values({2, 6, 7, 3}, 4);
  const Tensor view = nhwc.permute({0, 3, 1, 2});
  ASSERT_FALSE(view.is_contiguous());
  const Tensor dense = dense_copy(view);
  EXPECT_EQ(max_pool2d(view, pool(3, 2, 1)).to_vector<float>(),
            max_pool2d(dense, pool(3, 2, 1)).to_vector<float>());
  EXPECT_EQ(avg_pool2d(view, pool(2, 2, 0)).to_vector<float>(),
            avg_pool2d(dense, pool(2, 2, 0)).to_vector<float>());
  EXPECT_EQ(global_avg_pool2d(view).to_vector<float>(), global_avg_pool2d(dense).to_vector<float>());
}

TEST(Pooling, WithoutGradientRecordingTheValuesAreTheSame) {
  Tensor x = distinct_values({1, 2, 6, 6}, 5);
  x.set_requires_grad(true);
  const std::vector<float> recorded = max_pool2d(x, pool(3, 2, 1)).to_vector<float>();
  NoGradGuard no_grad;
  const Tensor y = max_pool2d(x, pool(3, 2, 1));
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.to_vector<float>(), recorded);
}

TEST(Pooling, MisuseErrorsNameTheOpAndShapes) {
  const Tensor x = Tensor::zeros({1, 2, 5, 5});
  expect_error<ShapeError>(
      [] {
        max_pool2d(Tensor::zeros({2, 5, 5}), pool(2, 2, 0));
      },
      {"max_pool2d", "input", "[2,5,5]"});
  expect_error<ShapeError>([] { global_avg_pool2d(Tensor::zeros({2, 5})); }, {"global_avg_pool2d", "[2,5]"});
  expect_error<DTypeError>(
      [] {
        avg_pool2d(Tensor::zeros({1, 1, 4, 4}, DType::Int64), pool(2, 2, 0));
      },
      {"avg_pool2d", "int64"});
  expect_error<ValueError>([&] { max_pool2d(x, pool(3, 2, 2)); },
                           {"max_pool2d", "half the kernel", "kernel [3,3]", "padding [2,2]", "[1,2,5,5]"});
  expect_error<ValueError>([&] { avg_pool2d(x, pool(2, 0, 0)); },
                           {"avg_pool2d", "stride [0,0]", "[1,2,5,5]"});
  expect_error<ValueError>([&] { avg_pool2d(x, pool(0, 1, 0)); }, {"avg_pool2d", "kernel [0,0]"});
  expect_error<ShapeError>([&] { max_pool2d(x, pool(7, 1, 0)); },
                           {"max_pool2d", "smaller than the kernel", "[1,2,5,5]"});
}

}  // namespace
}  // namespace dscope
