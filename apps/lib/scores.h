// Scores of a classifier on a labelled set: what `dscope score` reports and `dscope build` selects by.
//
// From each image's class probabilities and its true label:
//   - accuracy; balanced accuracy (the mean of per-class recalls over the classes that have images: on
//     HAM10000, where two thirds are nv, it is the honest single number);
//   - per class: precision, recall, F1, support, and the one-vs-rest ROC AUC of that class's probability;
//   - macro F1 (unweighted mean over classes with support), weighted F1 (weighted by support), macro AUC
//   (mean
//     of the per-class AUCs that are defined);
//   - the confusion matrix (rows true, columns predicted, in label order);
//   - a binary "possible cancer" decision: positive when the summed probability of the positive labels
//     (akiec, bcc, mel by default) reaches a threshold, with its sensitivity and specificity.
// Undefined values follow one rule: precision of a class never predicted is 0 (as scikit-learn's
// zero_division=0); recall, F1 and AUC of a class without images are NaN (null in JSON) and are left out of
// the macro means; an AUC is NaN too when every image is of that class. AUC is the Mann–Whitney statistic
// with tied scores counting one half, so it equals the area under the ROC curve drawn through tied groups as
// single diagonal steps (what scikit-learn computes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dscope::apps {

struct ClassScores {
  double precision = 0.0, recall = 0.0, f1 = 0.0, auc = 0.0;
  std::int64_t support = 0;  // images of this class
};

// A ROC curve as points (false-positive rate, true-positive rate) from (0,0) to (1,1), one point per
// distinct threshold, in increasing order.
struct RocCurve {
  std::vector<double> false_positive_rate, true_positive_rate;
};

struct BinaryScores {
  std::vector<std::string> positive_labels;
  double threshold = 0.5;
  double sensitivity = 0.0, specificity = 0.0;  // NaN when there are no positives / no negatives
  std::int64_t positives = 0, negatives = 0;    // images whose true label is / is not a positive label
  std::int64_t true_positives = 0, false_positives = 0;
  double auc = 0.0;  // of the summed positive probability as a score
};

struct Scores {
  std::vector<std::string> labels;
  std::int64_t n = 0;
  double accuracy = 0.0, balanced_accuracy = 0.0, macro_f1 = 0.0, weighted_f1 = 0.0, auc_macro = 0.0;
  std::vector<ClassScores> per_class;                // in label order
  std::vector<std::vector<std::int64_t>> confusion;  // [true][predicted]
  std::vector<RocCurve> roc;                         // per class, one-vs-rest; empty curve when undefined
  RocCurve binary_roc;
  BinaryScores binary;
};

// `probabilities` is n × labels.size(), row-major, each row a distribution; `truth` holds n label indices.
// The prediction is the arg-max (the lowest index on ties). Positive labels that are not among `labels`
// are a ValueError naming them, as are mismatched sizes and labels out of range.
Scores compute_scores(const std::vector<std::string>& labels, const std::vector<float>& probabilities,
                      const std::vector<std::int64_t>& truth, const std::vector<std::string>& positive_labels,
                      double threshold);

// ROC AUC of `score` for separating positive[i] from the rest; NaN when either side is empty. The curve is
// empty then too. ValueError when the sizes differ or a score is NaN.
double roc_auc(const std::vector<double>& score, const std::vector<bool>& positive);
RocCurve roc_curve(const std::vector<double>& score, const std::vector<bool>& positive);

// The highest threshold t such that flagging score ≥ t has sensitivity ≥ target on this data (so as few
// false alarms as the target allows); the lowest positive score when even that is needed; 0.5 when there
// are no positives. ValueError unless target is in (0, 1].
double threshold_for_sensitivity(const std::vector<double>& score, const std::vector<bool>& positive,
                                 double target);

// The summed probability of the positive labels, per image (the "possible cancer" score).
std::vector<double> positive_probability(const std::vector<std::string>& labels,
                                         const std::vector<float>& probabilities,
                                         const std::vector<std::string>& positive_labels);

// Labels as one line of text for messages: "akiec, bcc, mel".
std::string join_labels(const std::vector<std::string>& labels);

// HAM10000's malignant (or pre-malignant) diagnoses: akiec, bcc, mel.
const std::vector<std::string>& default_positive_labels();

}  // namespace dscope::apps
