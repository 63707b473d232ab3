// Flatten as a layer.
#pragma once

#include "nn/module.h"

namespace dscope::nn {

// [N, ...] → [N, product of the rest].
class Flatten : public Module {
 public:
  Tensor forward(const Tensor& input) override;
  std::string describe() const override { return "Flatten"; }
};

}  // namespace dscope::nn
