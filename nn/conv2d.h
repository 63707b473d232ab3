// Conv2d: a 2-D convolution layer owning its weight (and optional bias).
#pragma once

#include "nn/module.h"
#include "tensor/ops/conv2d.h"
#include "tensor/random.h"

namespace dscope::nn {

struct Conv2dSpec {
  std::int64_t in_channels = 0, out_channels = 0;
  std::int64_t kernel_size = 3, stride = 1, padding = 0, dilation = 1;
  bool bias = false;  // ResNet convolutions are followed by batch norm, which has its own shift
};

// Weight [out, in, k, k], Kaiming-normal (fan_out) initialised; bias, if any, starts at zero.
class Conv2d : public Module {
 public:
  Conv2d(const Conv2dSpec& spec, Generator& generator);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  const Conv2dSpec& spec() const { return spec_; }
  const Conv2dOptions& options() const { return options_; }
  Tensor weight, bias;

 private:
  Conv2dSpec spec_;
  Conv2dOptions options_;
};

}  // namespace dscope::nn
