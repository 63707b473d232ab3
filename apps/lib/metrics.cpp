#include "apps/lib/metrics.h"

#include <cmath>
#include <limits>

namespace dscope::apps {

ConfusionMatrix::ConfusionMatrix(std::int64_t classes)
    : classes_(classes), counts_(static_cast<std::size_t>(classes * classes), 0) {
  DSCOPE_CHECK(classes > 0, ValueError, "ConfusionMatrix: needs at least one class, got ", classes);
}

void ConfusionMatrix::add(std::int64_t truth, std::int64_t predicted) {
  DSCOPE_CHECK(truth >= 0 && truth < classes_ && predicted >= 0 && predicted < classes_, ValueError,
               "ConfusionMatrix: label ", truth, " or prediction ", predicted, " outside [0, ", classes_,
               ")");
  ++counts_[static_cast<std::size_t>(truth * classes_ + predicted)];
  ++total_;
}

void ConfusionMatrix::add(const Tensor& logits, const Tensor& labels) {
  DSCOPE_CHECK(logits.rank() == 2 && logits.size(1) == classes_ && labels.rank() == 1 &&
                   labels.size(0) == logits.size(0),
               ShapeError, "ConfusionMatrix: logits ", logits.shape(), " and labels ", labels.shape(),
               " do not fit ", classes_, " classes");
  const std::vector<float> scores = logits.to_vector<float>();
  const std::vector<std::int64_t> truth = labels.to_vector<std::int64_t>();
  for (std::size_t n = 0; n < truth.size(); ++n) {
    const float* row = scores.data() + n * static_cast<std::size_t>(classes_);
    std::int64_t best = 0;
    for (std::int64_t k = 1; k < classes_; ++k)
      if (row[k] > row[best]) best = k;
    add(truth[n], best);
  }
}

std::int64_t ConfusionMatrix::count(std::int64_t truth, std::int64_t predicted) const {
  return counts_[static_cast<std::size_t>(truth * classes_ + predicted)];
}

double ConfusionMatrix::accuracy() const {
  std::int64_t correct = 0;
  for (std::int64_t k = 0; k < classes_; ++k)
    correct += count(k, k);
  return total_ > 0 ? static_cast<double>(correct) / static_cast<double>(total_) : 0.0;
}

double ConfusionMatrix::recall(std::int64_t label) const {
  std::int64_t support = 0;
  for (std::int64_t k = 0; k < classes_; ++k)
    support += count(label, k);
  if (support == 0) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(count(label, label)) / static_cast<double>(support);
}

double ConfusionMatrix::balanced_accuracy() const {
  double sum = 0.0;
  int present = 0;
  for (std::int64_t k = 0; k < classes_; ++k) {
    const double r = recall(k);
    if (std::isnan(r)) continue;
    sum += r;
    ++present;
  }
  return present > 0 ? sum / present : 0.0;
}

double ConfusionMatrix::macro_f1() const {
  double sum = 0.0;
  std::int64_t present = 0;
  for (std::int64_t c = 0; c < classes_; ++c) {
    std::int64_t support = 0, predicted = 0;
    for (std::int64_t other = 0; other < classes_; ++other) {
      support += count(c, other);
      predicted += count(other, c);
    }
    if (support == 0) continue;
    sum += 2.0 * static_cast<double>(count(c, c)) / static_cast<double>(support + predicted);
    ++present;
  }
  return present > 0 ? sum / static_cast<double>(present) : 0.0;
}

double ConfusionMatrix::group_recall(const std::vector<bool>& in_group) const {
  DSCOPE_CHECK(static_cast<std::int64_t>(in_group.size()) == classes_, ValueError,
               "group_recall: ", in_group.size(), " membership flags for ", classes_, " classes");
  std::int64_t examples = 0, found = 0;
  for (std::int64_t truth = 0; truth < classes_; ++truth) {
    if (!in_group[static_cast<std::size_t>(truth)]) continue;
    for (std::int64_t predicted = 0; predicted < classes_; ++predicted) {
      examples += count(truth, predicted);
      if (in_group[static_cast<std::size_t>(predicted)]) found += count(truth, predicted);
    }
  }
  return examples > 0 ? static_cast<double>(found) / static_cast<double>(examples) : 0.0;
}

}  // namespace dscope::apps
