// relu, sigmoid, add_relu, exp and log: values and gradients.
#include <gtest/gtest.h>

#include <cmath>

#include "tensor/ops/all.h"
#include "tests/support/gradcheck.h"

namespace dscope {
namespace {

// Values kept at least 0.05 away from relu's kink at 0, where the derivative is undefined.
Tensor away_from_zero(const Shape& shape, Generator& generator) {
  std::vector<float> values = Tensor::randn(shape, generator).to_vector<float>();
  for (float& v : values)
    v = v >= 0 ? v + 0.05f : v - 0.05f;
  return Tensor::from_vector(values, shape);
}

TEST(Activation, Values) {
  const Tensor x = Tensor::from_vector({-2, 0, 3}, {3});
  EXPECT_EQ(relu(x).to_vector<float>(), (std::vector<float>{0, 0, 3}));
  const std::vector<float> s = sigmoid(Tensor::from_vector({0, -100, 100}, {3})).to_vector<float>();
  EXPECT_FLOAT_EQ(s[0], 0.5f);
  EXPECT_NEAR(s[1], 0.0f, 1e-30);  // no overflow for large negative inputs
  EXPECT_FLOAT_EQ(s[2], 1.0f);
  EXPECT_NEAR(exp(Tensor::scalar(1.0f)).item<float>(), std::exp(1.0f), 1e-6);
  EXPECT_NEAR(log(Tensor::scalar(2.0f)).item<float>(), std::log(2.0f), 1e-6);
  const Tensor a = Tensor::from_vector({-2, 1, 3, 0.5f}, {2, 2}),
               b = Tensor::from_vector({1, -3, 1, -0.5f}, {2, 2});
  EXPECT_EQ(add_relu(a, b).to_vector<float>(), (std::vector<float>{0, 0, 4, 0}));
}

TEST(Activation, Gradients) {
  Generator generator(4);
  const Tensor x = away_from_zero({3, 5}, generator);
  const Tensor positive = Tensor::uniform({3, 5}, generator, 0.5f, 3.0f);
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return relu(in[0]); }, {x}));
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return sigmoid(in[0]); }, {x}));
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return exp(in[0]); }, {x}));
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return log(in[0]); }, {positive}));
  // a + b stays at least 0.01 away from the kink: b moves a by less than the 0.05 that a keeps from it.
  const Tensor shift = Tensor::uniform({3, 5}, generator, -0.04f, 0.04f);
  EXPECT_TRUE(
      testing::gradcheck([](const std::vector<Tensor>& in) { return add_relu(in[0], in[1]); }, {x, shift}));
}

TEST(Activation, AddReluEqualsReluOfTheSumAndChecksShapes) {
  Generator generator(5);
  const Tensor a = Tensor::randn({2, 3, 4}, generator), b = Tensor::randn({2, 3, 4}, generator);
  EXPECT_EQ(add_relu(a, b).to_vector<float>(), relu(a + b).to_vector<float>());
  EXPECT_THROW(add_relu(a, Tensor::randn({3, 4}, generator)), ShapeError);  // no broadcasting
}

TEST(Activation, WorksOnViews) {
  const Tensor x = Tensor::from_vector({-1, 2, -3, 4}, {2, 2}).transpose(0, 1);
  EXPECT_EQ(relu(x).to_vector<float>(), (std::vector<float>{0, 0, 2, 4}));
  EXPECT_EQ(add_relu(x, x).to_vector<float>(), (std::vector<float>{0, 0, 4, 8}));
}

}  // namespace
}  // namespace dscope
