// Cross-entropy between logits and integer class targets, differentiable in the logits.
#pragma once

#include "tensor/tensor.h"

namespace dscope {

enum class Reduction { Mean, Sum };

struct CrossEntropyOptions {
  Tensor class_weights;          // [classes] float32, or undefined for all ones
  float label_smoothing = 0.0f;  // in [0, 1): target becomes (1−ε)·one_hot + ε/classes
  Reduction reduction = Reduction::Mean;
};

// logits [N, classes] float32, targets [N] int64 in [0, classes) → a scalar. With class weights and Mean,
// the sum is divided by the summed weights of the targets (PyTorch's convention), so a batch's loss does
// not depend on how many of each class it holds.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& options = {});

}  // namespace dscope
