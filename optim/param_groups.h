// Splitting a model's parameters into a group with weight decay and a group without.
//
// Weight decay pulls weights towards zero to limit the model's capacity; on a batch norm scale or shift, or a
// bias, it only fights the normalisation and shifts the activations, so common practice (and the ResNet
// training recipes) leaves them undecayed. Those are exactly the parameters of rank ≤ 1 (batch norm γ and β
// and every bias are vectors; convolution and linear weights have rank 4 and 2), so the rule is by rank
// rather than by name and holds for any model.
#pragma once

#include <string>
#include <vector>

#include "nn/module.h"
#include "optim/optimizer.h"

namespace dscope::optim {

// Two groups over the module's parameters, in registration order: group 0 holds the parameters of rank ≥ 2
// with `weight_decay`, group 1 those of rank ≤ 1 with no weight decay; both use `learning_rate`. A group may
// be empty (a model without biases or batch norm). Throws ValueError for a negative rate or decay.
std::vector<ParamGroup> weight_decay_groups(const nn::Module& module, float learning_rate,
                                            float weight_decay);

// The same split for named parameters, returning the names of group 0 and group 1 (for logs and tests).
struct WeightDecaySplit {
  std::vector<std::string> decayed;
  std::vector<std::string> not_decayed;
};
WeightDecaySplit weight_decay_split(const nn::NamedTensors& parameters);

}  // namespace dscope::optim
