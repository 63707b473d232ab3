// Logit adjustment: the probabilities after dividing by the training prior to a power, and the choice of
// that power on validation data (hand-computed cases).
#include <gtest/gtest.h>

#include <vector>

#include "apps/lib/build_recipe.h"
#include "apps/lib/classifier.h"

namespace dscope::apps {
namespace {

TEST(LogitAdjustment, DividesByThePriorToThePowerAndRenormalises) {
  // Prior {1/2, 1/4, 1/4} at strength 1 multiplies by {2, 4, 4}: {0.5, 0.25, 0.25} becomes uniform.
  std::vector<float> rows = {0.5f, 0.25f, 0.25f, 0.2f, 0.4f, 0.4f};
  adjust_probabilities({{0.5f, 0.25f, 0.25f}, 1.0, {}, {}}, rows);
  for (int c = 0; c < 3; ++c)
    EXPECT_NEAR(rows[static_cast<std::size_t>(c)], 1.0f / 3.0f, 1e-6f);
  // {0.2, 0.4, 0.4}·{2, 4, 4} = {0.4, 1.6, 1.6}, over 3.6.
  EXPECT_NEAR(rows[3], 0.4f / 3.6f, 1e-6f);
  EXPECT_NEAR(rows[4], 1.6f / 3.6f, 1e-6f);
  EXPECT_NEAR(rows[5], 1.6f / 3.6f, 1e-6f);
}

TEST(LogitAdjustment, ClassFactorsMultiplyBesideThePriorEvenAtStrengthZero) {
  // Factors {1, 3, 1} at strength 0: {0.5, 0.25, 0.25} becomes {0.5, 0.75, 0.25} / 1.5.
  std::vector<float> rows = {0.5f, 0.25f, 0.25f};
  adjust_probabilities({{0.5f, 0.25f, 0.25f}, 0.0, {1.0f, 3.0f, 1.0f}, {}}, rows);
  EXPECT_NEAR(rows[0], 1.0f / 3.0f, 1e-6f);
  EXPECT_NEAR(rows[1], 0.5f, 1e-6f);
  EXPECT_NEAR(rows[2], 1.0f / 6.0f, 1e-6f);
  // With strength 1 as well: {0.5·2, 0.25·4·3, 0.25·4} = {1, 3, 1}, over 5.
  rows = {0.5f, 0.25f, 0.25f};
  adjust_probabilities({{0.5f, 0.25f, 0.25f}, 1.0, {1.0f, 3.0f, 1.0f}, {}}, rows);
  EXPECT_NEAR(rows[0], 0.2f, 1e-6f);
  EXPECT_NEAR(rows[1], 0.6f, 1e-6f);
  EXPECT_NEAR(rows[2], 0.2f, 1e-6f);
}

TEST(LogitAdjustment, StrengthZeroOrNoPriorChangesNothing) {
  const std::vector<float> original = {0.7f, 0.2f, 0.1f};
  std::vector<float> rows = original;
  adjust_probabilities({{0.5f, 0.25f, 0.25f}, 0.0, {}, {}}, rows);
  EXPECT_EQ(rows, original);
  adjust_probabilities({}, rows);
  EXPECT_EQ(rows, original);
}

TEST(LogitAdjustment, ChoosesTheStrengthClosestToZeroWithTheBestMeanOfAccuracyAndBalancedAccuracy) {
  // Prior {0.8, 0.1, 0.1}: class 1 overtakes class 0 in a {0.6, 0.4, 0} row once 8^s > 1.5 (s > 0.195), and
  // in a {0.9, 0.1, 0} row once 8^s > 9 (s > 1.057). So every grid strength in [0.2, 1.05] classifies all
  // eleven rows correctly, and 0.2 is the one closest to 0 (negative strengths only favour class 0 more).
  std::vector<float> probabilities;
  std::vector<std::int64_t> truth;
  for (int i = 0; i < 8; ++i) {
    probabilities.insert(probabilities.end(), {0.9f, 0.1f, 0.0f});
    truth.push_back(0);
  }
  for (int i = 0; i < 2; ++i) {
    probabilities.insert(probabilities.end(), {0.6f, 0.4f, 0.0f});
    truth.push_back(1);
  }
  probabilities.insert(probabilities.end(), {0.1f, 0.0f, 0.9f});
  truth.push_back(2);
  EXPECT_NEAR(choose_adjustment_strength({0.8f, 0.1f, 0.1f}, probabilities, truth), 0.2, 1e-9);
  // Already right at strength 0: nothing to gain, so no adjustment.
  EXPECT_EQ(choose_adjustment_strength({0.8f, 0.1f, 0.1f}, {0.9f, 0.05f, 0.05f, 0.1f, 0.8f, 0.1f}, {0, 1}),
            0.0);
}

}  // namespace
}  // namespace dscope::apps
