// Classification metrics from a confusion matrix: accuracy, balanced accuracy (the mean of per-class
// recalls, which an imbalanced set such as HAM10000 — two thirds one class — needs), per-class recall,
// macro F1, and the recall of a group of classes (e.g. all the possible cancers).
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace dscope::apps {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(std::int64_t classes);
  // Adds a batch: logits [N, classes] (the arg-max is the prediction) and labels [N] int64.
  void add(const Tensor& logits, const Tensor& labels);
  void add(std::int64_t truth, std::int64_t predicted);

  std::int64_t classes() const { return classes_; }
  std::int64_t count(std::int64_t truth, std::int64_t predicted) const;
  std::int64_t total() const { return total_; }
  double accuracy() const;
  // Recall of one class; NaN when the class has no examples.
  double recall(std::int64_t label) const;
  // Mean recall over the classes that have examples.
  double balanced_accuracy() const;
  // Mean F1 over the classes that have examples (a class with no correct prediction counts 0).
  double macro_f1() const;
  // Of the examples whose true class is in the group, the share predicted as some class of the group;
  // 0 when the group has no examples. `in_group[c]` says whether class c belongs to it.
  double group_recall(const std::vector<bool>& in_group) const;

 private:
  std::int64_t classes_;
  std::vector<std::int64_t> counts_;  // [truth][predicted]
  std::int64_t total_ = 0;
};

}  // namespace dscope::apps
