// The score metrics against values worked out by hand: a 3-class confusion matrix, the NaN rule for classes
// without images or predictions, AUC with ties (the Mann–Whitney count with a tie as one half), ROC curves,
// the threshold search for a target sensitivity, and the possible-cancer decision counts.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "apps/lib/scores.h"
#include "tensor/error.h"
#include "tests/support/expect_error.h"

namespace dscope::apps {
namespace {

using dscope::testing::expect_error;

// One probability row per prediction: 0.6 on the predicted class, the rest shared equally.
std::vector<float> rows_predicting(const std::vector<std::int64_t>& predicted, std::size_t classes) {
  std::vector<float> probabilities;
  for (std::int64_t p : predicted)
    for (std::size_t k = 0; k < classes; ++k)
      probabilities.push_back(static_cast<std::int64_t>(k) == p ? 0.6f
                                                                : 0.4f / static_cast<float>(classes - 1));
  return probabilities;
}

// truth     a a a a b b b c c c
// predicted a a a b b b b c a a
// confusion a: [3 1 0], b: [0 3 0], c: [2 0 1]; predicted totals a 5, b 4, c 1.
TEST(Scores, ThreeClassExampleByHand) {
  const std::vector<std::string> labels = {"a", "b", "c"};
  const std::vector<std::int64_t> truth = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2};
  const std::vector<std::int64_t> predicted = {0, 0, 0, 1, 1, 1, 1, 2, 0, 0};
  const Scores s = compute_scores(labels, rows_predicting(predicted, 3), truth, {"c"}, 0.5);

  EXPECT_EQ(s.n, 10);
  const std::vector<std::vector<std::int64_t>> confusion = {{3, 1, 0}, {0, 3, 0}, {2, 0, 1}};
  EXPECT_EQ(s.confusion, confusion);
  EXPECT_DOUBLE_EQ(s.accuracy, 0.7);
  ASSERT_EQ(s.per_class.size(), 3u);
  EXPECT_DOUBLE_EQ(s.per_class[0].precision, 3.0 / 5.0);
  EXPECT_DOUBLE_EQ(s.per_class[1].precision, 3.0 / 4.0);
  EXPECT_DOUBLE_EQ(s.per_class[2].precision, 1.0);
  EXPECT_DOUBLE_EQ(s.per_class[0].recall, 3.0 / 4.0);
  EXPECT_DOUBLE_EQ(s.per_class[1].recall, 1.0);
  EXPECT_DOUBLE_EQ(s.per_class[2].recall, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.per_class[0].f1, 2.0 / 3.0);  // 2·0.6·0.75 / 1.35
  EXPECT_DOUBLE_EQ(s.per_class[1].f1, 6.0 / 7.0);  // 2·0.75·1 / 1.75
  EXPECT_DOUBLE_EQ(s.per_class[2].f1, 0.5);        // 2·1·(1/3) / (4/3)
  EXPECT_EQ(s.per_class[0].support, 4);
  EXPECT_EQ(s.per_class[1].support, 3);
  EXPECT_EQ(s.per_class[2].support, 3);
  EXPECT_DOUBLE_EQ(s.balanced_accuracy, 25.0 / 36.0);  // (3/4 + 1 + 1/3) / 3
  EXPECT_DOUBLE_EQ(s.macro_f1, 85.0 / 126.0);          // (2/3 + 6/7 + 1/2) / 3
  EXPECT_DOUBLE_EQ(s.weighted_f1, 283.0 / 420.0);      // (4·2/3 + 3·6/7 + 3·1/2) / 10

  // Class b's probability is 0.6 on its 3 images and on one image of a, 0.2 on the other 6: of the 3·7 pairs
  // only (b, that a) ties, so the AUC is (21 − 3·½) / 21.
  EXPECT_DOUBLE_EQ(s.per_class[1].auc, 19.5 / 21.0);
  EXPECT_DOUBLE_EQ(s.auc_macro, (s.per_class[0].auc + s.per_class[1].auc + s.per_class[2].auc) / 3.0);
  ASSERT_EQ(s.roc.size(), 3u);
  EXPECT_FALSE(s.roc[0].false_positive_rate.empty());
}

// truth {a, a, b, b}, predicted {a, a, a, c}; d is neither true nor predicted, c is predicted without images.
TEST(Scores, ClassesWithoutImagesOrPredictions) {
  const std::vector<std::string> labels = {"a", "b", "c", "d"};
  const Scores s = compute_scores(labels, rows_predicting({0, 0, 0, 2}, 4), {0, 0, 1, 1}, {"b"}, 0.5);
  const ClassScores &a = s.per_class[0], &b = s.per_class[1], &c = s.per_class[2], &d = s.per_class[3];
  EXPECT_DOUBLE_EQ(a.precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(a.recall, 1.0);
  EXPECT_DOUBLE_EQ(a.f1, 0.8);
  EXPECT_EQ(b.precision, 0.0);  // never predicted
  EXPECT_EQ(b.recall, 0.0);
  EXPECT_EQ(b.f1, 0.0);
  EXPECT_EQ(c.precision, 0.0);  // predicted once, wrongly
  EXPECT_EQ(d.precision, 0.0);  // never predicted
  for (const ClassScores* empty : {&c, &d}) {
    EXPECT_EQ(empty->support, 0);
    EXPECT_TRUE(std::isnan(empty->recall));
    EXPECT_TRUE(std::isnan(empty->f1));
    EXPECT_TRUE(std::isnan(empty->auc));
  }
  EXPECT_TRUE(s.roc[2].false_positive_rate.empty());
  EXPECT_TRUE(s.roc[3].true_positive_rate.empty());
  // The means run over a and b only.
  EXPECT_DOUBLE_EQ(s.balanced_accuracy, 0.5);
  EXPECT_DOUBLE_EQ(s.macro_f1, 0.4);
  EXPECT_DOUBLE_EQ(s.weighted_f1, 0.4);
  EXPECT_DOUBLE_EQ(s.auc_macro, (a.auc + b.auc) / 2.0);
  EXPECT_DOUBLE_EQ(s.accuracy, 0.5);
}

TEST(Scores, ArgMaxTakesTheLowestIndexOnTies) {
  const Scores s = compute_scores({"a", "b"}, {0.5f, 0.5f}, {1}, {"b"}, 0.5);
  EXPECT_EQ(s.confusion[1][0], 1);
}

TEST(Scores, AucWithTiesCountsOneHalf) {
  // Positives 0.5 and 0.9 against negatives 0.5, 0.5: 0.9 wins both pairs, 0.5 ties both → (2 + 1) / 4.
  EXPECT_DOUBLE_EQ(roc_auc({0.5, 0.5, 0.5, 0.9}, {true, false, false, true}), 0.75);
  // All tied: chance.
  EXPECT_DOUBLE_EQ(roc_auc({0.3, 0.3, 0.3}, {true, false, true}), 0.5);
}

TEST(Scores, AucPerfectInvertedAndUndefined) {
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.2, 0.8, 0.9}, {false, false, true, true}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.2, 0.8, 0.9}, {true, true, false, false}), 0.0);
  EXPECT_TRUE(std::isnan(roc_auc({0.1, 0.2}, {true, true})));
  EXPECT_TRUE(std::isnan(roc_auc({0.1, 0.2}, {false, false})));
  EXPECT_TRUE(std::isnan(roc_auc({}, {})));
}

TEST(Scores, RocCurveCollapsesTiesAndRunsFromZeroToOne) {
  const RocCurve curve = roc_curve({0.5, 0.5, 0.5, 0.9}, {true, false, false, true});
  EXPECT_EQ(curve.false_positive_rate, (std::vector<double>{0.0, 0.0, 1.0}));
  EXPECT_EQ(curve.true_positive_rate, (std::vector<double>{0.0, 0.5, 1.0}));
  EXPECT_TRUE(roc_curve({0.1, 0.2}, {true, true}).false_positive_rate.empty());
}

TEST(Scores, RocCurveAreaEqualsAuc) {
  // Scores on a coarse grid so that many tie, labels loosely following the score.
  std::vector<double> score;
  std::vector<bool> positive;
  std::uint32_t state = 12345;
  for (int i = 0; i < 200; ++i) {
    state = state * 1664525u + 1013904223u;
    const double value = static_cast<double>((state >> 8) % 11) / 10.0;
    state = state * 1664525u + 1013904223u;
    score.push_back(value);
    positive.push_back(static_cast<double>((state >> 8) % 1000) / 1000.0 < value);
  }
  const RocCurve curve = roc_curve(score, positive);
  ASSERT_GE(curve.false_positive_rate.size(), 2u);
  EXPECT_EQ(curve.false_positive_rate.front(), 0.0);
  EXPECT_EQ(curve.true_positive_rate.front(), 0.0);
  EXPECT_EQ(curve.false_positive_rate.back(), 1.0);
  EXPECT_EQ(curve.true_positive_rate.back(), 1.0);
  EXPECT_LE(curve.false_positive_rate.size(), 12u);  // one point per distinct score, plus (0, 0)
  double area = 0.0;
  for (std::size_t i = 1; i < curve.false_positive_rate.size(); ++i) {
    EXPECT_GE(curve.false_positive_rate[i], curve.false_positive_rate[i - 1]);
    EXPECT_GE(curve.true_positive_rate[i], curve.true_positive_rate[i - 1]);
    area += (curve.false_positive_rate[i] - curve.false_positive_rate[i - 1]) *
            (curve.true_positive_rate[i] + curve.true_positive_rate[i - 1]) / 2.0;
  }
  EXPECT_NEAR(area, roc_auc(score, positive), 1e-12);
}

TEST(Scores, ThresholdForSensitivity) {
  // Positives at 0.9, 0.7 and 0.4.
  const std::vector<double> score = {0.9, 0.8, 0.7, 0.6, 0.4, 0.3};
  const std::vector<bool> positive = {true, false, true, false, true, false};
  EXPECT_EQ(threshold_for_sensitivity(score, positive, 1.0 / 3.0), 0.9);
  EXPECT_EQ(threshold_for_sensitivity(score, positive, 0.5), 0.7);
  EXPECT_EQ(threshold_for_sensitivity(score, positive, 2.0 / 3.0), 0.7);
  EXPECT_EQ(threshold_for_sensitivity(score, positive, 0.7), 0.4);
  EXPECT_EQ(threshold_for_sensitivity(score, positive, 1.0), 0.4);  // the lowest positive score
  // A tie at the threshold flags the whole group.
  EXPECT_EQ(threshold_for_sensitivity({0.8, 0.8, 0.2}, {true, true, false}, 0.5), 0.8);
  EXPECT_EQ(threshold_for_sensitivity({0.8, 0.2}, {false, false}, 0.9), 0.5);  // no positives
  expect_error<ValueError>([&] { threshold_for_sensitivity(score, positive, 0.0); }, {"(0, 1]", "0"});
  expect_error<ValueError>([&] { threshold_for_sensitivity(score, positive, 1.5); }, {"1.5"});
}

// Possible cancer = mel or bcc, threshold 0.5. Scores 0.7 (mel, flagged), 0.4 (bcc, missed), 0.6 (nv, false
// alarm), 0.1 and 0.2 (nv, cleared).
TEST(Scores, BinaryDecisionCounts) {
  const std::vector<std::string> labels = {"nv", "mel", "bcc"};
  const std::vector<float> probabilities = {0.3f,  0.5f, 0.2f,  0.6f,  0.1f, 0.3f, 0.4f, 0.35f,
                                            0.25f, 0.9f, 0.05f, 0.05f, 0.8f, 0.1f, 0.1f};
  const std::vector<std::int64_t> truth = {1, 2, 0, 0, 0};
  const Scores s = compute_scores(labels, probabilities, truth, {"mel", "bcc"}, 0.5);
  const BinaryScores& b = s.binary;
  EXPECT_EQ(b.positive_labels, (std::vector<std::string>{"mel", "bcc"}));
  EXPECT_EQ(b.threshold, 0.5);
  EXPECT_EQ(b.positives, 2);
  EXPECT_EQ(b.negatives, 3);
  EXPECT_EQ(b.true_positives, 1);
  EXPECT_EQ(b.false_positives, 1);
  EXPECT_DOUBLE_EQ(b.sensitivity, 0.5);
  EXPECT_DOUBLE_EQ(b.specificity, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(b.auc, 5.0 / 6.0);  // 0.7 beats all three, 0.4 beats 0.1 and 0.2
  EXPECT_EQ(s.binary_roc.false_positive_rate.back(), 1.0);

  const std::vector<double> sums = positive_probability(labels, probabilities, {"mel", "bcc"});
  const std::vector<double> expected = {0.7, 0.4, 0.6, 0.1, 0.2};
  ASSERT_EQ(sums.size(), expected.size());
  for (std::size_t i = 0; i < sums.size(); ++i)
    EXPECT_NEAR(sums[i], expected[i], 1e-6) << i;

  // No positive images: sensitivity undefined, specificity still counted.
  const Scores healthy = compute_scores(labels, probabilities, {0, 0, 0, 0, 0}, {"mel", "bcc"}, 0.5);
  EXPECT_TRUE(std::isnan(healthy.binary.sensitivity));
  EXPECT_DOUBLE_EQ(healthy.binary.specificity, 0.6);
  EXPECT_TRUE(std::isnan(healthy.binary.auc));
}

TEST(Scores, DefaultPositiveLabels) {
  EXPECT_EQ(default_positive_labels(), (std::vector<std::string>{"akiec", "bcc", "mel"}));
}

TEST(Scores, ErrorsNameTheProblem) {
  const std::vector<std::string> labels = {"nv", "mel"};
  const std::vector<float> probabilities = {0.9f, 0.1f, 0.2f, 0.8f};
  expect_error<ValueError>(
      [&] {
        compute_scores(labels, probabilities, {0, 1}, {"mel", "scc"}, 0.5);
      },
      {"compute_scores", "'scc'", "nv, mel"});
  expect_error<ValueError>([&] { positive_probability(labels, probabilities, {"bcc"}); },
                           {"positive_probability", "'bcc'"});
  expect_error<ValueError>(
      [&] {
        compute_scores(labels, probabilities, {0, 1, 1}, {"mel"}, 0.5);
      },
      {"compute_scores", "6", "4"});
  expect_error<ValueError>(
      [&] {
        compute_scores(labels, probabilities, {0, 2}, {"mel"}, 0.5);
      },
      {"compute_scores", "image 1", "2", "[0, 2)"});
  expect_error<ValueError>(
      [&] {
        compute_scores({"nv", "nv"}, probabilities, {0, 1}, {"nv"}, 0.5);
      },
      {"distinct"});
  expect_error<ValueError>([&] { roc_auc({0.1, 0.2}, {true}); }, {"roc_auc", "2 scores", "1 labels"});
  expect_error<ValueError>([&] { roc_curve({0.1, std::nan("")}, {true, false}); }, {"roc_curve", "NaN"});
}

}  // namespace
}  // namespace dscope::apps
