// Class weights and the class-balanced sampler.
#include <gtest/gtest.h>

#include <cmath>

#include "data/class_balance.h"
#include "tensor/error.h"

namespace dscope::data {
namespace {

TEST(ClassWeights, InverseFrequencyAveragesToOneOverImages) {
  const std::vector<std::int64_t> counts = {10, 30, 60};
  const std::vector<float> weights = class_weights(counts, 1.0);
  // 1/n normalised so that Σ n_c w_c = N: every class then carries the same total weight, N / classes.
  for (std::size_t c = 0; c < counts.size(); ++c)
    EXPECT_NEAR(weights[c] * static_cast<float>(counts[c]), 100.0f / 3.0f, 1e-3f);
  const std::vector<float> smoothed = class_weights(counts, 0.5);
  EXPECT_NEAR(smoothed[0] / smoothed[2], std::sqrt(6.0f), 1e-4f);
  for (const float weight : class_weights(counts, 0.0))
    EXPECT_FLOAT_EQ(weight, 1.0f);
}

TEST(ClassWeights, EmptyClassGetsZeroAndBadArgumentsAreErrors) {
  const std::vector<float> weights = class_weights({5, 0, 5});
  EXPECT_EQ(weights[1], 0.0f);
  EXPECT_FLOAT_EQ(weights[0], 1.0f);
  EXPECT_THROW(class_weights({1, -1}), ValueError);
  EXPECT_THROW(class_weights({1, 1}, 1.5), ValueError);
}

TEST(BalancedSampler, DrawsEveryLabelAboutEquallyOftenAndIsSeeded) {
  std::vector<std::int64_t> labels;
  for (int i = 0; i < 900; ++i)
    labels.push_back(0);
  for (int i = 0; i < 90; ++i)
    labels.push_back(1);
  for (int i = 0; i < 10; ++i)
    labels.push_back(2);
  const std::vector<std::int64_t> epoch = balanced_epoch(labels, 3000, 1, 0);
  ASSERT_EQ(epoch.size(), 3000u);
  std::int64_t per_label[3] = {0, 0, 0};
  for (const std::int64_t index : epoch)
    ++per_label[labels[static_cast<std::size_t>(index)]];
  for (const std::int64_t count : per_label)
    EXPECT_NEAR(static_cast<double>(count), 1000.0, 150.0);
  EXPECT_EQ(epoch, balanced_epoch(labels, 3000, 1, 0));
  EXPECT_NE(epoch, balanced_epoch(labels, 3000, 1, 1));
  EXPECT_EQ(epoch, balanced_epoch(labels, 3000, 1, 0, 1.0));
}

TEST(BalancedSampler, APowerBelowOneDrawsLabelsInProportionToCountToOneMinusThePower) {
  std::vector<std::int64_t> labels(900, 0);
  labels.insert(labels.end(), 100, 1);
  const auto label_shares = [&](double power) {
    const std::vector<std::int64_t> epoch = balanced_epoch(labels, 20000, 3, 0, power);
    double rare = 0.0;
    for (const std::int64_t index : epoch)
      rare += static_cast<double>(labels[static_cast<std::size_t>(index)]);
    return rare / static_cast<double>(epoch.size());
  };
  // Square roots 30 and 10: a quarter of the draws are of the rare label; with power 0 a tenth.
  EXPECT_NEAR(label_shares(0.5), 0.25, 0.015);
  EXPECT_NEAR(label_shares(0.0), 0.10, 0.01);
  EXPECT_NEAR(label_shares(1.0), 0.50, 0.015);
  EXPECT_THROW(balanced_epoch(labels, 10, 3, 0, 1.5), ValueError);
  EXPECT_THROW(balanced_epoch(labels, 10, 3, 0, -0.1), ValueError);
}

}  // namespace
}  // namespace dscope::data
