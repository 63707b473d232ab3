// Focal loss (Lin et al. 2017, "Focal Loss for Dense Object Detection"), for classification with imbalanced
// classes (HAM10000 is 67% one class): FL = −α_t · (1 − p_t)^γ · log p_t, where p_t is the softmax
// probability of the sample's true class. The factor (1 − p_t)^γ shrinks the loss of samples the model
// already gets right, so the many easy examples of the majority class stop dominating the gradient; α_t
// re-weights classes. With γ = 0 and no α it is exactly the cross-entropy.
#pragma once

#include "tensor/ops/cross_entropy.h"
#include "tensor/tensor.h"

namespace dscope::nn {

struct FocalLossOptions {
  float gamma = 2.0f;  // γ ≥ 0; the paper's best value is 2
  Tensor alpha;  // [classes] float32 per-class weights α_c (α_t = α[target]), or undefined for all ones
  Reduction reduction = Reduction::Mean;
};

// logits [N, classes] float32, targets [N] int64 in [0, classes) → a scalar, differentiable in the logits.
// Mean divides the summed per-sample losses by N (not by the summed α_t as cross_entropy's class weights
// do): α scales each sample's loss, as in the paper. α gets no gradient.
Tensor focal_loss(const Tensor& logits, const Tensor& targets, const FocalLossOptions& options = {});

}  // namespace dscope::nn
