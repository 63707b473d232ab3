// matmul and linear: values against the reference GEMM, transposed views, batches, gradients, errors.
#include <gtest/gtest.h>

#include "kernels/gemm.h"
#include "tensor/ops/all.h"
#include "tests/support/compare.h"
#include "tests/support/gradcheck.h"

namespace dscope {
namespace {

std::vector<double> reference_product(const Tensor& a, const Tensor& b) {
  const std::vector<float> av = a.contiguous().to_vector<float>(), bv = b.contiguous().to_vector<float>();
  const std::vector<double> ad(av.begin(), av.end()), bd(bv.begin(), bv.end());
  kernels::GemmGeometry g;
  g.M = a.size(0), g.K = a.size(1), g.N = b.size(1);
  g.lda = g.K, g.ldb = g.N, g.ldc = g.N;
  std::vector<double> c(static_cast<std::size_t>(g.M * g.N));
  kernels::reference::gemm<double>(g, 1.0, ad.data(), bd.data(), 0.0, c.data());
  return c;
}

TEST(Matmul, MatchesTheReferenceIncludingTransposedViews) {
  Generator generator(9);
  const Tensor a = Tensor::randn({37, 19}, generator);
  const Tensor b = Tensor::randn({19, 23}, generator);
  EXPECT_TRUE(
      testing::all_close(matmul(a, b).to_vector<float>(), reference_product(a, b), 1e-4, 1e-4, "matmul"));
  const Tensor at = Tensor::randn({19, 37}, generator).transpose(0, 1);
  const Tensor bt = Tensor::randn({23, 19}, generator).transpose(0, 1);
  EXPECT_TRUE(testing::all_close(matmul(at, bt).to_vector<float>(), reference_product(at, bt), 1e-4, 1e-4,
                                 "matmul of transposed views"));
  const Tensor sliced = Tensor::randn({37, 40}, generator).narrow(1, 3, 19);  // leading dimension 40
  EXPECT_TRUE(testing::all_close(matmul(sliced, b).to_vector<float>(), reference_product(sliced, b), 1e-4,
                                 1e-4, "matmul of a column slice"));
}

TEST(Matmul, Batched) {
  Generator generator(10);
  const Tensor a = Tensor::randn({3, 4, 5}, generator);
  const Tensor b = Tensor::randn({3, 5, 2}, generator);
  const Tensor y = matmul(a, b);
  EXPECT_EQ(y.shape(), (Shape{3, 4, 2}));
  for (std::int64_t batch = 0; batch < 3; ++batch) {
    const Tensor expected = matmul(a.narrow(0, batch, 1).squeeze(0), b.narrow(0, batch, 1).squeeze(0));
    EXPECT_EQ(y.narrow(0, batch, 1).squeeze(0).to_vector<float>(), expected.to_vector<float>());
  }
}

TEST(Matmul, Gradients) {
  Generator generator(12);
  const Tensor a = Tensor::randn({4, 6}, generator);
  const Tensor b = Tensor::randn({6, 3}, generator);
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b}));
  const Tensor batch_a = Tensor::randn({2, 3, 4}, generator);
  const Tensor batch_b = Tensor::randn({2, 4, 2}, generator);
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
                                 {batch_a, batch_b}));
}

TEST(Linear, ValuesAndGradients) {
  const Tensor x = Tensor::from_vector({1, 2}, {1, 2});
  const Tensor w = Tensor::from_vector({1, 0, 0, 1, 1, 1}, {3, 2});
  const Tensor bias = Tensor::from_vector({0.5f, 0, -1}, {3});
  EXPECT_EQ(linear(x, w, bias).to_vector<float>(), (std::vector<float>{1.5f, 2, 2}));
  EXPECT_EQ(linear(x, w).to_vector<float>(), (std::vector<float>{1, 2, 3}));
  Generator generator(13);
  EXPECT_TRUE(testing::gradcheck(
      [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
      {Tensor::randn({5, 4}, generator), Tensor::randn({3, 4}, generator), Tensor::randn({3}, generator)}));
}

TEST(Matmul, ShapeErrorsNameBothOperands) {
  try {
    matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5}));
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("matmul"), std::string::npos);
    EXPECT_NE(message.find("[2,3]"), std::string::npos) << message;
    EXPECT_NE(message.find("[4,5]"), std::string::npos) << message;
  }
  EXPECT_THROW(matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({4, 5})), ShapeError);
  EXPECT_THROW(linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 2})), ShapeError);
  EXPECT_THROW(linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}), Tensor::zeros({3})), ShapeError);
}

}  // namespace
}  // namespace dscope
