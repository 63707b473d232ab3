// Scores of a classifier on a labelled set (see scores.h for the definitions and the NaN rule).
//
// Everything derives from two things: the confusion matrix (accuracy, precision, recall, F1) and one sort
// of the scores per class (AUC, ROC curve, threshold search), so the whole report is O(K·n log n).
// AUC is computed by ranks rather than by integrating the curve: with midranks for tied scores the
// Mann–Whitney U counts a tied positive/negative pair as one half, which is exactly the area under the
// curve whose tied groups are single diagonal steps, and it needs no floating-point trapezoids.
// Scores that are NaN are rejected up front: they have no place in an order and would make std::sort's
// comparison inconsistent (undefined behaviour, not just a wrong number).
#include "apps/lib/scores.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "tensor/error.h"

namespace dscope::apps {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_scores(const char* operation, const std::vector<double>& score,
                  const std::vector<bool>& positive) {
  DSCOPE_CHECK(score.size() == positive.size(), ValueError, operation, ": ", score.size(), " scores but ",
               positive.size(), " labels; expected one label per score");
  for (std::size_t i = 0; i < score.size(); ++i)
    DSCOPE_CHECK(!std::isnan(score[i]), ValueError, operation, ": score ", i, " is NaN; expected a number");
}

// Indices of `score` ordered by decreasing score (stable, so equal scores keep their input order).
std::vector<std::size_t> order_decreasing(const std::vector<double>& score) {
  std::vector<std::size_t> order(score.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return score[a] > score[b]; });
  return order;
}

// Which labels are positive, as a mask over `labels`; every positive label must be one of them.
std::vector<bool> positive_mask(const char* operation, const std::vector<std::string>& labels,
                                const std::vector<std::string>& positive_labels) {
  std::vector<bool> mask(labels.size(), false);
  std::vector<std::string> unknown;
  for (const std::string& name : positive_labels) {
    const auto found = std::find(labels.begin(), labels.end(), name);
    if (found == labels.end())
      unknown.push_back("'" + name + "'");
    else
      mask[static_cast<std::size_t>(found - labels.begin())] = true;
  }
  DSCOPE_CHECK(unknown.empty(), ValueError, operation, ": positive label", unknown.size() > 1 ? "s " : " ",
               join_labels(unknown), unknown.size() > 1 ? " are" : " is", " not among the labels [",
               join_labels(labels), "]");
  return mask;
}

double ratio_or_nan(std::int64_t numerator, std::int64_t denominator) {
  return denominator > 0 ? static_cast<double>(numerator) / static_cast<double>(denominator) : kNaN;
}

// The mean of the values that are not NaN; NaN when there are none.
double mean_of_defined(const std::vector<double>& values) {
  double sum = 0.0;
  int count = 0;
  for (double value : values)
    if (!std::isnan(value)) {
      sum += value;
      ++count;
    }
  return count > 0 ? sum / count : kNaN;
}

}  // namespace

std::string join_labels(const std::vector<std::string>& labels) {
  std::string text;
  for (const std::string& label : labels)
    text += (text.empty() ? "" : ", ") + label;
  return text;
}

double roc_auc(const std::vector<double>& score, const std::vector<bool>& positive) {
  check_scores("roc_auc", score, positive);
  const auto positives = static_cast<std::int64_t>(std::count(positive.begin(), positive.end(), true));
  const auto negatives = static_cast<std::int64_t>(positive.size()) - positives;
  if (positives == 0 || negatives == 0) return kNaN;

  std::vector<std::size_t> order(score.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return score[a] < score[b]; });
  // Sum of the (1-based) ranks of the positives, a tied group of g scores starting at position `first`
  // all taking the midrank first + (g + 1) / 2.
  double positive_rank_sum = 0.0;
  for (std::size_t first = 0; first < order.size();) {
    std::size_t last = first;
    std::int64_t group_positives = 0;
    while (last < order.size() && score[order[last]] == score[order[first]])
      group_positives += positive[order[last++]];
    const double midrank = static_cast<double>(first) + static_cast<double>(last - first + 1) / 2.0;
    positive_rank_sum += midrank * static_cast<double>(group_positives);
    first = last;
  }
  const double p = static_cast<double>(positives), q = static_cast<double>(negatives);
  const double u = positive_rank_sum - p * (p + 1.0) / 2.0;
  return u / (p * q);
}

RocCurve roc_curve(const std::vector<double>& score, const std::vector<bool>& positive) {
  check_scores("roc_curve", score, positive);
  const auto positives = static_cast<std::int64_t>(std::count(positive.begin(), positive.end(), true));
  const auto negatives = static_cast<std::int64_t>(positive.size()) - positives;
  RocCurve curve;
  if (positives == 0 || negatives == 0) return curve;

  const std::vector<std::size_t> order = order_decreasing(score);
  curve.false_positive_rate.push_back(0.0);
  curve.true_positive_rate.push_back(0.0);
  std::int64_t true_positives = 0, false_positives = 0;
  for (std::size_t first = 0; first < order.size();) {
    std::size_t last = first;
    for (; last < order.size() && score[order[last]] == score[order[first]]; ++last)
      (positive[order[last]] ? true_positives : false_positives) += 1;
    curve.false_positive_rate.push_back(static_cast<double>(false_positives) /
                                        static_cast<double>(negatives));
    curve.true_positive_rate.push_back(static_cast<double>(true_positives) / static_cast<double>(positives));
    first = last;
  }
  return curve;
}

double threshold_for_sensitivity(const std::vector<double>& score, const std::vector<bool>& positive,
                                 double target) {
  check_scores("threshold_for_sensitivity", score, positive);
  DSCOPE_CHECK(target > 0.0 && target <= 1.0, ValueError,
               "threshold_for_sensitivity: target sensitivity must be in (0, 1], got ", target);
  const auto positives = static_cast<std::int64_t>(std::count(positive.begin(), positive.end(), true));
  if (positives == 0) return 0.5;

  // Lowering the threshold one tied group at a time only adds flags, so the first group at which the
  // sensitivity reaches the target gives the highest threshold that does. Comparing the quotient (not
  // tp ≥ ceil(target·positives)) avoids 0.7·10 = 7.000000000000001 asking for an eighth positive.
  const std::vector<std::size_t> order = order_decreasing(score);
  std::int64_t true_positives = 0;
  for (std::size_t first = 0; first < order.size();) {
    std::size_t last = first;
    for (; last < order.size() && score[order[last]] == score[order[first]]; ++last)
      true_positives += positive[order[last]];
    if (static_cast<double>(true_positives) / static_cast<double>(positives) >= target)
      return score[order[first]];
    first = last;
  }
  return score[order.back()];  // not reached: the last group holds every positive, sensitivity 1
}

std::vector<double> positive_probability(const std::vector<std::string>& labels,
                                         const std::vector<float>& probabilities,
                                         const std::vector<std::string>& positive_labels) {
  DSCOPE_CHECK(!labels.empty(), ValueError, "positive_probability: no labels");
  DSCOPE_CHECK(probabilities.size() % labels.size() == 0, ValueError,
               "positive_probability: ", probabilities.size(),
               " probabilities are not a whole number of rows of ", labels.size(), " labels");
  const std::vector<bool> mask = positive_mask("positive_probability", labels, positive_labels);
  const std::size_t classes = labels.size(), images = probabilities.size() / classes;
  std::vector<double> sums(images, 0.0);
  for (std::size_t n = 0; n < images; ++n)
    for (std::size_t k = 0; k < classes; ++k)
      if (mask[k]) sums[n] += static_cast<double>(probabilities[n * classes + k]);
  return sums;
}

const std::vector<std::string>& default_positive_labels() {
  static const std::vector<std::string> labels = {"akiec", "bcc", "mel"};
  return labels;
}

Scores compute_scores(const std::vector<std::string>& labels, const std::vector<float>& probabilities,
                      const std::vector<std::int64_t>& truth, const std::vector<std::string>& positive_labels,
                      double threshold) {
  const std::size_t classes = labels.size(), images = truth.size();
  DSCOPE_CHECK(classes > 0, ValueError, "compute_scores: no labels");
  DSCOPE_CHECK(std::set<std::string>(labels.begin(), labels.end()).size() == classes, ValueError,
               "compute_scores: labels must be distinct, got [", join_labels(labels), "]");
  DSCOPE_CHECK(images > 0, ValueError, "compute_scores: no images to score");
  DSCOPE_CHECK(probabilities.size() == images * classes, ValueError, "compute_scores: expected ", images,
               " × ", classes, " = ", images * classes, " probabilities (images × labels), got ",
               probabilities.size());
  for (std::size_t n = 0; n < images; ++n)
    DSCOPE_CHECK(truth[n] >= 0 && truth[n] < static_cast<std::int64_t>(classes), ValueError,
                 "compute_scores: true label of image ", n, " is ", truth[n], ", expected one in [0, ",
                 classes, ")");
  DSCOPE_CHECK(!std::isnan(threshold), ValueError, "compute_scores: threshold is NaN");
  const std::vector<bool> is_positive_label = positive_mask("compute_scores", labels, positive_labels);

  Scores scores;
  scores.labels = labels;
  scores.n = static_cast<std::int64_t>(images);
  scores.confusion.assign(classes, std::vector<std::int64_t>(classes, 0));
  for (std::size_t n = 0; n < images; ++n) {
    const float* row = probabilities.data() + n * classes;
    std::size_t predicted = 0;
    for (std::size_t k = 1; k < classes; ++k)
      if (row[k] > row[predicted]) predicted = k;  // strict: the lowest index wins a tie
    ++scores.confusion[static_cast<std::size_t>(truth[n])][predicted];
  }

  std::vector<double> recalls, f1s, aucs;
  std::int64_t correct = 0;
  double weighted_f1_sum = 0.0;
  for (std::size_t k = 0; k < classes; ++k) {
    std::int64_t support = 0, predicted = 0;
    for (std::size_t j = 0; j < classes; ++j) {
      support += scores.confusion[k][j];
      predicted += scores.confusion[j][k];
    }
    const std::int64_t hits = scores.confusion[k][k];
    correct += hits;
    ClassScores& c = scores.per_class.emplace_back();
    c.support = support;
    c.precision = predicted > 0 ? static_cast<double>(hits) / static_cast<double>(predicted) : 0.0;
    c.recall = ratio_or_nan(hits, support);
    c.f1 = support == 0                   ? kNaN
           : c.precision + c.recall > 0.0 ? 2.0 * c.precision * c.recall / (c.precision + c.recall)
                                          : 0.0;
    if (support > 0) weighted_f1_sum += c.f1 * static_cast<double>(support);

    std::vector<double> class_score(images);
    std::vector<bool> is_class(images);
    for (std::size_t n = 0; n < images; ++n) {
      class_score[n] = static_cast<double>(probabilities[n * classes + k]);
      is_class[n] = truth[n] == static_cast<std::int64_t>(k);
    }
    c.auc = roc_auc(class_score, is_class);
    scores.roc.push_back(roc_curve(class_score, is_class));
    recalls.push_back(c.recall);
    f1s.push_back(c.f1);
    aucs.push_back(c.auc);
  }
  scores.accuracy = static_cast<double>(correct) / static_cast<double>(images);
  scores.balanced_accuracy = mean_of_defined(recalls);
  scores.macro_f1 = mean_of_defined(f1s);
  scores.weighted_f1 = weighted_f1_sum / static_cast<double>(images);
  scores.auc_macro = mean_of_defined(aucs);

  BinaryScores& binary = scores.binary;
  binary.positive_labels = positive_labels;
  binary.threshold = threshold;
  const std::vector<double> cancer_score = positive_probability(labels, probabilities, positive_labels);
  std::vector<bool> is_cancer(images);
  for (std::size_t n = 0; n < images; ++n) {
    is_cancer[n] = is_positive_label[static_cast<std::size_t>(truth[n])];
    const bool flagged = cancer_score[n] >= threshold;
    (is_cancer[n] ? binary.positives : binary.negatives) += 1;
    if (flagged) (is_cancer[n] ? binary.true_positives : binary.false_positives) += 1;
  }
  binary.sensitivity = ratio_or_nan(binary.true_positives, binary.positives);
  binary.specificity = ratio_or_nan(binary.negatives - binary.false_positives, binary.negatives);
  binary.auc = roc_auc(cancer_score, is_cancer);
  scores.binary_roc = roc_curve(cancer_score, is_cancer);
  return scores;
}

}  // namespace dscope::apps
