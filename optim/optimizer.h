// Optimizer: updates parameters from their gradients, one step at a time.
//
// Parameters are held in groups that share hyper-parameters, so that (for example) batch norm and bias
// parameters can skip weight decay while convolution weights do not (see optim/param_groups.h). A step reads
// each parameter's grad(), updates the parameter's values in place (the same tensors the model holds), and
// keeps any per-parameter state (momentum, Adam moments) as tensors of the parameter's shape, created on the
// parameter's first update, as PyTorch does. A parameter without a gradient is skipped: its values and its
// state stay as they are, and its own step count does not advance.
//
// Hyper-parameters are checked when set (here and in each optimizer's constructor), so that a negative
// learning rate fails where it is written, not as a diverged loss an hour later.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace dscope::optim {

struct ParamGroup {
  std::vector<Tensor> params;
  float learning_rate = 1e-3f;
  float weight_decay = 0.0f;
};

class Optimizer {
 public:
  // Throws ValueError for a negative or non-finite learning rate or weight decay, an undefined or
  // non-float32 parameter, or a parameter that appears twice (in one group or in two).
  explicit Optimizer(std::vector<ParamGroup> groups);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient (parameters without one are skipped), under no_grad.
  virtual void step() = 0;
  // Drops every parameter's gradient.
  void zero_grad();

  std::vector<ParamGroup>& groups() { return groups_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  // Sets the learning rate of every group (what a schedule does before each step); ValueError if negative.
  void set_learning_rate(float learning_rate);
  std::int64_t steps_taken() const { return steps_; }

  // Per-parameter state as named tensors ("group.param.slot", e.g. "0.3.exp_avg") plus the step count as
  // "step" (an int64 scalar), for saving a training run and resuming it exactly. The tensors are copies: a
  // later step does not change them.
  std::map<std::string, Tensor> state_dict() const;
  // Restores what state_dict() returned, replacing all current state. Every entry is checked before any is
  // used: names, group and parameter indices, dtypes and shapes, and that each parameter with state has all
  // the slots this optimizer keeps. Throws ShapeError (a dtype or shape that does not fit) or ValueError
  // (anything else), listing every entry at fault by name.
  void load_state_dict(const std::map<std::string, Tensor>& state);

 protected:
  // What a per-parameter state slot holds: a tensor of the parameter's shape (moments) or an int64 scalar
  // count of the parameter's own updates (Adam's bias correction needs it).
  enum class SlotKind { Elementwise, Counter };
  // The slots this optimizer keeps for every parameter it has updated, so load_state_dict can reject a state
  // from another kind of optimizer. The default is none (a stateless optimizer).
  virtual std::map<std::string, SlotKind> state_slots() const { return {}; }

  // The state tensor `slot` of parameter `index` of group `group`, created as zeros of the parameter's
  // shape (and device) on first use. Throws DeviceError when the parameter has moved to another device since.
  Tensor& state(std::size_t group, std::size_t index, const std::string& slot);
  // The counter `slot` of parameter `index` of group `group`, created as 0 on first use. The reference
  // points into the state tensor, so state_dict() sees every change.
  std::int64_t& counter(std::size_t group, std::size_t index, const std::string& slot);
  // The gradient to apply to parameter `index` of group `group`, dense; undefined when it has none. Throws
  // ShapeError when the gradient's shape or dtype does not match the parameter, DeviceError when it is on
  // another device, ValueError when the parameter is not contiguous (an update writes its elements in place,
  // in storage order).
  Tensor gradient_for_update(std::size_t group, std::size_t index) const;

  std::int64_t steps_ = 0;

 private:
  std::vector<ParamGroup> groups_;
  std::map<std::string, Tensor> state_;
};

// Throws ValueError naming `where` and `what` unless value is finite and ≥ 0: the check every learning rate,
// weight decay and momentum goes through.
void check_non_negative(float value, const char* where, const char* what);

}  // namespace dscope::optim
