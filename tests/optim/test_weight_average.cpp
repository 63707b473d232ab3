// WeightAverage: the update rule worked by hand (including the warm-up of the decay), batch-norm running
// statistics averaged with the weights and its integer step counter left alone, swap and swap back, and
// misuse (a decay out of range, an update while the averages are swapped in).
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "nn/batch_norm2d.h"
#include "nn/linear.h"
#include "nn/sequential.h"
#include "optim/weight_average.h"

namespace dscope {
namespace {

// Overwrites a dense float tensor's values.
void set_values(const Tensor& tensor, const std::vector<float>& values) {
  ASSERT_EQ(tensor.numel(), static_cast<std::int64_t>(values.size()));
  std::copy(values.begin(), values.end(), tensor.data<float>());
}

struct TinyModel {
  Generator generator{3};
  std::shared_ptr<nn::Linear> linear = std::make_shared<nn::Linear>(2, 1, generator, false);
  std::shared_ptr<nn::BatchNorm2d> norm = std::make_shared<nn::BatchNorm2d>(1);
  nn::Sequential model{{linear, norm}};
};

TEST(WeightAverage, FollowsTheWeightsWithTheWarmedUpDecay) {
  TinyModel tiny;
  const Tensor weight = tiny.linear->weight;
  set_values(weight, {1.0f, -2.0f});
  optim::WeightAverage average(tiny.model, 0.5);

  // Step 1: the decay is min(0.5, (1 + 0) / (10 + 0)) = 0.1, so the average moves 90% of the way.
  set_values(weight, {3.0f, 2.0f});
  average.update();
  // Step 2: the decay is min(0.5, 2 / 11).
  set_values(weight, {5.0f, 0.0f});
  average.update();
  EXPECT_EQ(average.updates(), 2);

  const double d2 = 2.0 / 11.0;
  const double first[2] = {0.1 * 1.0 + 0.9 * 3.0, 0.1 * -2.0 + 0.9 * 2.0};
  const double second[2] = {d2 * first[0] + (1 - d2) * 5.0, d2 * first[1] + (1 - d2) * 0.0};
  average.swap();
  EXPECT_NEAR(weight.data<float>()[0], second[0], 1e-6);
  EXPECT_NEAR(weight.data<float>()[1], second[1], 1e-6);
  average.swap();  // the trained weights are back
  EXPECT_EQ(weight.to_vector<float>(), (std::vector<float>{5.0f, 0.0f}));
}

TEST(WeightAverage, ReachesTheConfiguredDecayAfterTheWarmUp) {
  TinyModel tiny;
  const Tensor weight = tiny.linear->weight;
  set_values(weight, {0.0f, 0.0f});
  optim::WeightAverage average(tiny.model, 0.5);
  average.reset_from_model(1000);  // (1 + 1000) / (10 + 1000) > 0.5: the decay is 0.5 from here on
  set_values(weight, {4.0f, -4.0f});
  average.update();
  average.swap();
  EXPECT_EQ(weight.to_vector<float>(), (std::vector<float>{2.0f, -2.0f}));
  average.swap();
}

TEST(WeightAverage, AveragesRunningStatisticsButNotTheStepCounter) {
  TinyModel tiny;
  optim::WeightAverage average(tiny.model, 0.5);
  average.reset_from_model(1000);
  set_values(tiny.norm->running_mean, {2.0f});
  tiny.norm->num_batches_tracked.data<std::int64_t>()[0] = 7;
  average.update();
  average.swap();
  EXPECT_FLOAT_EQ(tiny.norm->running_mean.to_vector<float>()[0], 1.0f);  // halfway from 0 to 2
  EXPECT_EQ(tiny.norm->num_batches_tracked.data<std::int64_t>()[0], 7);
  average.swap();
  EXPECT_FLOAT_EQ(tiny.norm->running_mean.to_vector<float>()[0], 2.0f);
}

TEST(WeightAverage, RejectsMisuse) {
  TinyModel tiny;
  EXPECT_THROW(optim::WeightAverage(tiny.model, 1.0), ValueError);
  EXPECT_THROW(optim::WeightAverage(tiny.model, -0.1), ValueError);
  optim::WeightAverage average(tiny.model, 0.9);
  average.swap();
  EXPECT_TRUE(average.swapped());
  EXPECT_THROW(average.update(), ValueError);
  EXPECT_THROW(average.reset_from_model(0), ValueError);
  average.swap();
  EXPECT_NO_THROW(average.update());
}

}  // namespace
}  // namespace dscope
