// ReLU as a layer, for Sequential.
#pragma once

#include "nn/module.h"

namespace dscope::nn {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& input) override;
  std::string describe() const override { return "ReLU"; }
};

}  // namespace dscope::nn
