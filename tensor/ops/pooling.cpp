// max_pool2d, avg_pool2d and global_avg_pool2d (see pooling.h and kernels/pool2d.h).
//
// The options are checked once, against PyTorch's rules with ceil_mode off: positive kernel and stride,
// 0 ≤ padding ≤ kernel/2, and a padded input at least as large as the kernel; then P = (H + 2·pad − kernel)
// / stride + 1, rounded down. max_pool2d saves only the int64 argmax of each output (not x): its backward
// scatters grad_y to those positions. avg_pool2d saves nothing but the geometry. global_avg_pool2d is mean
// over {H, W}, whose reduction kernel already runs one contiguous sum per plane, and whose backward is an
// expand of grad_y. Each also takes bfloat16 activations (tensor/autocast.h): computed in float32, output
// and input gradient stored in the input's dtype.
#include "tensor/ops/pooling.h"

#include <string>

#include "kernels/pool2d.h"
#include "tensor/autograd/grad_mode.h"
#include "tensor/autograd/node.h"
#include "tensor/dispatch.h"
#include "tensor/ops/cast.h"
#include "tensor/ops/checks.h"
#include "tensor/ops/reduction.h"

namespace dscope {
namespace {

std::string describe(const Pool2dOptions& o) {
  return detail::concat("kernel [", o.kernel_h, ",", o.kernel_w, "], stride [", o.stride_h, ",", o.stride_w,
                        "], padding [", o.padding_h, ",", o.padding_w, "]");
}

kernels::Pool2dGeometry pool2d_geometry(const char* op, const Tensor& input, const Pool2dOptions& o) {
  detail::check_floating(input, op, "input");
  detail::check_rank(input, 4, op, "input");
  DSCOPE_CHECK(o.kernel_h >= 1 && o.kernel_w >= 1 && o.stride_h >= 1 && o.stride_w >= 1, ValueError, op,
               ": kernel and stride must be positive, got ", describe(o), " (input ", input.shape(), ")");
  DSCOPE_CHECK(
      o.padding_h >= 0 && o.padding_w >= 0 && o.padding_h <= o.kernel_h / 2 && o.padding_w <= o.kernel_w / 2,
      ValueError, op, ": padding must be between 0 and half the kernel, got ", describe(o), " (input ",
      input.shape(), ")");
  kernels::Pool2dGeometry g;
  g.N = input.size(0), g.C = input.size(1), g.H = input.size(2), g.W = input.size(3);
  DSCOPE_CHECK(g.H + 2 * o.padding_h >= o.kernel_h && g.W + 2 * o.padding_w >= o.kernel_w, ShapeError, op,
               ": the padded input is smaller than the kernel, so the output would be empty (input ",
               input.shape(), ", ", describe(o), ")");
  g.kernel_h = o.kernel_h, g.kernel_w = o.kernel_w;
  g.stride_h = o.stride_h, g.stride_w = o.stride_w;
  g.pad_h = o.padding_h, g.pad_w = o.padding_w;
  g.P = (g.H + 2 * g.pad_h - g.kernel_h) / g.stride_h + 1;
  g.Q = (g.W + 2 * g.pad_w - g.kernel_w) / g.stride_w + 1;
  return g;
}

}  // namespace

Tensor max_pool2d(const Tensor& input, const Pool2dOptions& options) {
  const kernels::Pool2dGeometry g = pool2d_geometry("max_pool2d", input, options);
  const Device device = input.device();
  const DType stored = input.dtype();
  const Tensor x = dense_as(input, DType::Float32);
  Tensor y = Tensor::empty({g.N, g.C, g.P, g.Q}, DType::Float32, device);
  // Without a backward to read it (inference), the argmax is not stored.
  const bool needs_argmax = input.requires_grad() && grad_enabled();
  const Tensor argmax = needs_argmax ? Tensor::empty({g.N, g.C, g.P, g.Q}, DType::Int64, device) : Tensor();
  DSCOPE_DISPATCH(device, max_pool2d_forward, g, x.data<float>(), y.data<float>(),
                  needs_argmax ? argmax.data<std::int64_t>() : nullptr);
  return autograd::record(
      "max_pool2d", dense_as(y, stored), {input},
      [g, argmax, stored](const Tensor& grad_y) -> autograd::Gradients {
        const Tensor grad = dense_as(grad_y, DType::Float32);
        Tensor grad_x = Tensor::empty({g.N, g.C, g.H, g.W}, DType::Float32, grad.device());
        DSCOPE_DISPATCH(grad.device(), max_pool2d_backward, g, grad.data<float>(),
                        argmax.data<std::int64_t>(), grad_x.data<float>());
        return {dense_as(grad_x, stored)};
      });
}

Tensor avg_pool2d(const Tensor& input, const Pool2dOptions& options) {
  const kernels::Pool2dGeometry g = pool2d_geometry("avg_pool2d", input, options);
  const Device device = input.device();
  const DType stored = input.dtype();
  const Tensor x = dense_as(input, DType::Float32);
  Tensor y = Tensor::empty({g.N, g.C, g.P, g.Q}, DType::Float32, device);
  DSCOPE_DISPATCH(device, avg_pool2d_forward, g, x.data<float>(), y.data<float>());
  return autograd::record(
      "avg_pool2d", dense_as(y, stored), {input}, [g, stored](const Tensor& grad_y) -> autograd::Gradients {
        const Tensor grad = dense_as(grad_y, DType::Float32);
        Tensor grad_x = Tensor::empty({g.N, g.C, g.H, g.W}, DType::Float32, grad.device());
        DSCOPE_DISPATCH(grad.device(), avg_pool2d_backward, g, grad.data<float>(), grad_x.data<float>());
        return {dense_as(grad_x, stored)};
      });
}

Tensor global_avg_pool2d(const Tensor& input) {
  detail::check_floating(input, "global_avg_pool2d", "input");
  detail::check_rank(input, 4, "global_avg_pool2d", "input");
  DSCOPE_CHECK(input.size(2) * input.size(3) > 0, ShapeError,
               "global_avg_pool2d: input has an empty spatial plane (input ", input.shape(), ")");
  // The casts save nothing, and mean saves nothing either: the float32 copy lives only for this call.
  return cast(mean(cast(input, DType::Float32), {2, 3}), input.dtype());
}

}  // namespace dscope
