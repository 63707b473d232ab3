// Readable printing, in the spirit of PyTorch's repr: nested brackets, four decimals, and the first and
// last three entries of each dimension once a tensor has more than kSummariseAbove elements.
// It lives with the ops, not in the tensor core, because it names the grad_fn, which is graph knowledge.
#include <cstdio>
#include <functional>

#include "tensor/autograd/node.h"
#include "tensor/tensor.h"

namespace dscope {
namespace {

constexpr std::int64_t kSummariseAbove = 1000;
constexpr std::int64_t kEdgeItems = 3;

template <typename T>
void print_values(std::ostream& out, const std::vector<T>& values, const Shape& shape, bool summarise) {
  const Strides strides = contiguous_strides(shape);
  std::function<void(std::int64_t, std::int64_t)> print_axis = [&](std::int64_t axis, std::int64_t base) {
    if (axis == shape.rank()) {
      char text[32];
      if constexpr (std::is_same_v<T, float>) {
        std::snprintf(text, sizeof text, "%.4f", static_cast<double>(values[static_cast<std::size_t>(base)]));
      } else {
        std::snprintf(text, sizeof text, "%lld",
                      static_cast<long long>(values[static_cast<std::size_t>(base)]));
      }
      out << text;
      return;
    }
    out << '[';
    const std::int64_t extent = shape[axis];
    const bool elide = summarise && extent > 2 * kEdgeItems;
    for (std::int64_t i = 0; i < extent; ++i) {
      if (elide && i == kEdgeItems) {
        out << ", ...";
        i = extent - kEdgeItems;
      }
      if (i > 0) out << ", ";
      print_axis(axis + 1, base + i * strides[static_cast<std::size_t>(axis)]);
    }
    out << ']';
  };
  print_axis(0, 0);
}

}  // namespace

std::ostream& operator<<(std::ostream& out, const Tensor& tensor) {
  if (!tensor.defined()) return out << "tensor(undefined)";
  out << "tensor(";
  const bool summarise = tensor.numel() > kSummariseAbove;
  if (tensor.dtype() == DType::Float32) {
    print_values(out, tensor.to_vector<float>(), tensor.shape(), summarise);
  } else if (tensor.dtype() == DType::Int64) {
    print_values(out, tensor.to_vector<std::int64_t>(), tensor.shape(), summarise);
  } else if (tensor.dtype() == DType::BFloat16) {
    std::vector<float> widened;
    for (const BFloat16 value : tensor.to_vector<BFloat16>())
      widened.push_back(kernels::to_float(value));
    print_values(out, widened, tensor.shape(), summarise);
  } else {
    out << "<" << dtype_name(tensor.dtype()) << " values>";
  }
  out << ", shape=" << tensor.shape() << ", dtype=" << dtype_name(tensor.dtype());
  if (!tensor.device().is_cpu()) out << ", device=" << tensor.device();
  if (tensor.grad_fn())
    out << ", grad_fn=" << tensor.grad_fn()->name();
  else if (tensor.requires_grad())
    out << ", requires_grad=true";
  return out << ')';
}

}  // namespace dscope
