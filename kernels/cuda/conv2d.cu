// 2-D convolution on the GPU: see kernels/conv2d.h. Each pass is a product on the shared tiled kernel
// (implicit_gemm.cuh), with operands that gather straight from the NCHW tensors:
//
//   forward          y[k, (n,p,q)]      = Σ_(c,r,s) w[k, (c,r,s)] · x[n, c, ih, iw]
//                    where ih = p·sh − ph + r·dh, iw = q·sw − pw + s·dw
//   backward weight  grad_w[k, (c,r,s)] = Σ_(n,p,q) grad_y[n, k, p, q] · x[n, c, ih, iw]
//   backward input   grad_x[c, (n,h,w)] = Σ_(r,s,k) w[k, c, r, s] · grad_y[n, k, p, q]
//                    where p·sh = h + ph − r·dh, q likewise
//
// Out-of-range positions read as zero (the padding). In the backward input pass, with a stride, only some
// taps reach a given h: those with h + ph − r·dh divisible by sh, which depends only on h mod sh. So it runs
// as sh·sw products, one per phase (h mod sh, w mod sw), each over the positions of its phase and only the
// taps that reach them; then p = h' + (a + ph − r·dh)/sh for h = a + sh·h', linear in h' and in the tap,
// which is what a Gather can express, and no multiply is spent on a tap that contributes nothing. Its
// reduction runs over the filters innermost, on a copy of the weights laid out [C, R, S, K], so that four
// neighbouring k are neighbours in memory and travel in one 16-byte copy.
// Indices are 32-bit, which the entry points check the tensors fit; the shared kernel splits the weight
// gradient's long reduction across blocks.
//
// Three departures where the plain products fit badly, all with DSCOPE_CONV=own (the default):
//   - on the tensor cores (TF32, BF16), the passes read copies of their inputs made first, so that four
//     values travel in one copy: the forward and input gradient channels-last copies of x and grad_y (Note
//     [channels-last copies], conv2d_operands.cuh), the weight gradient S copies of x shifted by each
//     filter column (Note [shifted copies]);
//   - in FP32, the three passes of a 3×3 stride-1 layer with 64 channels or more run by Winograd's
//     F(4×4, 3×3) (conv2d_winograd.cuh): 4 times fewer multiplications;
//   - the input gradient of an input with a few channels (an image's three) runs one thread per input
//     position (conv2d_few_channels.cuh), where the products' tiles would be almost all padding.
// DSCOPE_CONV=direct (settings.h) runs every pass as the products above, on the NCHW tensors, to compare
// with; DSCOPE_CONV=cudnn runs the three passes through cuDNN instead (conv2d_cudnn.cu).
#include <type_traits>

#include "kernels/conv2d.h"
#include "kernels/convert.h"
#include "kernels/cuda/conv2d_cudnn.h"  // used only when DSCOPE_WITH_CUDNN
#include "kernels/cuda/conv2d_few_channels.cuh"
#include "kernels/cuda/conv2d_operands.cuh"
#include "kernels/cuda/conv2d_winograd.cuh"
#include "kernels/cuda/transpose.cuh"

namespace dscope::kernels::cuda {
namespace {

// Whether the passes that can read layout copies should (Notes [channels-last copies] and [shifted
// copies], conv2d_operands.cuh): our own kernels on the tensor cores.
bool layout_copies_pay() {
  return conv_backend() == ConvBackend::Own && math_mode() != MathMode::FP32;
}

// Whether Winograd's F(4×4, 3×3) should run where it can: our own kernels in FP32, from 64 channels
// (winograd::pays).
bool winograd_pays(const Conv2dGeometry& g) {
  return conv_backend() == ConvBackend::Own && math_mode() == MathMode::FP32 && winograd::pays(g);
}

// The passes that read layout copies take x or grad_y as float, or as bfloat16 activations (mixed
// precision) widened as they are copied; and store the result as float, or rounded into bfloat16 where
// y_bfloat16 / grad_x_bfloat16 is set (conv2d_operands.cuh).

template <typename T>
__global__ void shifted_copies_kernel(ConvShape g, const T* x, float* x_shifted) {
  DSCOPE_GRID_STRIDE_LOOP(at, shifted_copy_floats(g)) {
    x_shifted[at] = shifted_copy_element(g, x, at);
  }
}

// The forward on channels-last copies of x and of the weights (Note [channels-last copies]).
template <typename T>
void forward_on_channels_last_copies(const ConvShape& shape, const T* x, const float* w, const float* bias,
                                     float* y, BFloat16* y_bfloat16) {
  const cudaStream_t stream = current_stream();
  const Scratch<float> x_channels_last(static_cast<std::size_t>(shape.N) * shape.C * shape.HW, stream);
  const Scratch<float> w_channels_last(static_cast<std::size_t>(shape.K) * shape.CRS, stream);
  transpose(shape.N, shape.C, shape.HW, shape.HW, x, x_channels_last.get(),
            "conv2d_forward input to channels-last");
  transpose(shape.K, shape.C, shape.RS, shape.RS, w, w_channels_last.get(),
            "conv2d_forward weights to channels-last");
  ForwardOperands ops =
      forward_operands_channels_last(shape, x_channels_last.get(), w_channels_last.get(), bias, y);
  ops.y_bfloat16 = y_bfloat16;
  run_implicit_gemm(ops, "conv2d_forward");
}

// The weight gradient on S copies of x shifted by each filter column (Note [shifted copies]).
template <typename T>
void backward_weight_on_shifted_copies(const ConvShape& shape, const T* x, const float* grad_y,
                                       float* grad_w) {
  const cudaStream_t stream = current_stream();
  const Scratch<float> x_shifted(static_cast<std::size_t>(shifted_copy_floats(shape)), stream);
  shifted_copies_kernel<T>
      <<<blocks_for(shifted_copy_floats(shape)), kThreadsPerBlock, 0, stream>>>(shape, x, x_shifted.get());
  check_launch("conv2d_backward_weight shifted copies");
  run_implicit_gemm(backward_weight_operands_shifted(shape, x_shifted.get(), grad_y, grad_w),
                    "conv2d_backward_weight");
}

// The input gradient, one product per phase, on the weights laid out [C, R, S, K] (the taps' reduction then
// runs along k, four neighbours at a time) and, with `channels_last`, on grad_y as [N, P, Q, K] so that its
// reduction runs along k too. bfloat16 grad_y is read through that copy only.
template <typename T>
void backward_input_phases(const ConvShape& shape, const T* grad_y, const float* w, float* grad_x,
                           BFloat16* grad_x_bfloat16, bool channels_last) {
  const cudaStream_t stream = current_stream();
  const Scratch<float> w_by_channel(static_cast<std::size_t>(shape.K) * shape.CRS, stream);
  transpose(1, shape.K, shape.CRS, shape.CRS, w, w_by_channel.get(), "conv2d_backward_input weights");
  const Scratch<float> grad_y_channels_last(
      channels_last ? static_cast<std::size_t>(shape.N) * shape.K * shape.PQ : 0, stream);
  if (channels_last)
    transpose(shape.N, shape.K, shape.PQ, shape.PQ, grad_y, grad_y_channels_last.get(),
              "conv2d_backward_input gradient to channels-last");
  const float* product_grad_y = grad_y_channels_last.get();
  if constexpr (std::is_same_v<T, float>)
    if (!channels_last) product_grad_y = grad_y;
  // A phase no tap reaches still runs, with K = 0: its gradient is zero and must be written.
  for (BackwardInputOperands phase :
       backward_input_operands(shape, product_grad_y, w_by_channel.get(), grad_x, channels_last)) {
    phase.grad_x_bfloat16 = grad_x_bfloat16;
    run_implicit_gemm(phase, "conv2d_backward_input");
  }
}

}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y) {
#if DSCOPE_WITH_CUDNN
  if (conv_backend() == ConvBackend::Cudnn) return cudnn::conv2d_forward(g, x, w, bias, y);
#endif
  if (winograd_pays(g) && winograd::forward_fits(g)) return winograd::conv2d_forward(g, x, w, bias, y);
  const ConvShape shape(g);
  if (layout_copies_pay() && forward_channels_last_fits(shape))
    return forward_on_channels_last_copies(shape, x, w, bias, y, nullptr);
  run_implicit_gemm(forward_operands(shape, x, w, bias, y), "conv2d_forward");
}

void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* grad_y, float* grad_w) {
#if DSCOPE_WITH_CUDNN
  if (conv_backend() == ConvBackend::Cudnn) return cudnn::conv2d_backward_weight(g, x, grad_y, grad_w);
#endif
  if (winograd_pays(g) && winograd::weight_gradient_fits(g))
    return winograd::conv2d_backward_weight(g, x, grad_y, grad_w);
  const ConvShape shape(g);
  if (layout_copies_pay() && weight_gradient_shifted_fits(shape))
    return backward_weight_on_shifted_copies(shape, x, grad_y, grad_w);
  run_implicit_gemm(backward_weight_operands(shape, x, grad_y, grad_w), "conv2d_backward_weight");
}

void conv2d_backward_input(const Conv2dGeometry& g, const float* grad_y, const float* w, float* grad_x) {
#if DSCOPE_WITH_CUDNN
  if (conv_backend() == ConvBackend::Cudnn) return cudnn::conv2d_backward_input(g, grad_y, w, grad_x);
#endif
  if (conv_backend() == ConvBackend::Own && few_channels::input_gradient_applies(g))
    return few_channels::conv2d_backward_input(g, grad_y, w, grad_x);
  if (winograd_pays(g) && winograd::input_gradient_fits(g))
    return winograd::conv2d_backward_input(g, grad_y, w, grad_x);
  const ConvShape shape(g);
  backward_input_phases(shape, grad_y, w, grad_x, nullptr, layout_copies_pay() && shape.K % 4 == 0);
}

// ---- bfloat16 activations (mixed precision) ----
// Where the tensor cores read layout copies of the activations, the copies widen bfloat16 as they are made
// (a pass that happens anyway) and the products round their results into bfloat16 as they store them
// (ForwardOperands::y_bfloat16, BackwardInputOperands::grad_x_bfloat16). Only the weight gradient's grad_y,
// which the product reads as it is, is widened into a buffer first. Everywhere else the float entry points
// above run on widened copies.

void conv2d_forward(const Conv2dGeometry& g, const BFloat16* x, const float* w, const float* bias,
                    BFloat16* y) {
  const ConvShape shape(g);
  const cudaStream_t stream = current_stream();
  if (layout_copies_pay() && forward_channels_last_fits(shape))
    return forward_on_channels_last_copies(shape, x, w, bias, nullptr, y);
  const Scratch<float> x_values(static_cast<std::size_t>(g.N * g.C * g.H * g.W), stream);
  bfloat16_to_float(g.N * g.C * g.H * g.W, x, x_values.get());
  const Scratch<float> y_values(static_cast<std::size_t>(g.N * g.K * g.P * g.Q), stream);
  conv2d_forward(g, x_values.get(), w, bias, y_values.get());
  float_to_bfloat16(g.N * g.K * g.P * g.Q, y_values.get(), y);
}

void conv2d_backward_input(const Conv2dGeometry& g, const BFloat16* grad_y, const float* w,
                           BFloat16* grad_x) {
  const ConvShape shape(g);
  const cudaStream_t stream = current_stream();
  if (layout_copies_pay() && shape.K % 4 == 0 && !few_channels::input_gradient_applies(g))
    return backward_input_phases(shape, grad_y, w, nullptr, grad_x, true);
  const Scratch<float> grad_y_values(static_cast<std::size_t>(g.N * g.K * g.P * g.Q), stream);
  bfloat16_to_float(g.N * g.K * g.P * g.Q, grad_y, grad_y_values.get());
  const Scratch<float> grad_x_values(static_cast<std::size_t>(g.N * g.C * g.H * g.W), stream);
  conv2d_backward_input(g, grad_y_values.get(), w, grad_x_values.get());
  float_to_bfloat16(g.N * g.C * g.H * g.W, grad_x_values.get(), grad_x);
}

void conv2d_backward_weight(const Conv2dGeometry& g, const BFloat16* x, const BFloat16* grad_y,
                            float* grad_w) {
  const ConvShape shape(g);
  const cudaStream_t stream = current_stream();
  const Scratch<float> grad_y_values(static_cast<std::size_t>(g.N * g.K * g.P * g.Q), stream);
  bfloat16_to_float(g.N * g.K * g.P * g.Q, grad_y, grad_y_values.get());
  if (layout_copies_pay() && weight_gradient_shifted_fits(shape))
    return backward_weight_on_shifted_copies(shape, x, grad_y_values.get(), grad_w);
  const Scratch<float> x_values(static_cast<std::size_t>(g.N * g.C * g.H * g.W), stream);
  bfloat16_to_float(g.N * g.C * g.H * g.W, x, x_values.get());
  conv2d_backward_weight(g, x_values.get(), grad_y_values.get(), grad_w);
}

}  // namespace dscope::kernels::cuda
