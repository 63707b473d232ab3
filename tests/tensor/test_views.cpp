// Views share storage and carry gradients back to the viewed tensor's geometry.
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

TEST(Views, ReshapeSharesStorageAndInfersOneExtent) {
  const Tensor x = iota({2, 3});
  const Tensor y = x.reshape({3, -1});
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  EXPECT_EQ(y.impl()->storage, x.impl()->storage);
  EXPECT_THROW(x.reshape({4, -1}), ShapeError);
  EXPECT_THROW(x.reshape({-1, -1}), ShapeError);
  EXPECT_THROW(x.reshape({7}), ShapeError);
}

TEST(Views, PermuteAndTransposeMoveStridesNotData) {
  const Tensor x = iota({2, 3, 4});
  const Tensor p = x.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Strides{1, 12, 4}));
  EXPECT_FALSE(p.is_contiguous());
  const std::vector<float> dense = p.contiguous().to_vector<float>();
  EXPECT_FLOAT_EQ(dense[1], 4.0f);  // p[0,0,1] = x[0,1,0]
  EXPECT_EQ(x.transpose(0, -1).shape(), (Shape{4, 3, 2}));
  EXPECT_THROW(x.permute({0, 0, 1}), ShapeError);
  EXPECT_THROW(x.permute({0, 1}), ShapeError);
}

TEST(Views, ViewRefusesNonContiguousButReshapeCopies) {
  const Tensor t = iota({2, 3}).transpose(0, 1);
  EXPECT_THROW(t.view({6}), ShapeError);
  EXPECT_EQ(t.reshape({6}).to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(Views, NarrowSelectsASlice) {
  const Tensor x = iota({3, 4});
  const Tensor s = x.narrow(1, 1, 2);
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{1, 2, 5, 6, 9, 10}));
  EXPECT_THROW(x.narrow(1, 3, 2), ShapeError);
  EXPECT_THROW(x.narrow(2, 0, 1), ShapeError);
}

TEST(Views, ExpandBroadcastsWithZeroStride) {
  const Tensor x = iota({3, 1});
  const Tensor e = x.expand({2, 3, 4});
  EXPECT_EQ(e.strides(), (Strides{0, 1, 0}));
  EXPECT_EQ(e.contiguous().to_vector<float>()[5], 1.0f);
  EXPECT_THROW(x.expand({2, 2}), ShapeError);
  EXPECT_THROW(x.expand({4}), ShapeError);
}

TEST(Views, FlattenUnsqueezeSqueeze) {
  const Tensor x = iota({2, 3, 4});
  EXPECT_EQ(x.flatten().shape(), (Shape{24}));
  EXPECT_EQ(x.flatten(1).shape(), (Shape{2, 12}));
  EXPECT_EQ(x.unsqueeze(1).shape(), (Shape{2, 1, 3, 4}));
  EXPECT_EQ(x.unsqueeze(-1).shape(), (Shape{2, 3, 4, 1}));
  EXPECT_EQ(x.unsqueeze(0).squeeze(0).shape(), x.shape());
  EXPECT_THROW(x.squeeze(0), ShapeError);
}

TEST(Views, GradientsFlowBackThroughEveryView) {
  Generator generator(11);
  const Tensor x = Tensor::randn({2, 3, 4}, generator);
  EXPECT_TRUE(testing::gradcheck(
      [](const std::vector<Tensor>& in) {
        const Tensor& t = in[0];
        return t.permute({2, 0, 1}).reshape({4, 6}).narrow(1, 1, 4).transpose(0, 1).contiguous().flatten();
      },
      {x}));
  const Tensor column = Tensor::randn({3, 1}, generator);
  EXPECT_TRUE(testing::gradcheck(
      [](const std::vector<Tensor>& in) {
        return in[0].expand({2, 3, 5}).unsqueeze(0).squeeze(0);
      },
      {column}));
}

}  // namespace
}  // namespace dscope
