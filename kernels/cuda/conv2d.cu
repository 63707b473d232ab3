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
// gradient's long reduction across blocks. In the FP32 math mode the weight gradient of a 3×3 stride-1
// layer runs by Winograd's F(4×4, 3×3) instead (conv2d_winograd.cuh): 4 times fewer multiplications. The
// input gradient of an input with a few channels (an image's three) runs one thread per input position
// (conv2d_few_channels.cuh), where the products' tiles would be almost all padding.
// With DSCOPE_CONV=direct (settings.h) every pass runs as the products above; with DSCOPE_CONV=cudnn
// the three passes run through cuDNN instead (conv2d_cudnn.cu).
#include "kernels/conv2d.h"
#include "kernels/cuda/conv2d_cudnn.h"  // used only when DSCOPE_WITH_CUDNN
#include "kernels/cuda/conv2d_few_channels.cuh"
#include "kernels/cuda/conv2d_operands.cuh"
#include "kernels/cuda/conv2d_winograd.cuh"

namespace dscope::kernels::cuda {
namespace {

// w_by_channel[crs, k] = w[k, crs]: the weights with the filter index innermost.
__global__ void transpose_weights_kernel(int K, int CRS, const float* w, float* w_by_channel) {
  DSCOPE_GRID_STRIDE_LOOP(at, static_cast<std::int64_t>(K) * CRS) {
    const std::int64_t crs = at / K, k = at % K;
    w_by_channel[at] = w[k * CRS + crs];
  }
}

}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y) {
#if DSCOPE_WITH_CUDNN
  if (conv_backend() == ConvBackend::Cudnn) return cudnn::conv2d_forward(g, x, w, bias, y);
#endif
  run_implicit_gemm(forward_operands(ConvShape(g), x, w, bias, y), "conv2d_forward");
}

void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* grad_y, float* grad_w) {
#if DSCOPE_WITH_CUDNN
  if (conv_backend() == ConvBackend::Cudnn) return cudnn::conv2d_backward_weight(g, x, grad_y, grad_w);
#endif
  if (conv_backend() == ConvBackend::Own && math_mode() == MathMode::FP32 &&
      winograd::weight_gradient_applies(g))
    return winograd::conv2d_backward_weight(g, x, grad_y, grad_w);
  run_implicit_gemm(backward_weight_operands(ConvShape(g), x, grad_y, grad_w), "conv2d_backward_weight");
}

void conv2d_backward_input(const Conv2dGeometry& g, const float* grad_y, const float* w, float* grad_x) {
#if DSCOPE_WITH_CUDNN
  if (conv_backend() == ConvBackend::Cudnn) return cudnn::conv2d_backward_input(g, grad_y, w, grad_x);
#endif
  if (conv_backend() == ConvBackend::Own && few_channels::input_gradient_applies(g))
    return few_channels::conv2d_backward_input(g, grad_y, w, grad_x);
  const ConvShape shape(g);
  const cudaStream_t stream = current_stream();
  // The weights as [C, R, S, K]: the taps' reduction then runs along k, four neighbours at a time.
  const Scratch<float> w_by_channel(static_cast<std::size_t>(shape.K) * shape.CRS, stream);
  if (shape.K * shape.CRS > 0) {
    transpose_weights_kernel<<<blocks_for(static_cast<std::int64_t>(shape.K) * shape.CRS), kThreadsPerBlock,
                               0, stream>>>(shape.K, shape.CRS, w, w_by_channel.get());
    check_launch("conv2d_backward_input weights");
  }
  // A phase no tap reaches still runs, with K = 0: its gradient is zero and must be written.
  for (const BackwardInputOperands& phase :
       backward_input_operands(shape, grad_y, w_by_channel.get(), grad_x))
    run_implicit_gemm(phase, "conv2d_backward_input");
}

}  // namespace dscope::kernels::cuda
