// concat: values, gradients split back into slices, and errors.
#include <gtest/gtest.h>

#include "tensor/ops/all.h"
#include "tests/support/gradcheck.h"

namespace dscope {
namespace {

TEST(Concat, JoinsAlongAnAxis) {
  const Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  const Tensor b = Tensor::from_vector({5, 6}, {2, 1});
  EXPECT_EQ(concat({a, b}, 1).to_vector<float>(), (std::vector<float>{1, 2, 5, 3, 4, 6}));
  EXPECT_EQ(concat({a, a}, 0).shape(), (Shape{4, 2}));
  const Tensor labels = concat({Tensor::from_int64({1}, {1}), Tensor::from_int64({2, 3}, {2})}, 0);
  EXPECT_EQ(labels.to_vector<std::int64_t>(), (std::vector<std::int64_t>{1, 2, 3}));
}

TEST(Concat, Gradients) {
  Generator generator(14);
  EXPECT_TRUE(testing::gradcheck(
      [](const std::vector<Tensor>& in) {
        return concat({in[0], in[1], in[0]}, -2);
      },
      {Tensor::randn({2, 3, 2}, generator), Tensor::randn({2, 1, 2}, generator)}));
}

TEST(Concat, Errors) {
  EXPECT_THROW(concat({}, 0), ShapeError);
  EXPECT_THROW(concat({Tensor::zeros({2, 2}), Tensor::zeros({3, 3})}, 0), ShapeError);
  EXPECT_THROW(concat({Tensor::zeros({2}), Tensor::zeros({2, 1})}, 0), ShapeError);
  EXPECT_THROW(concat({Tensor::zeros({2}), Tensor::zeros({2}, DType::Int64)}, 0), DTypeError);
}

}  // namespace
}  // namespace dscope
