#include "nn/pooling.h"

namespace dscope::nn {
namespace {
std::string describe_pool(const char* kind, const Pool2dOptions& o) {
  return detail::concat(kind, "(", o.kernel_h, "x", o.kernel_w, ", stride ", o.stride_h, ", padding ",
                        o.padding_h, ")");
}
}  // namespace

Tensor MaxPool2d::forward(const Tensor& input) {
  return max_pool2d(input, options_);
}
std::string MaxPool2d::describe() const {
  return describe_pool("MaxPool2d", options_);
}

Tensor AvgPool2d::forward(const Tensor& input) {
  return avg_pool2d(input, options_);
}
std::string AvgPool2d::describe() const {
  return describe_pool("AvgPool2d", options_);
}

Tensor GlobalAvgPool::forward(const Tensor& input) {
  return global_avg_pool2d(input);
}

}  // namespace dscope::nn
