// SGD (see sgd.h): validation here, the fused update in kernels/cpu/optimizer_update.cpp.
#include "optim/sgd.h"

#include "kernels/optimizer_update.h"
#include "tensor/autograd/grad_mode.h"
#include "tensor/dispatch.h"

namespace dscope::optim {
namespace {
constexpr const char* kMomentumSlot = "momentum_buffer";
}  // namespace

Sgd::Sgd(std::vector<Tensor> parameters, float learning_rate, float weight_decay, SgdOptions options)
    : Sgd(std::vector<ParamGroup>{ParamGroup{std::move(parameters), learning_rate, weight_decay}}, options) {}

Sgd::Sgd(std::vector<ParamGroup> groups, SgdOptions options)
    : Optimizer(std::move(groups)), options_(options) {
  check_non_negative(options_.momentum, "SGD", "momentum");
  DSCOPE_CHECK(!options_.nesterov || options_.momentum > 0.0f, ValueError,
               "SGD: Nesterov momentum needs momentum > 0, got ", options_.momentum);
}

std::map<std::string, Optimizer::SlotKind> Sgd::state_slots() const {
  if (options_.momentum == 0.0f) return {};
  return {{kMomentumSlot, SlotKind::Elementwise}};
}

void Sgd::step() {
  NoGradGuard no_grad;
  for (std::size_t g = 0; g < groups().size(); ++g) {
    const ParamGroup& group = groups()[g];
    // Groups are open to change between steps (a schedule sets the rate), so they are checked again here.
    check_non_negative(group.learning_rate, "SGD: step", "learning rate");
    check_non_negative(group.weight_decay, "SGD: step", "weight decay");
    const kernels::SgdUpdate update{group.learning_rate, group.weight_decay, options_.momentum,
                                    options_.nesterov};
    for (std::size_t i = 0; i < group.params.size(); ++i) {
      const Tensor grad = gradient_for_update(g, i);
      if (!grad.defined()) continue;
      const Tensor& param = group.params[i];
      float* momentum_buffer = options_.momentum == 0.0f ? nullptr : state(g, i, kMomentumSlot).data<float>();
      DSCOPE_DISPATCH(param.device(), sgd_update, param.numel(), update, param.data<float>(),
                      grad.data<float>(), momentum_buffer);
    }
  }
  ++steps_;
}

}  // namespace dscope::optim
