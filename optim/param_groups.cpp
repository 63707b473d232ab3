// Weight-decay parameter groups (see param_groups.h).
#include "optim/param_groups.h"

namespace dscope::optim {
namespace {
bool is_decayed(const Tensor& parameter) {
  return parameter.rank() >= 2;
}
}  // namespace

std::vector<ParamGroup> weight_decay_groups(const nn::Module& module, float learning_rate,
                                            float weight_decay) {
  check_non_negative(learning_rate, "weight_decay_groups", "learning rate");
  check_non_negative(weight_decay, "weight_decay_groups", "weight decay");
  ParamGroup decayed{{}, learning_rate, weight_decay};
  ParamGroup not_decayed{{}, learning_rate, 0.0f};
  for (const auto& [name, parameter] : module.named_parameters())
    (is_decayed(parameter) ? decayed : not_decayed).params.push_back(parameter);
  return {decayed, not_decayed};
}

WeightDecaySplit weight_decay_split(const nn::NamedTensors& parameters) {
  WeightDecaySplit split;
  for (const auto& [name, parameter] : parameters)
    (is_decayed(parameter) ? split.decayed : split.not_decayed).push_back(name);
  return split;
}

}  // namespace dscope::optim
