// 2-D convolution on the GPU: see kernels/conv2d.h. Each pass is one product on the shared tiled kernel
// (implicit_gemm.cuh), with operands that gather straight from the NCHW tensors:
//
//   forward          y[k, (n,p,q)]      = Σ_(c,r,s) w[k, (c,r,s)] · x[n, c, p·sh − ph + r·dh, q·sw − pw +
//   s·dw] backward input   grad_x[c, (n,h,w)] = Σ_(k,r,s) w[k, c, r, s] · grad_y[n, k, p, q]
//                    where p·sh = h + ph − r·dh (only where that is divisible and 0 ≤ p < P), q likewise
//   backward weight  grad_w[k, (c,r,s)] = Σ_(n,p,q) grad_y[n, k, p, q] · x[n, c, ih, iw]
//
// Out-of-range positions read as zero (the padding). Indices are 32-bit, which the entry points check the
// tensors fit; the shared kernel splits the weight gradient's long reduction across blocks.
// With DSCOPE_CONV=cudnn (settings.h) the three passes run through cuDNN instead (conv2d_cudnn.cu).
#include <climits>
#include <stdexcept>

#include "kernels/conv2d.h"
#include "kernels/cuda/conv2d_cudnn.h"  // used only when DSCOPE_WITH_CUDNN
#include "kernels/cuda/implicit_gemm.cuh"

namespace dscope::kernels::cuda {
namespace {

// The geometry in 32-bit integers, with the products the gathers use.
struct ConvShape {
  int N, C, H, W, K, R, S, P, Q;
  int stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  int RS, CRS, PQ, HW;

  explicit ConvShape(const Conv2dGeometry& g) {
    const std::int64_t largest[] = {g.N * g.C * g.H * g.W, g.N * g.K * g.P * g.Q, g.K * g.C * g.R * g.S};
    for (std::int64_t count : largest)
      if (count > INT_MAX)
        throw std::runtime_error("conv2d: tensor too large for the CUDA kernels' 32-bit indices");
    N = static_cast<int>(g.N), C = static_cast<int>(g.C), H = static_cast<int>(g.H),
    W = static_cast<int>(g.W);
    K = static_cast<int>(g.K), R = static_cast<int>(g.R), S = static_cast<int>(g.S);
    P = static_cast<int>(g.P), Q = static_cast<int>(g.Q);
    stride_h = static_cast<int>(g.stride_h), stride_w = static_cast<int>(g.stride_w);
    pad_h = static_cast<int>(g.pad_h), pad_w = static_cast<int>(g.pad_w);
    dilation_h = static_cast<int>(g.dilation_h), dilation_w = static_cast<int>(g.dilation_w);
    RS = R * S, CRS = C * RS, PQ = P * Q, HW = H * W;
  }

  // x[n, c, ih, iw] for output position (p, q) and filter tap (r, s), zero in the padding.
  __device__ float input_at(const float* x, int n, int c, int p, int q, int r, int s) const {
    const int ih = p * stride_h - pad_h + r * dilation_h;
    const int iw = q * stride_w - pad_w + s * dilation_w;
    if (ih < 0 || ih >= H || iw < 0 || iw >= W) return 0.0f;
    return x[((n * C + c) * H + ih) * W + iw];
  }
};

struct ForwardOperands {
  ConvShape g;
  const float *x, *w, *bias;
  float* y;
  int M, N, K;

  __device__ float a(int k_out, int crs) const { return w[k_out * g.CRS + crs]; }
  __device__ float b(int crs, int npq) const {
    const int c = crs / g.RS, rs = crs % g.RS, n = npq / g.PQ, pq = npq % g.PQ;
    return g.input_at(x, n, c, pq / g.Q, pq % g.Q, rs / g.S, rs % g.S);
  }
  __device__ void store(int k_out, int npq, float sum) const {
    const int n = npq / g.PQ, pq = npq % g.PQ;
    y[(n * g.K + k_out) * g.PQ + pq] = sum + (bias != nullptr ? bias[k_out] : 0.0f);
  }
};

struct BackwardInputOperands {
  ConvShape g;
  const float *grad_y, *w;
  float* grad_x;
  int M, N, K;

  __device__ float a(int c, int krs) const {
    const int k = krs / g.RS, rs = krs % g.RS;
    return w[(k * g.C + c) * g.RS + rs];
  }
  __device__ float b(int krs, int nhw) const {
    const int k = krs / g.RS, rs = krs % g.RS, r = rs / g.S, s = rs % g.S;
    const int n = nhw / g.HW, hw = nhw % g.HW, h = hw / g.W, w_ = hw % g.W;
    const int p_stride = h + g.pad_h - r * g.dilation_h, q_stride = w_ + g.pad_w - s * g.dilation_w;
    if (p_stride < 0 || q_stride < 0 || p_stride % g.stride_h != 0 || q_stride % g.stride_w != 0) return 0.0f;
    const int p = p_stride / g.stride_h, q = q_stride / g.stride_w;
    if (p >= g.P || q >= g.Q) return 0.0f;
    return grad_y[((n * g.K + k) * g.P + p) * g.Q + q];
  }
  __device__ void store(int c, int nhw, float sum) const {
    const int n = nhw / g.HW, hw = nhw % g.HW;
    grad_x[(n * g.C + c) * g.HW + hw] = sum;
  }
};

struct BackwardWeightOperands {
  ConvShape g;
  const float *x, *grad_y;
  float* grad_w;
  int M, N, K;

  __device__ float a(int k_out, int npq) const {
    const int n = npq / g.PQ, pq = npq % g.PQ;
    return grad_y[(n * g.K + k_out) * g.PQ + pq];
  }
  __device__ float b(int npq, int crs) const {
    const int c = crs / g.RS, rs = crs % g.RS, n = npq / g.PQ, pq = npq % g.PQ;
    return g.input_at(x, n, c, pq / g.Q, pq % g.Q, rs / g.S, rs % g.S);
  }
  __device__ void store(int k_out, int crs, float sum) const { grad_w[k_out * g.CRS + crs] = sum; }
};

}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y) {
#if DSCOPE_WITH_CUDNN
  if (conv_backend() == ConvBackend::Cudnn) return cudnn::conv2d_forward(g, x, w, bias, y);
#endif
  const ConvShape shape(g);
  run_implicit_gemm(ForwardOperands{shape, x, w, bias, y, shape.K, shape.N * shape.PQ, shape.CRS},
                    "conv2d_forward");
}

void conv2d_backward_input(const Conv2dGeometry& g, const float* grad_y, const float* w, float* grad_x) {
#if DSCOPE_WITH_CUDNN
  if (conv_backend() == ConvBackend::Cudnn) return cudnn::conv2d_backward_input(g, grad_y, w, grad_x);
#endif
  const ConvShape shape(g);
  run_implicit_gemm(
      BackwardInputOperands{shape, grad_y, w, grad_x, shape.C, shape.N * shape.HW, shape.K * shape.RS},
      "conv2d_backward_input");
}

void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* grad_y, float* grad_w) {
#if DSCOPE_WITH_CUDNN
  if (conv_backend() == ConvBackend::Cudnn) return cudnn::conv2d_backward_weight(g, x, grad_y, grad_w);
#endif
  const ConvShape shape(g);
  run_implicit_gemm(BackwardWeightOperands{shape, x, grad_y, grad_w, shape.K, shape.CRS, shape.N * shape.PQ},
                    "conv2d_backward_weight");
}

}  // namespace dscope::kernels::cuda
