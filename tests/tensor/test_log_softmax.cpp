// log_softmax and softmax ops: hand-computed values, rows of softmax summing to one, any axis and
// non-contiguous inputs, gradient checks on the last and a middle axis, and misuse errors.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "tensor/ops/all.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"

namespace dscope {
namespace {

TEST(LogSoftmax, HandComputedValues) {
  // softmax([0, ln 3]) = [1/4, 3/4], the same for a row shifted by 10.
  const Tensor x = Tensor::from_vector({0.0f, std::log(3.0f), 10.0f, 10.0f + std::log(3.0f)}, {2, 2});
  const std::vector<double> expected = {std::log(0.25), std::log(0.75), std::log(0.25), std::log(0.75)};
  EXPECT_TRUE(testing::all_close(log_softmax(x).to_vector<float>(), expected, 1e-6, 1e-6, "log_softmax"));
  EXPECT_TRUE(testing::all_close(softmax(x).to_vector<float>(), std::vector<double>{0.25, 0.75, 0.25, 0.75},
                                 1e-6, 1e-6, "softmax"));
}

TEST(LogSoftmax, SoftmaxSumsToOneAlongTheAxis) {
  Generator generator(21);
  const Tensor x = Tensor::randn({2, 3, 4}, generator, 0.0f, 3.0f);
  for (std::int64_t axis : {0, 1, 2, -1}) {
    const std::vector<float> totals = sum(softmax(x, axis), {axis}).to_vector<float>();
    EXPECT_TRUE(testing::all_close(totals, std::vector<double>(totals.size(), 1.0), 1e-6, 1e-6,
                                   "softmax sums, axis " + std::to_string(axis)));
  }
}

TEST(LogSoftmax, MiddleAxisMatchesLastAxisOfPermutedInput) {
  Generator generator(22);
  const Tensor x = Tensor::randn({2, 5, 3}, generator);
  // Axis 1 of x is the last axis of x.permute({0, 2, 1}); that view is not contiguous.
  const Tensor along_middle = log_softmax(x, 1);
  const Tensor along_last = log_softmax(x.permute({0, 2, 1}), -1).permute({0, 2, 1});
  EXPECT_TRUE(testing::all_close(along_middle.to_vector<float>(), along_last.to_vector<float>(), 1e-6, 1e-6,
                                 "log_softmax axis 1 vs permuted"));
}

TEST(LogSoftmax, GradientLastAxis) {
  Generator generator(23);
  const Tensor x = Tensor::randn({4, 6}, generator);
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return log_softmax(in[0], -1); }, {x}));
}

TEST(LogSoftmax, GradientMiddleAxis) {
  Generator generator(24);
  const Tensor x = Tensor::randn({2, 5, 3}, generator);
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return log_softmax(in[0], 1); }, {x}));
}

TEST(LogSoftmax, GradientOfSoftmaxAndOfTransposedInput) {
  Generator generator(25);
  const Tensor x = Tensor::randn({3, 4}, generator);
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return softmax(in[0], 0); }, {x}));
  EXPECT_TRUE(testing::gradcheck(
      [](const std::vector<Tensor>& in) { return log_softmax(in[0].transpose(0, 1)); }, {x}));
}

TEST(LogSoftmax, AxisOutOfRangeNamesShape) {
  const Tensor x = Tensor::zeros({2, 3});
  try {
    log_softmax(x, 2);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("log_softmax"), std::string::npos) << message;
    EXPECT_NE(message.find("[2,3]"), std::string::npos) << message;
  }
  EXPECT_THROW(log_softmax(x, -3), ShapeError);
}

TEST(LogSoftmax, RejectsInt64) {
  EXPECT_THROW(log_softmax(Tensor::from_int64({1, 2}, {2})), DTypeError);
}

}  // namespace
}  // namespace dscope
