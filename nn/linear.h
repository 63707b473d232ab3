// Linear: a fully connected layer.
#pragma once

#include "nn/module.h"
#include "tensor/random.h"

namespace dscope::nn {

// y = x·weightᵀ + bias for x [N, in]; PyTorch's default initialisation (uniform ±1/sqrt(in)). A bfloat16 x
// (mixed precision) is cast to float32 first, so y is float32.
class Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, Generator& generator, bool with_bias = true);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  Tensor weight, bias;
};

}  // namespace dscope::nn
