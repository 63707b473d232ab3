// Adam and AdamW (see adam.h): validation and bias correction here, the fused update in
// kernels/cpu/optimizer_update.cpp.
#include "optim/adam.h"

#include <cmath>
#include <utility>

#include "kernels/optimizer_update.h"
#include "tensor/autograd/grad_mode.h"
#include "tensor/dispatch.h"

namespace dscope::optim {
namespace {
constexpr const char* kExpAvgSlot = "exp_avg";
constexpr const char* kExpAvgSqSlot = "exp_avg_sq";
constexpr const char* kStepSlot = "step";
}  // namespace

Adam::Adam(std::vector<Tensor> parameters, float learning_rate, float weight_decay, AdamOptions options)
    : Adam(std::vector<ParamGroup>{ParamGroup{std::move(parameters), learning_rate, weight_decay}}, options,
           false) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options) : Adam(std::move(groups), options, false) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options, bool decoupled_weight_decay)
    : Optimizer(std::move(groups)), options_(options), decoupled_weight_decay_(decoupled_weight_decay) {
  const char* name = decoupled_weight_decay_ ? "AdamW" : "Adam";
  for (const auto& [beta, what] : {std::pair{options_.beta1, "beta1"}, std::pair{options_.beta2, "beta2"}})
    DSCOPE_CHECK(beta >= 0.0f && beta < 1.0f, ValueError, name, ": ", what, " must be in [0, 1), got ", beta);
  DSCOPE_CHECK(std::isfinite(options_.epsilon) && options_.epsilon > 0.0f, ValueError, name,
               ": epsilon must be finite and > 0, got ", options_.epsilon);
}

std::map<std::string, Optimizer::SlotKind> Adam::state_slots() const {
  return {{kExpAvgSlot, SlotKind::Elementwise},
          {kExpAvgSqSlot, SlotKind::Elementwise},
          {kStepSlot, SlotKind::Counter}};
}

void Adam::step() {
  NoGradGuard no_grad;
  const double beta1 = options_.beta1, beta2 = options_.beta2;
  for (std::size_t g = 0; g < groups().size(); ++g) {
    const ParamGroup& group = groups()[g];
    // Groups are open to change between steps (a schedule sets the rate), so they are checked again here.
    const char* where = decoupled_weight_decay_ ? "AdamW: step" : "Adam: step";
    check_non_negative(group.learning_rate, where, "learning rate");
    check_non_negative(group.weight_decay, where, "weight decay");
    for (std::size_t i = 0; i < group.params.size(); ++i) {
      const Tensor grad = gradient_for_update(g, i);
      if (!grad.defined()) continue;
      const Tensor& param = group.params[i];
      // Each parameter counts its own updates: one that first gets a gradient late starts its bias
      // correction afresh, as in PyTorch.
      const auto t = static_cast<double>(++counter(g, i, kStepSlot));
      kernels::AdamUpdate update;
      update.learning_rate = group.learning_rate;
      update.weight_decay = group.weight_decay;
      update.decoupled_weight_decay = decoupled_weight_decay_;
      update.beta1 = options_.beta1;
      update.beta2 = options_.beta2;
      update.epsilon = options_.epsilon;
      update.bias_correction1 = static_cast<float>(1.0 - std::pow(beta1, t));
      update.bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(beta2, t)));
      DSCOPE_DISPATCH(param.device(), adam_update, param.numel(), update, param.data<float>(),
                      grad.data<float>(), state(g, i, kExpAvgSlot).data<float>(),
                      state(g, i, kExpAvgSqSlot).data<float>());
    }
  }
  ++steps_;
}

AdamW::AdamW(std::vector<Tensor> parameters, float learning_rate, float weight_decay, AdamOptions options)
    : Adam(std::vector<ParamGroup>{ParamGroup{std::move(parameters), learning_rate, weight_decay}}, options,
           true) {}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamOptions options) : Adam(std::move(groups), options, true) {}

}  // namespace dscope::optim
