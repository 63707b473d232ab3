// Minimum recall: the class factors that make a class reach an asked recall (hand-computed cases), and the
// LABEL=RECALL text of --min-recall.
#include <gtest/gtest.h>

#include <vector>

#include "apps/lib/min_recall.h"
#include "tensor/error.h"
#include "tests/support/expect_error.h"

namespace dscope::apps {
namespace {

using dscope::testing::expect_error;

constexpr double kMargin = 1.0 + 1e-5;  // the factor is chosen just above the exact one

// Four rows of class 1, which needs these factors to win them: 1.25, 3, 0.125 (already won) and 7; and one
// row of class 0 that class 1 takes once its factor passes 0.45 / 0.35 ≈ 1.29.
const std::vector<float> kRows = {0.5f, 0.4f, 0.1f, 0.6f, 0.2f,  0.2f,  0.1f, 0.8f,
                                  0.1f, 0.7f, 0.1f, 0.2f, 0.45f, 0.35f, 0.2f};
const std::vector<std::int64_t> kTruth = {1, 1, 1, 1, 0};

TEST(MinRecall, TheFactorIsTheSmallestThatWinsTheAskedShareOfTheClassRows) {
  // Recall 1/4 already: the factor stays 1, and the other classes' factors are always 1.
  EXPECT_EQ(choose_class_factors(kRows, kTruth, 3, {{1, 0.25}}), (std::vector<float>{1.0f, 1.0f, 1.0f}));
  // 2 of 4 rows: the second smallest need, 1.25.
  std::vector<float> factors = choose_class_factors(kRows, kTruth, 3, {{1, 0.5}});
  EXPECT_FLOAT_EQ(factors[1], static_cast<float>(1.25 * kMargin));
  EXPECT_EQ(factors[0], 1.0f);
  EXPECT_EQ(factors[2], 1.0f);
  // 0.6 of 4 rows rounds up to 3: the third need, 3; recall 1 needs the largest, 7.
  EXPECT_FLOAT_EQ(choose_class_factors(kRows, kTruth, 3, {{1, 0.6}})[1], static_cast<float>(3.0 * kMargin));
  EXPECT_FLOAT_EQ(choose_class_factors(kRows, kTruth, 3, {{1, 1.0}})[1], static_cast<float>(7.0 * kMargin));
}

TEST(MinRecall, ClassesBoostedTogetherAreRaisedUntilBothReachTheirRecall) {
  // Class 1's row needs 0.6 / 0.3 = 2. Class 2's row needs 0.4 / 0.25 = 1.6 alone, but 2·0.35 / 0.25 = 2.8
  // once class 1 weighs 2; and class 1 still needs 2 after that (0.6 beats 2.8·0.1).
  const std::vector<float> rows = {0.6f, 0.3f, 0.1f, 0.4f, 0.35f, 0.25f};
  const std::vector<float> factors = choose_class_factors(rows, {1, 2}, 3, {{1, 1.0}, {2, 1.0}});
  EXPECT_EQ(factors[0], 1.0f);
  EXPECT_NEAR(factors[1], 2.0 * kMargin, 1e-6);
  EXPECT_NEAR(factors[2], 2.8 * kMargin * kMargin, 1e-5);
}

TEST(MinRecall, ARecallNoFactorReachesStopsAtTheLargestThatHelpsAndAnAbsentClassStaysAtOne) {
  // The second row gives class 1 probability 0: no factor wins it, so recall 1 stops at the first row's 4.
  const std::vector<float> rows = {0.8f, 0.2f, 0.0f, 1.0f, 0.0f, 0.0f};
  EXPECT_FLOAT_EQ(choose_class_factors(rows, {1, 1}, 3, {{1, 1.0}})[1], static_cast<float>(4.0 * kMargin));
  EXPECT_EQ(choose_class_factors(rows, {1, 1}, 3, {{2, 0.9}})[2], 1.0f);  // no rows of class 2
}

TEST(MinRecall, BadArgumentsAreRefused) {
  expect_error<ValueError>([] { choose_class_factors(kRows, kTruth, 3, {{3, 0.5}}); }, {"class 3 of 3"});
  expect_error<ValueError>([] { choose_class_factors(kRows, kTruth, 3, {{1, 0.0}}); }, {"minimum recall 0"});
  expect_error<ValueError>([] { choose_class_factors(kRows, kTruth, 4, {{1, 0.5}}); }, {"15 probabilities"});
}

TEST(MinRecall, ParsesLabelEqualsRecall) {
  EXPECT_EQ(parse_min_recall("mel=0.6"), (std::pair<std::string, double>{"mel", 0.6}));
  EXPECT_EQ(parse_min_recall("bcc=1"), (std::pair<std::string, double>{"bcc", 1.0}));
  for (const char* text : {"mel", "mel=", "=0.5", "mel:0.5"})
    expect_error<ValueError>([&] { parse_min_recall(text); }, {text, "LABEL=RECALL"});
  for (const char* text : {"mel=1.5", "mel=0", "mel=abc", "mel=0.5x"})
    expect_error<ValueError>([&] { parse_min_recall(text); }, {text, "(0, 1]"});
}

}  // namespace
}  // namespace dscope::apps
