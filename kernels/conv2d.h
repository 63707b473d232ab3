// 2-D convolution kernels: forward, gradient of the input, gradient of the weight. NCHW, and like every
// framework it is a cross-correlation (the filter is not flipped):
//   y[n,k,p,q] = bias[k] + Σ_{c,r,s} x[n, c, ih, iw] · w[k,c,r,s],
//   ih = p·stride_h − pad_h + r·dilation_h,   iw = q·stride_w − pad_w + s·dilation_w,
// where input positions outside [0,H)×[0,W) read as zero (the padding).
//
// Every backend receives one Conv2dGeometry, checked and filled in by the op (tensor/ops/conv2d.cpp), so
// kernels assert rather than validate. The reference templates below are plain loops: the specification,
// instantiated in double by the tests. kernels::cpu holds three variants, im2col + GEMM (cpu/conv2d.cpp),
// Winograd F(4×4, 3×3) and F(2×2, 3×3) (cpu/conv2d_winograd.cpp) and direct convolution
// (cpu/conv2d_direct.cpp), and entry points that choose between them.
#pragma once

#include <cstdint>

#include "kernels/bfloat16.h"

namespace dscope::kernels {

struct Conv2dGeometry {
  std::int64_t N = 0, C = 0, H = 0, W = 0;  // input: batch, channels, height, width
  std::int64_t K = 0, R = 0, S = 0;         // filters: count (output channels), height, width
  std::int64_t P = 0, Q = 0;                // output height and width
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_h = 0, pad_w = 0;  // zeros on each side
  std::int64_t dilation_h = 1, dilation_w = 1;
};

// Output extent along one axis: (input + 2·pad − dilation·(filter − 1) − 1) / stride + 1. It is below 1 when
// the dilated filter is larger than the padded input; callers check that.
inline std::int64_t conv2d_output_size(std::int64_t input, std::int64_t filter, std::int64_t stride,
                                       std::int64_t pad, std::int64_t dilation) {
  const std::int64_t span = input + 2 * pad - dilation * (filter - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

namespace reference {

// x [N,C,H,W], w [K,C,R,S], bias [K] or null, y [N,K,P,Q]. Writes every element of y.
template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  for (std::int64_t n = 0; n < g.N; ++n)
    for (std::int64_t k = 0; k < g.K; ++k)
      for (std::int64_t p = 0; p < g.P; ++p)
        for (std::int64_t q = 0; q < g.Q; ++q) {
          T total = bias != nullptr ? bias[k] : T(0);
          for (std::int64_t c = 0; c < g.C; ++c)
            for (std::int64_t r = 0; r < g.R; ++r)
              for (std::int64_t s = 0; s < g.S; ++s) {
                const std::int64_t ih = p * g.stride_h - g.pad_h + r * g.dilation_h;
                const std::int64_t iw = q * g.stride_w - g.pad_w + s * g.dilation_w;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                total += x[((n * g.C + c) * g.H + ih) * g.W + iw] * w[((k * g.C + c) * g.R + r) * g.S + s];
              }
          y[((n * g.K + k) * g.P + p) * g.Q + q] = total;
        }
}

// grad_y [N,K,P,Q], w [K,C,R,S], grad_x [N,C,H,W]. Writes every element of grad_x (zero where no output
// read the input position).
template <typename T>
void conv2d_backward_input(const Conv2dGeometry& g, const T* grad_y, const T* w, T* grad_x) {
  for (std::int64_t i = 0; i < g.N * g.C * g.H * g.W; ++i)
    grad_x[i] = T(0);
  for (std::int64_t n = 0; n < g.N; ++n)
    for (std::int64_t k = 0; k < g.K; ++k)
      for (std::int64_t p = 0; p < g.P; ++p)
        for (std::int64_t q = 0; q < g.Q; ++q) {
          const T grad = grad_y[((n * g.K + k) * g.P + p) * g.Q + q];
          for (std::int64_t c = 0; c < g.C; ++c)
            for (std::int64_t r = 0; r < g.R; ++r)
              for (std::int64_t s = 0; s < g.S; ++s) {
                const std::int64_t ih = p * g.stride_h - g.pad_h + r * g.dilation_h;
                const std::int64_t iw = q * g.stride_w - g.pad_w + s * g.dilation_w;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                grad_x[((n * g.C + c) * g.H + ih) * g.W + iw] +=
                    grad * w[((k * g.C + c) * g.R + r) * g.S + s];
              }
        }
}

// x [N,C,H,W], grad_y [N,K,P,Q], grad_w [K,C,R,S]. Writes every element of grad_w.
template <typename T>
void conv2d_backward_weight(const Conv2dGeometry& g, const T* x, const T* grad_y, T* grad_w) {
  for (std::int64_t k = 0; k < g.K; ++k)
    for (std::int64_t c = 0; c < g.C; ++c)
      for (std::int64_t r = 0; r < g.R; ++r)
        for (std::int64_t s = 0; s < g.S; ++s) {
          T total = 0;
          for (std::int64_t n = 0; n < g.N; ++n)
            for (std::int64_t p = 0; p < g.P; ++p)
              for (std::int64_t q = 0; q < g.Q; ++q) {
                const std::int64_t ih = p * g.stride_h - g.pad_h + r * g.dilation_h;
                const std::int64_t iw = q * g.stride_w - g.pad_w + s * g.dilation_w;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                total +=
                    x[((n * g.C + c) * g.H + ih) * g.W + iw] * grad_y[((n * g.K + k) * g.P + p) * g.Q + q];
              }
          grad_w[((k * g.C + c) * g.R + r) * g.S + s] = total;
        }
}

}  // namespace reference

namespace cpu {

// What a forward does to each output after adding the bias: nothing, or clamp it at zero. The ReLU that
// follows a convolution with batch norm folded in (inference) then costs nothing: it is applied while the
// output is still in registers or cache, instead of in a pass of its own over y.
enum class Conv2dActivation { none, relu };

// One output value after `activation`: with relu, anything not above zero (NaN too, as relu_forward does)
// becomes 0.
inline float activated(float value, Conv2dActivation activation) {
  return activation == Conv2dActivation::relu && !(value > 0.0f) ? 0.0f : value;
}

// Everything a forward does to an output as it writes it, after the bias: add a residual, then apply the
// activation. In a ResNet block at inference the second convolution's output is added to the shortcut and
// clamped; done here, that costs no pass over y of its own (add_relu's was about 5% of a ResNet-8's
// inference). Converts from an activation alone, so `Conv2dActivation::relu` reads as an epilogue.
struct Conv2dEpilogue {
  Conv2dEpilogue(Conv2dActivation activation_ = Conv2dActivation::none, const float* residual_ = nullptr)
      : activation(activation_), residual(residual_) {}

  Conv2dActivation activation;
  // An array of y's shape [N, K, P, Q] (in a ResNet block, the shortcut) added to y, or null.
  const float* residual;

  bool changes_nothing() const { return activation == Conv2dActivation::none && residual == nullptr; }
  // The output whose offset in y is `index`, from its value after the bias.
  float apply(float value, std::int64_t index) const {
    return activated(residual != nullptr ? value + residual[index] : value, activation);
  }
};

// Same contracts as the reference, in float. These three choose a variant for the geometry and the pass:
// Winograd where it applies and pays (3×3, stride 1, at least 16 channels each way, 32 for the weight
// gradient; conv2d_uses_winograd), direct convolution for the other stride-1 filters larger than 1×1 with
// fewer than 64 channels each way (conv2d_uses_direct), for strided ones with 16 to 63 channels (the weight
// gradient only with at most 64 filters) and for the forward of strided 1×1 filters with 16 to 63 channels;
// im2col + GEMM otherwise (cpu/conv2d.cpp, Note [variant choice]).
// The bias is added by the kernel rather than the op because each output block is still in cache after its
// GEMM, which saves a whole pass over y. x [N,C,H,W], w [K,C,R,S], bias [K] or null, y [N,K,P,Q]. Writes y,
// then applies `epilogue` to it.
void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y,
                    const Conv2dEpilogue& epilogue = {});
// grad_y [N,K,P,Q], w [K,C,R,S], grad_x [N,C,H,W]. Writes grad_x.
void conv2d_backward_input(const Conv2dGeometry& g, const float* grad_y, const float* w, float* grad_x);
// x [N,C,H,W], grad_y [N,K,P,Q], grad_w [K,C,R,S]. Writes grad_w.
void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* grad_y, float* grad_w);

// The three passes on bfloat16 activations (x, y, grad_y, grad_x; mixed precision) with float weights,
// bias and weight gradient: widened into float buffers, the entry points above, the outputs rounded once.
void conv2d_forward(const Conv2dGeometry& g, const BFloat16* x, const float* w, const float* bias,
                    BFloat16* y);
void conv2d_backward_input(const Conv2dGeometry& g, const BFloat16* grad_y, const float* w, BFloat16* grad_x);
void conv2d_backward_weight(const Conv2dGeometry& g, const BFloat16* x, const BFloat16* grad_y,
                            float* grad_w);

// Whether the entry point above for `pass` chooses the Winograd variant for this geometry, or the direct one.
enum class Conv2dPass { forward, input_gradient, weight_gradient };
bool conv2d_uses_winograd(const Conv2dGeometry& g, Conv2dPass pass);
bool conv2d_uses_direct(const Conv2dGeometry& g, Conv2dPass pass);

// Variant: im2col + GEMM (cpu/conv2d.cpp), for every geometry. Same pointers and contracts as above.
void conv2d_forward_im2col_gemm(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                                float* y, const Conv2dEpilogue& epilogue = {});
void conv2d_backward_input_im2col_gemm(const Conv2dGeometry& g, const float* grad_y, const float* w,
                                       float* grad_x);
void conv2d_backward_weight_im2col_gemm(const Conv2dGeometry& g, const float* x, const float* grad_y,
                                        float* grad_w);

// Variant: Winograd (cpu/conv2d_winograd.cpp), F(4×4, 3×3) for all three passes (F(2×2, 3×3) for the weight
// gradient beyond 256 × 256 channel pairs), for 3×3 filters with stride 1, dilation 1 and padding at most 2
// (conv2d_winograd_supports). Same pointers and contracts as above; F(4×4) rounds to about 4e-5 of its
// outputs' spread rather than to float precision (see the .cpp).
bool conv2d_winograd_supports(const Conv2dGeometry& g);
void conv2d_forward_winograd(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                             float* y, const Conv2dEpilogue& epilogue = {});
void conv2d_backward_input_winograd(const Conv2dGeometry& g, const float* grad_y, const float* w,
                                    float* grad_x);
void conv2d_backward_weight_winograd(const Conv2dGeometry& g, const float* x, const float* grad_y,
                                     float* grad_w);

// Variant: direct convolution (cpu/conv2d_direct.cpp), for dilation 1 and padding below the filter's
// extent, on processors with AVX2 and FMA or AVX-512 (conv2d_direct_supports). Same pointers and contracts
// as above; the input gradient of a strided geometry runs as stride-1 correlations, one per residue of the
// rows and columns (see the .cpp), or im2col + GEMM where one of those would need a negative padding.
bool conv2d_direct_supports(const Conv2dGeometry& g);
void conv2d_forward_direct(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                           float* y, const Conv2dEpilogue& epilogue = {});
void conv2d_backward_input_direct(const Conv2dGeometry& g, const float* grad_y, const float* w,
                                  float* grad_x);
void conv2d_backward_weight_direct(const Conv2dGeometry& g, const float* x, const float* grad_y,
                                   float* grad_w);

}  // namespace cpu

namespace cuda {
// Same contracts as the reference, on device pointers. Each pass is an implicit GEMM by default
// (kernels/cuda/conv2d.cu): the im2col matrix is never stored, each tile of it is gathered from the input
// into shared memory; conv2d.cu lists where our kernels depart from that (layout copies on the tensor cores,
// Winograd in FP32, the few-channel input gradient). The precision (exact FP32, TF32 or BF16 tensor cores)
// and the implementation (ours, our plain products, or cuDNN) follow kernels/cuda/settings.h.
void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y);
void conv2d_backward_input(const Conv2dGeometry& g, const float* grad_y, const float* w, float* grad_x);
void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* grad_y, float* grad_w);
// On bfloat16 activations: where the tensor cores read layout copies, the copies widen them as they are made
// and the products round their results as they store them, so mixed precision costs no pass of its own;
// elsewhere (FP32 products, cuDNN, shapes the copies do not fit) they are widened into float buffers first.
void conv2d_forward(const Conv2dGeometry& g, const BFloat16* x, const float* w, const float* bias,
                    BFloat16* y);
void conv2d_backward_input(const Conv2dGeometry& g, const BFloat16* grad_y, const float* w, BFloat16* grad_x);
void conv2d_backward_weight(const Conv2dGeometry& g, const BFloat16* x, const BFloat16* grad_y,
                            float* grad_w);
}  // namespace cuda

}  // namespace dscope::kernels
