// conv2d (see conv2d.h): checks the arguments once, packs them into a Conv2dGeometry, dispatches the kernels
// of kernels/conv2d.h (which choose im2col + GEMM or Winograd for the geometry), and records the backward
// right below the forward.
//
// The kernel adds the bias while each output block is still in cache. What the backward saves, and why: the
// input when the weight needs a gradient (grad_w correlates grad_y with x), the weight when the input needs
// one (grad_x spreads grad_y back through w), nothing else. What the kernels derive from them (im2col
// columns, Winograd tiles) is rebuilt rather than kept: it is several times larger than the input (9 times
// for a 3×3 filter), and rebuilding it costs a small part of the GEMMs that read it.
//
// Mixed precision (tensor/autocast.h): under autocast a float32 input is cast to bfloat16 first. A bfloat16
// input gives a bfloat16 output and input gradient, and is what the backward saves (half the memory); the
// kernels take bfloat16 activations and compute in float32. Weights and bias are float32 always, and so are
// their gradients.
#include "tensor/ops/conv2d.h"

#include <string>

#include "kernels/conv2d.h"
#include "tensor/autocast.h"
#include "tensor/autograd/grad_mode.h"
#include "tensor/autograd/node.h"
#include "tensor/dispatch.h"
#include "tensor/ops/activation.h"
#include "tensor/ops/activation_type.h"
#include "tensor/ops/cast.h"
#include "tensor/ops/checks.h"
#include "tensor/ops/reduction.h"

namespace dscope {
namespace {

kernels::Conv2dGeometry checked_geometry(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                         const Conv2dOptions& options) {
  detail::check_floating(input, "conv2d", "input");
  detail::check_float(weight, "conv2d", "weight");
  detail::check_rank(input, 4, "conv2d", "input [N, C, H, W]");
  detail::check_rank(weight, 4, "conv2d", "weight [K, C, R, S]");
  detail::check_same_device(input, weight, "conv2d");
  DSCOPE_CHECK(weight.size(1) == input.size(1), ShapeError, "conv2d: weight expects ", weight.size(1),
               " input channels but input has ", input.size(1), " (input ", input.shape(), ", weight ",
               weight.shape(), ")");
  if (bias.defined()) {
    detail::check_float(bias, "conv2d", "bias");
    detail::check_same_device(input, bias, "conv2d");
    DSCOPE_CHECK(bias.rank() == 1 && bias.size(0) == weight.size(0), ShapeError,
                 "conv2d: bias must have shape [", weight.size(0), "] to match weight ", weight.shape(),
                 " but has shape ", bias.shape());
  }
  DSCOPE_CHECK(options.stride_h >= 1 && options.stride_w >= 1, ValueError,
               "conv2d: stride must be positive, got ", options.stride_h, "x", options.stride_w, " (input ",
               input.shape(), ", weight ", weight.shape(), ")");
  DSCOPE_CHECK(options.dilation_h >= 1 && options.dilation_w >= 1, ValueError,
               "conv2d: dilation must be positive, got ", options.dilation_h, "x", options.dilation_w,
               " (input ", input.shape(), ", weight ", weight.shape(), ")");
  DSCOPE_CHECK(options.padding_h >= 0 && options.padding_w >= 0, ValueError,
               "conv2d: padding must be non-negative, got ", options.padding_h, "x", options.padding_w,
               " (input ", input.shape(), ", weight ", weight.shape(), ")");

  kernels::Conv2dGeometry g;
  g.N = input.size(0), g.C = input.size(1), g.H = input.size(2), g.W = input.size(3);
  g.K = weight.size(0), g.R = weight.size(2), g.S = weight.size(3);
  g.stride_h = options.stride_h, g.stride_w = options.stride_w;
  g.pad_h = options.padding_h, g.pad_w = options.padding_w;
  g.dilation_h = options.dilation_h, g.dilation_w = options.dilation_w;
  g.P = kernels::conv2d_output_size(g.H, g.R, g.stride_h, g.pad_h, g.dilation_h);
  g.Q = kernels::conv2d_output_size(g.W, g.S, g.stride_w, g.pad_w, g.dilation_w);
  DSCOPE_CHECK(g.P >= 1 && g.Q >= 1, ShapeError, "conv2d: the ", g.R, "x", g.S, " filter (dilation ",
               g.dilation_h, "x", g.dilation_w, ") is larger than the padded input (", g.H, "x", g.W,
               " with padding ", g.pad_h, "x", g.pad_w, ") (input ", input.shape(), ", weight ",
               weight.shape(), ")");
  return g;
}

// The layer a convolution runs, as the CPU kernel profiler lists it: "N64 16→32 64×64 3×3 s2".
std::string describe(const kernels::Conv2dGeometry& g) {
  std::string text = detail::concat("N", g.N, " ", g.C, "→", g.K, " ", g.H, "×", g.W, " ", g.R, "×", g.S);
  if (g.stride_h != 1 || g.stride_w != 1)
    text += g.stride_h == g.stride_w ? detail::concat(" s", g.stride_h)
                                     : detail::concat(" s", g.stride_h, "×", g.stride_w);
  return text;
}

// The checked geometry, dense operands, and the output to write (activations in the input's dtype).
struct Operands {
  kernels::Conv2dGeometry g;
  Tensor x, w, b, y;
};

Operands prepare(const Tensor& input, const Tensor& weight, const Tensor& bias,
                 const Conv2dOptions& options) {
  Operands o;
  o.g = checked_geometry(input, weight, bias, options);
  o.x = dense_as(input, input.dtype()), o.w = weight.contiguous();
  o.b = bias.defined() ? bias.contiguous() : Tensor();
  o.y = Tensor::empty({o.g.N, o.g.K, o.g.P, o.g.Q}, input.dtype(), input.device());
  return o;
}

}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options) {
  if (input.defined() && input.dtype() == DType::Float32 && autocast_dtype() != DType::Float32)
    return conv2d(cast(input, autocast_dtype()), weight, bias, options);
  const auto [g, x, w, b, y] = prepare(input, weight, bias, options);
  const DType stored = input.dtype();
  detail::with_activation_type(stored, [&](auto element) {
    using T = decltype(element);
    DSCOPE_DISPATCH_DESCRIBED(input.device(), describe(g), conv2d_forward, g, x.data<T>(), w.data<float>(),
                              b.defined() ? b.data<float>() : nullptr, y.data<T>());
  });

  const bool input_needs_grad = input.requires_grad(), weight_needs_grad = weight.requires_grad();
  const bool bias_needs_grad = bias.defined() && bias.requires_grad();
  const Tensor x_saved = weight_needs_grad ? x.detach() : Tensor();
  const Tensor w_saved = input_needs_grad ? w.detach() : Tensor();
  const std::vector<Tensor> inputs =
      bias.defined() ? std::vector<Tensor>{input, weight, bias} : std::vector<Tensor>{input, weight};
  return autograd::record(
      "conv2d", y, inputs,
      [g, x_saved, w_saved, bias_needs_grad, stored,
       has_bias = bias.defined()](const Tensor& grad_y) -> autograd::Gradients {
        const Tensor grad = dense_as(grad_y, stored);
        autograd::Gradients grads(has_bias ? 3 : 2);
        detail::with_activation_type(stored, [&](auto element) {
          using T = decltype(element);
          if (w_saved.defined()) {
            grads[0] = Tensor::empty({g.N, g.C, g.H, g.W}, stored, grad.device());
            DSCOPE_DISPATCH_DESCRIBED(grad.device(), describe(g), conv2d_backward_input, g, grad.data<T>(),
                                      w_saved.data<float>(), grads[0].data<T>());
          }
          if (x_saved.defined()) {
            grads[1] = Tensor::empty({g.K, g.C, g.R, g.S}, DType::Float32, grad.device());
            DSCOPE_DISPATCH_DESCRIBED(grad.device(), describe(g), conv2d_backward_weight, g,
                                      x_saved.data<T>(), grad.data<T>(), grads[1].data<float>());
          }
        });
        if (bias_needs_grad) grads[2] = sum(dense_as(grad, DType::Float32), {0, 2, 3});
        return grads;
      });
}

Tensor conv2d_relu(const Tensor& input, const Tensor& weight, const Tensor& bias,
                   const Conv2dOptions& options) {
  const bool recorded = grad_enabled() && (input.requires_grad() || weight.requires_grad() ||
                                           (bias.defined() && bias.requires_grad()));
  if (recorded || !input.device().is_cpu() || input.dtype() != DType::Float32 ||
      autocast_dtype() != DType::Float32)
    return relu(conv2d(input, weight, bias, options));
  const Operands o = prepare(input, weight, bias, options);
  // A CPU kernel called without DSCOPE_DISPATCH, so timed here.
  const profiler::KernelScope timed("conv2d_forward", [&] { return describe(o.g); });
  kernels::cpu::conv2d_forward(o.g, o.x.data<float>(), o.w.data<float>(),
                               o.b.defined() ? o.b.data<float>() : nullptr, o.y.data<float>(),
                               kernels::cpu::Conv2dActivation::relu);
  return o.y;
}

Tensor conv2d_add_relu(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& residual,
                       const Conv2dOptions& options) {
  const bool recorded =
      grad_enabled() && (input.requires_grad() || weight.requires_grad() ||
                         (bias.defined() && bias.requires_grad()) || residual.requires_grad());
  if (recorded || !input.device().is_cpu() || input.dtype() != DType::Float32 ||
      residual.dtype() != DType::Float32 || autocast_dtype() != DType::Float32)
    return add_relu(conv2d(input, weight, bias, options), residual);
  const Operands o = prepare(input, weight, bias, options);
  DSCOPE_CHECK(residual.device() == o.y.device(), DeviceError, "conv2d_add_relu: residual on ",
               residual.device(), " for an output on ", o.y.device());
  DSCOPE_CHECK(residual.shape() == o.y.shape(), ShapeError, "conv2d_add_relu: residual ", residual.shape(),
               " for an output of shape ", o.y.shape());
  const Tensor shortcut = residual.contiguous();
  const profiler::KernelScope timed("conv2d_forward", [&] { return describe(o.g); });
  kernels::cpu::conv2d_forward(o.g, o.x.data<float>(), o.w.data<float>(),
                               o.b.defined() ? o.b.data<float>() : nullptr, o.y.data<float>(),
                               {kernels::cpu::Conv2dActivation::relu, shortcut.data<float>()});
  return o.y;
}

}  // namespace dscope
