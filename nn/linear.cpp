#include "nn/linear.h"

#include "nn/init.h"
#include "tensor/ops/cast.h"
#include "tensor/ops/matmul.h"

namespace dscope::nn {

Linear::Linear(std::int64_t in_features, std::int64_t out_features, Generator& generator, bool with_bias) {
  DSCOPE_CHECK(in_features > 0 && out_features > 0, ValueError, "Linear: features must be positive (in ",
               in_features, ", out ", out_features, ")");
  weight = register_parameter("weight", fan_in_uniform({out_features, in_features}, in_features, generator));
  if (with_bias) bias = register_parameter("bias", fan_in_uniform({out_features}, in_features, generator));
}

Tensor Linear::forward(const Tensor& input) {
  // Activations that arrive in bfloat16 (mixed precision, tensor/autocast.h) are cast back: the head is a
  // small product, and the logits and the loss after it keep float32's precision.
  return linear(input.dtype() == DType::BFloat16 ? cast(input, DType::Float32) : input, weight, bias);
}

std::string Linear::describe() const {
  return detail::concat("Linear(", weight.size(1), "->", weight.size(0), bias.defined() ? ", bias" : "", ")");
}

}  // namespace dscope::nn
