// Dropout as a layer.
#pragma once

#include "nn/module.h"
#include "tensor/random.h"

namespace dscope::nn {

// Inverted dropout in training, identity in evaluation. Draws its masks from its own generator, seeded at
// construction, so a run is reproducible whatever else uses the default generator.
class Dropout : public Module {
 public:
  explicit Dropout(float p, std::uint64_t seed = 0);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;

 private:
  float p_;
  Generator generator_;
};

}  // namespace dscope::nn
