// dropout: the identity in evaluation, the kept fraction and expected value in training, reproducible masks,
// the mask against the kernel's specification, gradients, and misuse errors.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "kernels/dropout.h"
#include "tensor/ops/all.h"
#include "tests/support/expect_error.h"
#include "tests/support/gradcheck.h"

namespace dscope {
namespace {

using testing::expect_error;

TEST(Dropout, EvaluationAndZeroProbabilityReturnTheInputAndDrawNothing) {
  Generator generator(1);
  const Tensor x = Tensor::randn({3, 4}, generator);
  Generator used(7);
  EXPECT_TRUE(dropout(x, 0.5f, /*training=*/false, used).same(x));
  EXPECT_TRUE(dropout(x, 0.0f, /*training=*/true, used).same(x));
  Generator fresh(7);
  EXPECT_EQ(used.next_u64(), fresh.next_u64());
}

TEST(Dropout, KeepsAboutOneMinusPAndPreservesTheMean) {
  const float p = 0.3f;
  Generator generator(2);
  const std::vector<float> y = dropout(Tensor::ones({400, 500}), p, true, generator).to_vector<float>();
  std::int64_t kept = 0;
  double total = 0.0;
  for (float value : y) {
    if (value != 0.0f) {
      ++kept;
      EXPECT_FLOAT_EQ(value, 1.0f / (1.0f - p));
    }
    total += value;
  }
  // 200,000 draws: the kept fraction's standard deviation is about 0.001, the mean's about 0.0015.
  EXPECT_NEAR(static_cast<double>(kept) / static_cast<double>(y.size()), 1.0 - p, 0.01);
  EXPECT_NEAR(total / static_cast<double>(y.size()), 1.0, 0.01);
}

TEST(Dropout, SameSeedGivesTheSameMask) {
  const Tensor x = Tensor::ones({64, 33});
  Generator a(11), b(11), c(12);
  const std::vector<float> first = dropout(x, 0.5f, true, a).to_vector<float>();
  EXPECT_EQ(first, dropout(x, 0.5f, true, b).to_vector<float>());
  EXPECT_NE(first, dropout(x, 0.5f, true, c).to_vector<float>());
  EXPECT_NE(first, dropout(x, 0.5f, true, a).to_vector<float>()) << "the next call must draw a new mask";
}

TEST(Dropout, MaskFollowsTheKernelSpecification) {
  // Large enough for the mask kernel to run in parallel: the result must not depend on the threads.
  const float p = 0.25f;
  const std::int64_t n = 50000;
  Generator generator(13);
  const std::uint64_t seed = Generator(13).next_u64();
  const std::vector<float> y = dropout(Tensor::ones({n}), p, true, generator).to_vector<float>();
  std::int64_t mismatches = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float expected = kernels::dropout_uniform(seed, i) < p ? 0.0f : 1.0f / (1.0f - p);
    if (y[static_cast<std::size_t>(i)] != expected) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(Dropout, Gradients) {
  Generator generator(3);
  const Tensor x = Tensor::randn({4, 10}, generator);
  EXPECT_TRUE(testing::gradcheck(
      [](const std::vector<Tensor>& in) {
        Generator same_mask_every_call(5);
        return dropout(in[0], 0.4f, true, same_mask_every_call);
      },
      {x}));
}

TEST(Dropout, BackwardUsesTheForwardMask) {
  Tensor x = Tensor::ones({8, 8});
  x.set_requires_grad(true);
  Generator generator(6);
  const Tensor y = dropout(x, 0.5f, true, generator);
  sum(y).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), y.to_vector<float>());  // both are the mask, since x is ones
}

TEST(Dropout, StridedInputIsMaskedInLogicalOrder) {
  Generator values(8);
  const Tensor x = Tensor::randn({5, 7}, values);
  Generator a(9), b(9);
  EXPECT_EQ(dropout(x.transpose(0, 1), 0.5f, true, a).to_vector<float>(),
            dropout(dense_copy(x.transpose(0, 1)), 0.5f, true, b).to_vector<float>());
}

TEST(Dropout, ProbabilityOutsideItsRangeIsAnError) {
  const Tensor x = Tensor::ones({2, 3});
  expect_error<ValueError>([&] { dropout(x, 1.0f, true); }, {"dropout", "p", "[0, 1)", "[2,3]"});
  expect_error<ValueError>([&] { dropout(x, -0.1f, false); }, {"dropout", "-0.1"});
  expect_error<ValueError>([&] { dropout(x, std::numeric_limits<float>::quiet_NaN(), true); }, {"dropout"});
  expect_error<DTypeError>([] { dropout(Tensor::zeros({2}, DType::Int64), 0.5f, true); },
                           {"dropout", "int64"});
}

}  // namespace
}  // namespace dscope
