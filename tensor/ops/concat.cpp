// concat (see concat.h): each input is copied into its slice of the output; the backward hands each
// input the matching slice of the output gradient (a narrow view, no copy).
#include "tensor/ops/concat.h"

#include "tensor/autograd/node.h"
#include "tensor/ops/checks.h"

namespace dscope {

Tensor concat(const std::vector<Tensor>& inputs, std::int64_t axis) {
  DSCOPE_CHECK(!inputs.empty(), ShapeError, "concat: needs at least one tensor");
  const Tensor& first = inputs.front();
  detail::check_defined(first, "concat", "inputs[0]");
  const std::int64_t at = normalize_axis(axis, first.rank(), "concat");
  std::vector<std::int64_t> dims = first.shape().dims();
  dims[static_cast<std::size_t>(at)] = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& input = inputs[i];
    detail::check_defined(input, "concat", "an input");
    DSCOPE_CHECK(input.dtype() == first.dtype() && input.device() == first.device(), DTypeError,
                 "concat: input ", i, " differs from input 0 in dtype or device");
    DSCOPE_CHECK(input.rank() == first.rank(), ShapeError, "concat: input ", i, " has shape ", input.shape(),
                 " but input 0 has ", first.shape());
    for (std::int64_t d = 0; d < first.rank(); ++d)
      DSCOPE_CHECK(d == at || input.shape()[d] == first.shape()[d], ShapeError, "concat: input ", i,
                   " has shape ", input.shape(), " but input 0 has ", first.shape(), " (only axis ", at,
                   " may differ)");
    dims[static_cast<std::size_t>(at)] += input.shape()[at];
  }
  Tensor y = Tensor::empty(Shape(dims), first.dtype(), first.device());
  std::vector<std::int64_t> starts;
  std::int64_t start = 0;
  for (const Tensor& input : inputs) {
    starts.push_back(start);
    copy_elements(input, y.detach().narrow(at, start, input.shape()[at]));
    start += input.shape()[at];
  }
  std::vector<std::int64_t> lengths;
  for (const Tensor& input : inputs)
    lengths.push_back(input.shape()[at]);
  return autograd::record("concat", y, inputs,
                          [at, starts, lengths](const Tensor& grad_y) -> autograd::Gradients {
                            autograd::Gradients grads;
                            for (std::size_t i = 0; i < starts.size(); ++i)
                              grads.push_back(grad_y.narrow(at, starts[i], lengths[i]));
                            return grads;
                          });
}

}  // namespace dscope
