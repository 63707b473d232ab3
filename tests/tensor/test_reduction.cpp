// sum, mean and sum_to over all axes and axis sets, with keepdim; gradients and errors.
#include <gtest/gtest.h>

#include "tensor/ops/all.h"
#include "tests/support/gradcheck.h"

namespace dscope {
namespace {

Tensor iota(const Shape& shape) {
  std::vector<float> values(static_cast<std::size_t>(shape.numel()));
  for (std::size_t i = 0; i < values.size(); ++i)
    values[i] = static_cast<float>(i);
  return Tensor::from_vector(values, shape);
}

TEST(Reduction, SumOverAxes) {
  const Tensor x = iota({2, 3, 4});
  EXPECT_FLOAT_EQ(sum(x).item<float>(), 276.0f);
  EXPECT_EQ(sum(x).rank(), 0);
  EXPECT_EQ(sum(x, {1}).shape(), (Shape{2, 4}));
  EXPECT_EQ(sum(x, {1}).to_vector<float>(), (std::vector<float>{12, 15, 18, 21, 48, 51, 54, 57}));
  EXPECT_EQ(sum(x, {0, 2}, true).shape(), (Shape{1, 3, 1}));
  EXPECT_EQ(sum(x, {0, 2}).to_vector<float>(), (std::vector<float>{60, 92, 124}));
  EXPECT_EQ(sum(x, {-1}).to_vector<float>(), (std::vector<float>{6, 22, 38, 54, 70, 86}));
}

TEST(Reduction, MeanAndSumOfViews) {
  const Tensor x = iota({2, 3});
  EXPECT_EQ(mean(x, {0}).to_vector<float>(), (std::vector<float>{1.5f, 2.5f, 3.5f}));
  EXPECT_EQ(sum(x.transpose(0, 1), {1}).to_vector<float>(), (std::vector<float>{3, 5, 7}));
}

TEST(Reduction, LongSumsStayAccurate) {
  // 2^24 + 1 is not representable in float; accumulating a million ones in float drifts.
  const Tensor ones = Tensor::ones({1 << 20});
  EXPECT_FLOAT_EQ(sum(ones).item<float>(), static_cast<float>(1 << 20));
  EXPECT_FLOAT_EQ(mean(Tensor::full({1000, 1000}, 0.1f)).item<float>(), 0.1f);
}

TEST(Reduction, SumToUndoesBroadcasting) {
  const Tensor x = iota({2, 3, 4});
  EXPECT_EQ(sum_to(x, {3, 1}).shape(), (Shape{3, 1}));
  EXPECT_EQ(sum_to(x, {3, 1}).to_vector<float>(), (std::vector<float>{60, 92, 124}));
  EXPECT_THROW(sum_to(x, {5}), ShapeError);
}

TEST(Reduction, Gradients) {
  Generator generator(8);
  const Tensor x = Tensor::randn({3, 4, 5}, generator);
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return sum(in[0]); }, {x}));
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return sum(in[0], {0, 2}); }, {x}));
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return mean(in[0], {1}, true); }, {x}));
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return mean(in[0]); }, {x}));
}

TEST(Reduction, BadAxesAreRejected) {
  const Tensor x = Tensor::zeros({2, 3});
  EXPECT_THROW(sum(x, {2}), ShapeError);
  EXPECT_THROW(sum(x, {0, 0}), ShapeError);
  EXPECT_THROW(mean(Tensor::zeros({0, 3}), {0}), ShapeError);
}

}  // namespace
}  // namespace dscope
