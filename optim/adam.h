// Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019): PyTorch's torch.optim.Adam and AdamW
// (amsgrad off), step for step. For each parameter p with gradient g, in group (lr, wd), where t counts this
// parameter's own updates (1 on its first):
//
//   Adam:  g = g + wd · p                 AdamW:  p = p · (1 − lr · wd)      (the weight decay)
//   m = beta1 · m + (1 − beta1) · g
//   v = beta2 · v + (1 − beta2) · g²
//   p = p − lr / (1 − beta1^t) · m / (sqrt(v) / sqrt(1 − beta2^t) + eps)
//
// Adam's L2 term passes through the adaptive scaling, so parameters with large gradients are barely decayed;
// AdamW decays every parameter at the same rate, which is why it generalises better with weight decay.
// State slots: "exp_avg" (m), "exp_avg_sq" (v) and the counter "step" (t), as in PyTorch.
#pragma once

#include <vector>

#include "optim/optimizer.h"

namespace dscope::optim {

struct AdamOptions {
  float beta1 = 0.9f;  // each in [0, 1)
  float beta2 = 0.999f;
  float epsilon = 1e-8f;  // > 0: keeps the step finite where v is 0
};

class Adam : public Optimizer {
 public:
  // One group with the given learning rate and weight decay (L2, added to the gradient).
  explicit Adam(std::vector<Tensor> parameters, float learning_rate = 1e-3f, float weight_decay = 0.0f,
                AdamOptions options = {});
  // Several groups, each with its own learning rate and weight decay (see optim/param_groups.h).
  explicit Adam(std::vector<ParamGroup> groups, AdamOptions options = {});

  void step() override;
  const AdamOptions& options() const { return options_; }

 protected:
  // For AdamW: the same state and step, with the weight decay applied to the parameter directly.
  Adam(std::vector<ParamGroup> groups, AdamOptions options, bool decoupled_weight_decay);
  std::map<std::string, SlotKind> state_slots() const override;

 private:
  AdamOptions options_;
  bool decoupled_weight_decay_;
};

class AdamW : public Adam {
 public:
  // One group. The default weight decay is PyTorch's AdamW default, 1e-2.
  explicit AdamW(std::vector<Tensor> parameters, float learning_rate = 1e-3f, float weight_decay = 1e-2f,
                 AdamOptions options = {});
  explicit AdamW(std::vector<ParamGroup> groups, AdamOptions options = {});
};

}  // namespace dscope::optim
