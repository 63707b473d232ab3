#include "nn/conv2d.h"

#include "nn/init.h"

namespace dscope::nn {

Conv2d::Conv2d(const Conv2dSpec& spec, Generator& generator) : spec_(spec) {
  DSCOPE_CHECK(spec.in_channels > 0 && spec.out_channels > 0 && spec.kernel_size > 0, ValueError,
               "Conv2d: channels and kernel size must be positive (in ", spec.in_channels, ", out ",
               spec.out_channels, ", kernel ", spec.kernel_size, ")");
  weight = register_parameter(
      "weight", kaiming_normal({spec.out_channels, spec.in_channels, spec.kernel_size, spec.kernel_size},
                               FanMode::Out, generator));
  if (spec.bias) bias = register_parameter("bias", Tensor::zeros({spec.out_channels}));
  options_.stride_h = options_.stride_w = spec.stride;
  options_.padding_h = options_.padding_w = spec.padding;
  options_.dilation_h = options_.dilation_w = spec.dilation;
}

Tensor Conv2d::forward(const Tensor& input) {
  return conv2d(input, weight, bias, options_);
}

std::string Conv2d::describe() const {
  return detail::concat("Conv2d(", spec_.in_channels, "->", spec_.out_channels, ", ", spec_.kernel_size, "x",
                        spec_.kernel_size, ", stride ", spec_.stride, ", padding ", spec_.padding,
                        spec_.dilation != 1 ? detail::concat(", dilation ", spec_.dilation) : std::string(),
                        spec_.bias ? ", bias" : "", ")");
}

}  // namespace dscope::nn
