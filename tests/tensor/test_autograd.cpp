// The autograd engine: accumulation over shared inputs, the diamond of a residual block, explicit output
// gradients, no_grad, detach, graph freeing, and misuse errors.
#include <gtest/gtest.h>

#include "tensor/autograd/node.h"
#include "tensor/ops/all.h"
#include "tests/support/gradcheck.h"

namespace dscope {
namespace {

Tensor leaf(const std::vector<float>& values, const Shape& shape) {
  Tensor x = Tensor::from_vector(values, shape);
  x.set_requires_grad(true);
  return x;
}

TEST(Autograd, ScalarLossGivesGradientOfEachInput) {
  Tensor a = leaf({1, 2, 3}, {3});
  Tensor b = leaf({4, 5, 6}, {3});
  sum(a * b).backward();
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{4, 5, 6}));
  EXPECT_EQ(b.grad().to_vector<float>(), (std::vector<float>{1, 2, 3}));
}

TEST(Autograd, TensorUsedTwiceAccumulatesBothPaths) {
  Tensor x = leaf({3}, {1});
  sum(x * x + x).backward();  // d/dx (x² + x) = 2x + 1 = 7
  EXPECT_FLOAT_EQ(x.grad().item<float>(), 7.0f);
}

TEST(Autograd, GradientsMeetingAtANodeAreSummedWhetherDenseOrViews) {
  // Three paths into x: through a transpose (its gradient arrives as a transposed view) and two dense ones,
  // so the sum is started from a view or from a dense gradient, then added to.
  Tensor x = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor w1 = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2});
  const Tensor w2 = Tensor::from_vector({10, 20, 30, 40, 50, 60}, {2, 3});
  const Tensor w3 = Tensor::from_vector({100, 200, 300, 400, 500, 600}, {2, 3});
  (sum(x.transpose(0, 1) * w1) + sum(x * w2) + sum(x * w3)).backward();
  // w1ᵀ = [[1, 3, 5], [2, 4, 6]].
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{111, 223, 335, 442, 554, 666}));
  Tensor y = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  (sum(y * w2) + sum(y.transpose(0, 1) * w1)).backward();
  EXPECT_EQ(y.grad().to_vector<float>(), (std::vector<float>{11, 23, 35, 42, 54, 66}));
}

// Two gradients meeting at x: a fresh one (mul's) and the caller's output gradient passed on by add and two
// reshapes as views of it (new handles, shared elements). Whichever arrives first, the sum may be made in
// place in the fresh one but never in the caller's tensor.
TEST(Autograd, SummingInPlaceLeavesTheCallersGradientAlone) {
  for (const bool views_first : {true, false}) {
    Tensor x = leaf({1, 2}, {2});
    const Tensor output_gradient = Tensor::from_vector({10.0f, 100.0f}, {2});
    const Tensor passed_on = x.reshape({1, 2}).reshape({2}), scaled = x * 3.0f;
    const Tensor y = views_first ? passed_on + scaled : scaled + passed_on;
    y.backward(output_gradient);
    EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{40, 400})) << views_first;
    EXPECT_EQ(output_gradient.to_vector<float>(), (std::vector<float>{10, 100})) << views_first;
  }
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = leaf({1, 1}, {2});
  sum(x * 3.0f).backward();
  sum(x * 3.0f).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{6, 6}));
}

TEST(Autograd, ResidualDiamondMatchesFiniteDifferences) {
  // y = relu(x·W1)·W2 + x: the skip connection makes x reach the output along two paths.
  Generator generator(3);
  const Tensor x = Tensor::randn({4, 5}, generator);
  const Tensor w1 = Tensor::randn({5, 5}, generator, 0.0f, 0.5f);
  const Tensor w2 = Tensor::randn({5, 5}, generator, 0.0f, 0.5f);
  EXPECT_TRUE(testing::gradcheck(
      [](const std::vector<Tensor>& in) { return matmul(relu(matmul(in[0], in[1])), in[2]) + in[0]; },
      {x, w1, w2}));
}

TEST(Autograd, ExplicitOutputGradient) {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = x * 2.0f;
  y.backward(Tensor::from_vector({10.0f, 100.0f}, {2}));
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{20, 200}));
}

TEST(Autograd, NonScalarWithoutOutputGradientThrows) {
  Tensor x = leaf({1, 2}, {2});
  try {
    (x * 2.0f).backward();
    FAIL() << "expected AutogradError";
  } catch (const AutogradError& error) {
    EXPECT_NE(std::string(error.what()).find("[2]"), std::string::npos) << error.what();
  }
}

TEST(Autograd, OutputGradientOfWrongShapeThrows) {
  Tensor x = leaf({1, 2}, {2});
  EXPECT_THROW((x * 2.0f).backward(Tensor::ones({3})), ShapeError);
}

TEST(Autograd, NoGradRecordsNothing) {
  Tensor x = leaf({1}, {1});
  NoGradGuard no_grad;
  Tensor y = x * 2.0f;
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
  EXPECT_THROW(y.backward(), AutogradError);
}

TEST(Autograd, DetachCutsTheGraph) {
  Tensor x = leaf({2}, {1});
  Tensor y = x.detach() * x;  // only the second factor carries gradient: d/dx = detached x = 2
  sum(y).backward();
  EXPECT_FLOAT_EQ(x.grad().item<float>(), 2.0f);
}

TEST(Autograd, GraphIsFreedAfterBackwardUnlessRetained) {
  Tensor x = leaf({1, 2}, {2});
  Tensor loss = sum(x * x);
  loss.backward(Tensor(), /*retain_graph=*/true);
  loss.backward();  // second pass still possible: the first one retained the graph
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{4, 8}));
  EXPECT_THROW(loss.backward(), AutogradError);  // now it was freed
}

TEST(Autograd, SavedTensorsAreReleasedAfterBackward) {
  Tensor x = leaf({1, 2}, {2});
  Tensor intermediate = x * 3.0f;
  // mul saves its other operand for x's gradient; watch that operand's storage.
  std::weak_ptr<Storage> saved_storage = intermediate.impl()->storage;
  Tensor loss = sum(intermediate.detach() * x);
  intermediate = Tensor();
  EXPECT_FALSE(saved_storage.expired()) << "the graph should hold the saved operand until backward";
  loss.backward();
  EXPECT_TRUE(saved_storage.expired()) << "the graph kept a saved tensor alive after backward";
}

TEST(Autograd, OnlyLeavesCanBeMarked) {
  Tensor x = leaf({1}, {1});
  Tensor y = x * 2.0f;
  EXPECT_THROW(y.set_requires_grad(false), AutogradError);
  EXPECT_THROW(Tensor::zeros({2}, DType::Int64).set_requires_grad(true), DTypeError);
}

TEST(Autograd, DeepChainDoesNotOverflowTheStack) {
  Tensor x = leaf({1}, {1});
  Tensor y = x;
  for (int i = 0; i < 20000; ++i)
    y = y + 0.0f;
  sum(y).backward();
  EXPECT_FLOAT_EQ(x.grad().item<float>(), 1.0f);
}

}  // namespace
}  // namespace dscope
