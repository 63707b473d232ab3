// Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay: PyTorch's torch.optim.SGD
// (dampening 0), step for step. For each parameter p with gradient g, in group (lr, wd):
//
//   d = g + wd · p
//   buffer = momentum · buffer + d        (the buffer starts at 0, so the first step sets it to d)
//   d = nesterov ? d + momentum · buffer : buffer      (both only when momentum > 0)
//   p = p − lr · d
//
// The momentum buffer is the slot "momentum_buffer" of the state dict; with momentum 0 there is no state.
#pragma once

#include <vector>

#include "optim/optimizer.h"

namespace dscope::optim {

struct SgdOptions {
  float momentum = 0.0f;
  bool nesterov = false;  // needs momentum > 0
};

class Sgd : public Optimizer {
 public:
  // One group with the given learning rate and weight decay.
  Sgd(std::vector<Tensor> parameters, float learning_rate, float weight_decay = 0.0f,
      SgdOptions options = {});
  // Several groups, each with its own learning rate and weight decay (see optim/param_groups.h).
  explicit Sgd(std::vector<ParamGroup> groups, SgdOptions options = {});

  void step() override;
  const SgdOptions& options() const { return options_; }

 protected:
  std::map<std::string, SlotKind> state_slots() const override;

 private:
  SgdOptions options_;
};

}  // namespace dscope::optim
