// batch_norm2d (and batch_norm2d_relu, against relu after it): forward values in both modes, gradients
// (training and evaluation, with and without affine parameters), running statistics after two training steps
// against hand-computed values, and misuse errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "tensor/ops/all.h"
#include "tests/support/compare.h"
#include "tests/support/expect_error.h"
#include "tests/support/gradcheck.h"

namespace dscope {
namespace {

// The expected output of batch normalisation computed in double with plain loops over [N, C, H, W].
std::vector<double> normalise(const std::vector<float>& x, const Shape& shape,
                              const std::vector<double>& mean, const std::vector<double>& variance,
                              const std::vector<float>& gamma, const std::vector<float>& beta, double eps) {
  const std::int64_t C = shape[1], plane = shape[2] * shape[3];
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t c = static_cast<std::size_t>((static_cast<std::int64_t>(i) / plane) % C);
    y[i] = gamma[c] * (x[i] - mean[c]) / std::sqrt(variance[c] + eps) + beta[c];
  }
  return y;
}

// Per-channel mean and biased variance of x [N, C, H, W], in double.
void channel_statistics(const std::vector<float>& x, const Shape& shape, std::vector<double>& mean,
                        std::vector<double>& variance) {
  const std::int64_t C = shape[1], plane = shape[2] * shape[3];
  const double M = static_cast<double>(shape[0] * plane);
  mean.assign(static_cast<std::size_t>(C), 0.0);
  variance.assign(static_cast<std::size_t>(C), 0.0);
  for (std::size_t i = 0; i < x.size(); ++i)
    mean[static_cast<std::size_t>((static_cast<std::int64_t>(i) / plane) % C)] += x[i] / M;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t c = static_cast<std::size_t>((static_cast<std::int64_t>(i) / plane) % C);
    variance[c] += (x[i] - mean[c]) * (x[i] - mean[c]) / M;
  }
}

using testing::expect_error;

TEST(BatchNorm2d, TrainingNormalisesWithBatchStatistics) {
  Generator generator(1);
  const Shape shape{4, 3, 5, 5};
  const Tensor x = Tensor::randn(shape, generator, 2.0f, 3.0f);
  const std::vector<float> gamma = {0.5f, -1.0f, 2.0f}, beta = {0.0f, 1.0f, -3.0f};
  const Tensor y = batch_norm2d(x, Tensor::from_vector(gamma, {3}), Tensor::from_vector(beta, {3}), Tensor(),
                                Tensor(), /*training=*/true);
  ASSERT_EQ(y.shape(), shape);
  std::vector<double> mean, variance;
  channel_statistics(x.to_vector<float>(), shape, mean, variance);
  EXPECT_TRUE(testing::all_close(y.to_vector<float>(),
                                 normalise(x.to_vector<float>(), shape, mean, variance, gamma, beta, 1e-5),
                                 1e-5, 1e-5, "batch_norm2d training [4,3,5,5]"));
}

TEST(BatchNorm2d, RunningStatisticsAfterTwoStepsMatchHandComputedValues) {
  // [N=2, C=2, H=1, W=2]. Channel 0 sees {1,2,3,4} then {2,2,2,2}; channel 1 sees {0,0,4,4} then {-1,1,-3,3}.
  const Tensor first = Tensor::from_vector({1, 2, 0, 0, 3, 4, 4, 4}, {2, 2, 1, 2});
  const Tensor second = Tensor::from_vector({2, 2, -1, 1, 2, 2, -3, 3}, {2, 2, 1, 2});
  Tensor running_mean = Tensor::zeros({2}), running_var = Tensor::ones({2});
  batch_norm2d(first, Tensor(), Tensor(), running_mean, running_var, true, 0.1f);
  // Batch means 2.5 and 2; unbiased variances 5/3 and 16/3 (biased ones times 4/3).
  EXPECT_TRUE(testing::all_close(running_mean.to_vector<float>(), std::vector<double>{0.25, 0.2}, 1e-6, 1e-6,
                                 "running_mean after one step"));
  EXPECT_TRUE(testing::all_close(running_var.to_vector<float>(),
                                 std::vector<double>{0.9 + 0.1 * 5.0 / 3.0, 0.9 + 0.1 * 16.0 / 3.0}, 1e-6,
                                 1e-6, "running_var after one step"));
  batch_norm2d(second, Tensor(), Tensor(), running_mean, running_var, true, 0.1f);
  // Batch means 2 and 0; unbiased variances 0 and 20/3.
  const std::vector<double> expected_mean = {0.9 * 0.25 + 0.1 * 2.0, 0.9 * 0.2};
  const std::vector<double> expected_var = {0.9 * (0.9 + 0.1 * 5.0 / 3.0),
                                            0.9 * (0.9 + 0.1 * 16.0 / 3.0) + 0.1 * 20.0 / 3.0};
  EXPECT_TRUE(testing::all_close(running_mean.to_vector<float>(), expected_mean, 1e-6, 1e-6, "running_mean"));
  EXPECT_TRUE(testing::all_close(running_var.to_vector<float>(), expected_var, 1e-6, 1e-6, "running_var"));

  // Evaluation normalises with exactly these running values.
  const std::vector<float> gamma = {2.0f, 0.5f}, beta = {1.0f, -1.0f};
  const Tensor y = batch_norm2d(first, Tensor::from_vector(gamma, {2}), Tensor::from_vector(beta, {2}),
                                running_mean, running_var, /*training=*/false);
  EXPECT_TRUE(testing::all_close(
      y.to_vector<float>(),
      normalise(first.to_vector<float>(), first.shape(), expected_mean, expected_var, gamma, beta, 1e-5),
      1e-5, 1e-5, "batch_norm2d evaluation"));
  EXPECT_TRUE(testing::all_close(running_mean.to_vector<float>(), expected_mean, 1e-6, 1e-6,
                                 "evaluation must not update running_mean"));
}

TEST(BatchNorm2d, GradientsInTraining) {
  Generator generator(2);
  const Tensor x = Tensor::randn({2, 3, 3, 3}, generator, 1.0f, 2.0f);
  const Tensor weight = Tensor::randn({3}, generator, 1.0f, 0.5f);
  const Tensor bias = Tensor::randn({3}, generator);
  EXPECT_TRUE(testing::gradcheck(
      [](const std::vector<Tensor>& in) {
        return batch_norm2d(in[0], in[1], in[2], Tensor(), Tensor(), true);
      },
      {x, weight, bias}));
  // With running buffers created inside the function, so no state survives between calls.
  EXPECT_TRUE(testing::gradcheck(
      [](const std::vector<Tensor>& in) {
        return batch_norm2d(in[0], in[1], in[2], Tensor::zeros({3}), Tensor::ones({3}), true, 0.3f);
      },
      {x, weight, bias}));
}

TEST(BatchNorm2d, GradientsInTrainingWithoutAffineParameters) {
  Generator generator(3);
  const Tensor x = Tensor::randn({3, 2, 2, 3}, generator);
  EXPECT_TRUE(testing::gradcheck(
      [](const std::vector<Tensor>& in) {
        return batch_norm2d(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true);
      },
      {x}));
}

TEST(BatchNorm2d, GradientsInEvaluation) {
  Generator generator(4);
  const Tensor x = Tensor::randn({2, 3, 3, 2}, generator);
  const Tensor weight = Tensor::randn({3}, generator, 1.0f, 0.5f);
  const Tensor bias = Tensor::randn({3}, generator);
  const Tensor running_mean = Tensor::from_vector({0.5f, -0.2f, 0.1f}, {3});
  const Tensor running_var = Tensor::from_vector({2.0f, 0.5f, 1.5f}, {3});
  EXPECT_TRUE(testing::gradcheck(
      [&](const std::vector<Tensor>& in) {
        return batch_norm2d(in[0], in[1], in[2], running_mean, running_var, false);
      },
      {x, weight, bias}));
}

TEST(BatchNorm2d, EvaluationBackwardUsesTheStatisticsOfItsForward) {
  // A training step between an evaluation forward and its backward updates the running buffers in place;
  // the evaluation backward must still use the statistics its forward used.
  Generator generator(5);
  const Tensor x = Tensor::randn({2, 2, 3, 3}, generator);
  Tensor weight = Tensor::ones({2});
  weight.set_requires_grad(true);
  Tensor running_mean = Tensor::from_vector({1.0f, -1.0f}, {2}),
         running_var = Tensor::from_vector({4.0f, 0.25f}, {2});
  const Tensor y = batch_norm2d(x, weight, Tensor(), running_mean, running_var, false);
  const std::vector<double> expected_grad = [&] {
    // grad_gamma = Σ x̂ for loss = Σ y, with the statistics before the update.
    const std::vector<float> values = x.to_vector<float>();
    std::vector<double> totals(2, 0.0);
    const double means[2] = {1.0, -1.0}, variances[2] = {4.0, 0.25};
    for (std::size_t i = 0; i < values.size(); ++i) {
      const std::size_t c = (i / 9) % 2;
      totals[c] += (values[i] - means[c]) / std::sqrt(variances[c] + 1e-5);
    }
    return totals;
  }();
  batch_norm2d(Tensor::randn({2, 2, 3, 3}, generator, 5.0f), Tensor(), Tensor(), running_mean, running_var,
               true, 1.0f);
  sum(y).backward();
  EXPECT_TRUE(testing::all_close(weight.grad().to_vector<float>(), expected_grad, 1e-4, 1e-5, "grad_gamma"));
}

TEST(BatchNorm2d, NonContiguousInputGivesTheSameResult) {
  Generator generator(6);
  const Tensor nhwc = Tensor::randn({2, 4, 5, 3}, generator);
  const Tensor view = nhwc.permute({0, 3, 1, 2});  // [2,3,4,5], not contiguous
  ASSERT_FALSE(view.is_contiguous());
  const Tensor weight = Tensor::from_vector({1.0f, 2.0f, 3.0f}, {3}), bias = Tensor::zeros({3});
  EXPECT_EQ(batch_norm2d(view, weight, bias, Tensor(), Tensor(), true).to_vector<float>(),
            batch_norm2d(dense_copy(view), weight, bias, Tensor(), Tensor(), true).to_vector<float>());
}

TEST(BatchNorm2d, MisuseErrorsNameTheOpAndShapes) {
  const Tensor x = Tensor::zeros({2, 3, 4, 4});
  const Tensor c3 = Tensor::ones({3});
  expect_error<ShapeError>(
      [&] {
        batch_norm2d(Tensor::zeros({2, 3, 4}), c3, c3, Tensor(), Tensor(), true);
      },
      {"batch_norm2d", "input", "[2,3,4]"});
  expect_error<ShapeError>([&] { batch_norm2d(x, Tensor::ones({4}), c3, Tensor(), Tensor(), true); },
                           {"batch_norm2d", "weight", "[3]", "[4]", "[2,3,4,4]"});
  expect_error<ShapeError>(
      [&] {
        batch_norm2d(x, c3, c3, Tensor::zeros({3, 1}), c3, true);
      },
      {"batch_norm2d", "running_mean", "[3,1]"});
  expect_error<DTypeError>(
      [&] {
        batch_norm2d(Tensor::zeros({2, 3, 4, 4}, DType::Int64), c3, c3, Tensor(), Tensor(), true);
      },
      {"batch_norm2d", "input", "int64"});
  expect_error<ValueError>([&] { batch_norm2d(x, c3, c3, Tensor::zeros({3}), Tensor(), true); },
                           {"batch_norm2d", "running_var"});
  expect_error<ValueError>([&] { batch_norm2d(x, c3, c3, Tensor(), Tensor(), false); },
                           {"batch_norm2d", "evaluation", "[2,3,4,4]"});
  expect_error<ValueError>([&] { batch_norm2d(x, c3, c3, Tensor(), Tensor(), true, 1.5f); },
                           {"batch_norm2d", "momentum", "1.5"});
  expect_error<ValueError>([&] { batch_norm2d(x, c3, c3, Tensor(), Tensor(), true, 0.1f, 0.0f); },
                           {"batch_norm2d", "eps"});
  expect_error<ValueError>(
      [&] {
        batch_norm2d(Tensor::zeros({1, 3, 1, 1}), c3, c3, Tensor(), Tensor(), true);
      },
      {"batch_norm2d", "more than one value", "[1,3,1,1]"});
}

// One run of a batch norm (fused or not) on fresh leaves copied from `inputs`, with running buffers copied
// from `mean` and `variance`: its output, each leaf's gradient of Σ y · weights_of_sum, and the running mean
// after it.
struct BatchNormRun {
  std::vector<float> output, running_mean;
  std::vector<std::vector<float>> gradients;
};
using BatchNormCall = std::function<Tensor(const std::vector<Tensor>& leaves, const Tensor& running_mean,
                                           const Tensor& running_var)>;
BatchNormRun run_on_fresh_leaves(const std::vector<Tensor>& inputs, const Tensor& mean,
                                 const Tensor& variance, const Tensor& weights_of_sum,
                                 const BatchNormCall& call) {
  std::vector<Tensor> leaves;
  for (const Tensor& input : inputs) {
    leaves.push_back(dense_copy(input));
    leaves.back().set_requires_grad(true);
  }
  const Tensor running_mean = dense_copy(mean), running_var = dense_copy(variance);
  const Tensor y = call(leaves, running_mean, running_var);
  sum(y * weights_of_sum).backward();
  BatchNormRun run{y.to_vector<float>(), running_mean.to_vector<float>(), {}};
  for (const Tensor& leaf : leaves)
    run.gradients.push_back(leaf.grad().to_vector<float>());
  return run;
}

TEST(BatchNorm2d, FusedReluEqualsReluAfterBatchNormInValuesAndGradients) {
  for (const bool training : {true, false}) {
    Generator generator(21);
    const Tensor x = Tensor::randn({3, 4, 5, 5}, generator, 0.5f, 2.0f);
    const Tensor weight = Tensor::randn({4}, generator, 1.0f, 0.5f), bias = Tensor::randn({4}, generator);
    const Tensor mean = Tensor::randn({4}, generator), variance = Tensor::uniform({4}, generator, 0.5f, 2.0f);
    const Tensor weights_of_sum = Tensor::randn({3, 4, 5, 5}, generator);  // so every gradient differs
    const BatchNormRun fused = run_on_fresh_leaves(
        {x, weight, bias}, mean, variance, weights_of_sum,
        [training](const std::vector<Tensor>& in, const Tensor& running_mean, const Tensor& running_var) {
          return batch_norm2d_relu(in[0], in[1], in[2], running_mean, running_var, training);
        });
    const BatchNormRun apart = run_on_fresh_leaves(
        {x, weight, bias}, mean, variance, weights_of_sum,
        [training](const std::vector<Tensor>& in, const Tensor& running_mean, const Tensor& running_var) {
          return relu(batch_norm2d(in[0], in[1], in[2], running_mean, running_var, training));
        });
    const std::string mode = training ? "training" : "evaluation";
    EXPECT_EQ(fused.output, apart.output) << mode;
    EXPECT_EQ(fused.running_mean, apart.running_mean) << mode << ": running mean";
    const auto clipped = std::count(fused.output.begin(), fused.output.end(), 0.0f);
    EXPECT_GT(clipped, 10) << mode << ": the ReLU must clip some values for the test to mean anything";
    for (std::size_t i = 0; i < 3; ++i)
      EXPECT_TRUE(testing::all_close(fused.gradients[i], apart.gradients[i], 1e-5, 1e-5,
                                     mode + " gradient " + std::to_string(i)));
  }
}

// relu(batch_norm2d(x) + residual) in the batch norm's pass against add_relu after it: the same outputs and
// the same gradients for x, weight, bias and the residual, in both modes.
TEST(BatchNorm2d, FusedAddReluEqualsAddReluAfterBatchNormInValuesAndGradients) {
  for (const bool training : {true, false}) {
    Generator generator(22);
    const Tensor x = Tensor::randn({3, 4, 5, 5}, generator, 0.5f, 2.0f);
    const Tensor residual = Tensor::randn({3, 4, 5, 5}, generator);
    const Tensor weight = Tensor::randn({4}, generator, 1.0f, 0.5f), bias = Tensor::randn({4}, generator);
    const Tensor mean = Tensor::randn({4}, generator), variance = Tensor::uniform({4}, generator, 0.5f, 2.0f);
    const Tensor weights_of_sum = Tensor::randn({3, 4, 5, 5}, generator);  // so every gradient differs
    const BatchNormRun fused = run_on_fresh_leaves(
        {x, weight, bias, residual}, mean, variance, weights_of_sum,
        [training](const std::vector<Tensor>& in, const Tensor& running_mean, const Tensor& running_var) {
          return batch_norm2d_add_relu(in[0], in[1], in[2], running_mean, running_var, in[3], training);
        });
    const BatchNormRun apart = run_on_fresh_leaves(
        {x, weight, bias, residual}, mean, variance, weights_of_sum,
        [training](const std::vector<Tensor>& in, const Tensor& running_mean, const Tensor& running_var) {
          return add_relu(batch_norm2d(in[0], in[1], in[2], running_mean, running_var, training), in[3]);
        });
    const std::string mode = training ? "training" : "evaluation";
    EXPECT_TRUE(testing::all_close(fused.output, apart.output, 1e-6, 1e-6, mode + " output"));
    EXPECT_EQ(fused.running_mean, apart.running_mean) << mode << ": running mean";
    const auto clipped = std::count(fused.output.begin(), fused.output.end(), 0.0f);
    EXPECT_GT(clipped, 10) << mode << ": the ReLU must clip some values for the test to mean anything";
    for (std::size_t i = 0; i < 4; ++i)
      EXPECT_TRUE(testing::all_close(fused.gradients[i], apart.gradients[i], 1e-5, 1e-5,
                                     mode + " gradient " + std::to_string(i)));
  }
  const Tensor x = Tensor::zeros({2, 3, 4, 4}), c3 = Tensor::ones({3});
  expect_error<ShapeError>(
      [&] {
        batch_norm2d_add_relu(x, c3, c3, Tensor(), Tensor(), Tensor::zeros({2, 3, 4, 5}), true);
      },
      {"batch_norm2d", "residual", "[2,3,4,5]", "[2,3,4,4]"});
  expect_error<ValueError>([&] { batch_norm2d_add_relu(x, c3, c3, Tensor(), Tensor(), Tensor(), true); },
                           {"batch_norm2d_add_relu", "residual"});
}

}  // namespace
}  // namespace dscope
