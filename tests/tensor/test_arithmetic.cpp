// Broadcasting arithmetic: values, gradients summed back over broadcast axes, and shape errors.
#include <gtest/gtest.h>

#include "tensor/ops/all.h"
#include "tests/support/gradcheck.h"

namespace dscope {
namespace {

TEST(Arithmetic, BroadcastsRowAgainstColumn) {
  const Tensor column = Tensor::from_vector({1, 2}, {2, 1});
  const Tensor row = Tensor::from_vector({10, 20, 30}, {3});
  EXPECT_EQ((column + row).to_vector<float>(), (std::vector<float>{11, 21, 31, 12, 22, 32}));
  EXPECT_EQ((column - row).shape(), (Shape{2, 3}));
  EXPECT_EQ((row * column).to_vector<float>(), (std::vector<float>{10, 20, 30, 20, 40, 60}));
  EXPECT_EQ((row / column).to_vector<float>(), (std::vector<float>{10, 20, 30, 5, 10, 15}));
}

TEST(Arithmetic, ScalarOperators) {
  const Tensor x = Tensor::from_vector({1, 2}, {2});
  EXPECT_EQ((x + 1.0f).to_vector<float>(), (std::vector<float>{2, 3}));
  EXPECT_EQ((1.0f - x).to_vector<float>(), (std::vector<float>{0, -1}));
  EXPECT_EQ((x * 3.0f).to_vector<float>(), (std::vector<float>{3, 6}));
  EXPECT_EQ((x / 2.0f).to_vector<float>(), (std::vector<float>{0.5f, 1}));
  EXPECT_EQ((-x).to_vector<float>(), (std::vector<float>{-1, -2}));
}

TEST(Arithmetic, WorksOnNonContiguousOperands) {
  const Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor t = x.transpose(0, 1);  // [3,2], strides [1,3]
  EXPECT_EQ((t + t).to_vector<float>(), (std::vector<float>{2, 8, 4, 10, 6, 12}));
  EXPECT_EQ((t * 2.0f).to_vector<float>(), (std::vector<float>{2, 8, 4, 10, 6, 12}));
}

TEST(Arithmetic, LargeTensorsUseTheParallelPath) {
  const Tensor a = Tensor::full({300, 1000}, 2.0f);
  const Tensor b = Tensor::full({1000}, 3.0f);
  const std::vector<float> y = (a * b).to_vector<float>();
  EXPECT_TRUE(std::all_of(y.begin(), y.end(), [](float v) { return v == 6.0f; }));
}

TEST(Arithmetic, GradientsWithBroadcasting) {
  Generator generator(2);
  const Tensor a = Tensor::randn({2, 3, 4}, generator);
  const Tensor b = Tensor::randn({3, 1}, generator);
  const Tensor positive = Tensor::uniform({4}, generator, 0.5f, 2.0f);
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return in[0] + in[1]; }, {a, b}));
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return in[0] - in[1]; }, {a, b}));
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return in[0] * in[1]; }, {a, b}));
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return in[0] / in[1]; }, {a, positive}));
  EXPECT_TRUE(
      testing::gradcheck([](const std::vector<Tensor>& in) { return -(in[0] * 2.0f + 1.0f) / 4.0f; }, {a}));
}

TEST(Arithmetic, ShapeMismatchNamesTheOpAndBothShapes) {
  try {
    Tensor::zeros({2, 3}) + Tensor::zeros({4});
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("add"), std::string::npos) << message;
    EXPECT_NE(message.find("[2,3]"), std::string::npos) << message;
    EXPECT_NE(message.find("[4]"), std::string::npos) << message;
  }
}

TEST(Arithmetic, WrongDtypeIsRejected) {
  EXPECT_THROW(Tensor::zeros({2}) * Tensor::zeros({2}, DType::Int64), DTypeError);
}

}  // namespace
}  // namespace dscope
