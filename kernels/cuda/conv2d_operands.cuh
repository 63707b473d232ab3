// The three passes of a 2-D convolution as products on the shared tiled kernel: their operands described as
// Gathers over the NCHW tensors, and where each result goes. conv2d.cu says how (and runs them); the
// descriptions are apart so that a test can evaluate them on the host, without a GPU, against the reference
// convolution (tests/cuda/test_conv_operands.cu).
//
// Included only by .cu files.
#pragma once

#include <climits>
#include <stdexcept>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cuda/implicit_gemm.cuh"

namespace dscope::kernels::cuda {

// The geometry in 32-bit integers.
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
};

// Output positions (n, p, q) as an axis of the input x: offset of x[n, 0, p·sh − ph, q·sw − pw], and that
// row and column.
inline implicit_gemm::Axis input_positions(const ConvShape& g) {
  implicit_gemm::Axis axis;
  axis.inner_extent = FastDivmod(g.Q), axis.middle_extent = FastDivmod(g.P);
  axis.outer_stride = g.C * g.HW, axis.middle_stride = g.stride_h * g.W, axis.inner_stride = g.stride_w;
  axis.offset = -g.pad_h * g.W - g.pad_w;
  axis.row_middle = g.stride_h, axis.row_start = -g.pad_h;
  axis.col_inner = g.stride_w, axis.col_start = -g.pad_w;
  return axis;
}

// Filter taps (c, r, s) as an axis of the input x: offset of x[·, c, r·dh, s·dw], and that row and column.
inline implicit_gemm::Axis input_taps(const ConvShape& g) {
  implicit_gemm::Axis axis;
  axis.inner_extent = FastDivmod(g.S), axis.middle_extent = FastDivmod(g.R);
  axis.outer_stride = g.HW, axis.middle_stride = g.dilation_h * g.W, axis.inner_stride = g.dilation_w;
  axis.row_middle = g.dilation_h, axis.col_inner = g.dilation_w;
  return axis;
}

// An output stored in float, or rounded into bfloat16 where the activations are (mixed precision): set
// `y_bfloat16` (or `grad_x_bfloat16`) and it is used instead of the float pointer. One branch per stored
// value, the same for the whole launch, costs nothing beside a product's reduction.
struct ForwardOperands {
  int M, N, K;
  implicit_gemm::Gather a, b;
  float* y;
  const float* bias;
  FastDivmod positions;  // P·Q
  BFloat16* y_bfloat16 = nullptr;

  __host__ __device__ void store(int k_out, int npq, float sum) const {
    int n, pq;
    positions.divmod(npq, n, pq);
    const int at = (n * M + k_out) * positions.divisor() + pq;
    const float value = sum + (bias != nullptr ? bias[k_out] : 0.0f);
    if (y_bfloat16 != nullptr)
      y_bfloat16[at] = to_bfloat16(value);
    else
      y[at] = value;
  }
};

struct BackwardWeightOperands {
  int M, N, K;
  implicit_gemm::Gather a, b;
  float* grad_w;

  __host__ __device__ void store(int k_out, int crs, float sum) const { grad_w[k_out * N + crs] = sum; }
};

// One phase (a, b) of the backward input pass: positions h = a + sh·h', w = b + sw·w'.
struct BackwardInputOperands {
  int M, N, K;
  implicit_gemm::Gather a, b;
  float* grad_x;
  FastDivmod phase_w, phase_h;  // the phase's positions per row, rows per image
  int HW, W, first_h, first_w, stride_h, stride_w;
  BFloat16* grad_x_bfloat16 = nullptr;

  __host__ __device__ void store(int c, int position, float sum) const {
    int rest, w_, n, h_;
    phase_w.divmod(position, rest, w_);
    phase_h.divmod(rest, n, h_);
    const int at = (n * M + c) * HW + (first_h + stride_h * h_) * W + first_w + stride_w * w_;
    if (grad_x_bfloat16 != nullptr)
      grad_x_bfloat16[at] = to_bfloat16(sum);
    else
      grad_x[at] = sum;
  }
};

// The taps of one dimension that reach the positions first + stride·i: r with first + pad − r·dilation
// divisible by stride. They are r0, r0 + step, … (count of them), and reach output row
// i + base − j·shift for the j-th of them.
struct PhaseTaps {
  int r0 = 0, step = 1, count = 0, base = 0, shift = 0;
};

inline PhaseTaps phase_taps(int first, int pad, int extent, int stride, int dilation) {
  std::vector<int> taps;
  for (int r = 0; r < extent; ++r)
    if (((first + pad - r * dilation) % stride + stride) % stride == 0) taps.push_back(r);
  PhaseTaps t;
  t.count = static_cast<int>(taps.size());
  if (t.count == 0) return t;
  t.r0 = taps[0];
  t.step = t.count > 1 ? taps[1] - taps[0] : 1;
  t.base = (first + pad - t.r0 * dilation) / stride;       // exact
  t.shift = t.count > 1 ? t.step * dilation / stride : 0;  // exact: consecutive taps move p by whole rows
  return t;
}

// The forward pass as a product: K filters × N·P·Q output positions, reducing over C·R·S taps.
inline ForwardOperands forward_operands(const ConvShape& shape, const float* x, const float* w,
                                        const float* bias, float* y) {
  ForwardOperands ops;
  ops.M = shape.K, ops.N = shape.N * shape.PQ, ops.K = shape.CRS;
  ops.a = implicit_gemm::matrix(w, shape.CRS, true, shape.CRS);
  ops.b.data = x, ops.b.line = input_positions(shape), ops.b.depth = input_taps(shape);
  ops.b.rows = shape.H, ops.b.cols = shape.W, ops.b.contiguous_in_depth = false;
  ops.y = y, ops.bias = bias, ops.positions = FastDivmod(shape.PQ);
  return ops;
}

// Note [channels-last copies]: on the tensor cores the copies into shared memory look like the bound, not
// the products: Nsight Compute on the 128 → 128 forward in TF32 found the integer pipe the busiest and L1
// busy with the 4-byte copies of the input's gathers (benchmarks/README.md, "GPU"), and the input
// gradient's gathers are alike. Along an NCHW tensor a gather moves by output position, and a tap's shift
// (s·dw − pw) leaves those runs unaligned, so each element is a copy of its own with its own bounds check.
// On a channels-last copy ([N, H, W, C], made first by conv2d.cu's transpose) the reduction can run over
// (r, s, c) with c innermost instead: four neighbouring k are four channels of one pixel, aligned, and
// inside or outside the image together, so they travel in one 16-byte copy with one check (four_in_a_row).
// It costs a pass over the tensor (and over the weights, into [K, R, S, C]), which 4 times fewer copies
// into shared memory are expected to repay (not yet measured); the tile layout in shared memory, and so the
// tensor-core part, is unchanged. The CUDA cores' FP32 tile stores its
// slices k by k and copies 4 bytes at a time either way, so it keeps the NCHW gathers.

// Whether the forward pass of `shape` can read channels-last copies four channels at a time.
inline bool forward_channels_last_fits(const ConvShape& shape) {
  return shape.C % 4 == 0;
}

// Output positions (n, p, q) as an axis of a channels-last x: offset of x[n, p·sh − ph, q·sw − pw, 0].
inline implicit_gemm::Axis channels_last_positions(const ConvShape& g) {
  implicit_gemm::Axis axis = input_positions(g);
  axis.outer_stride = g.HW * g.C, axis.middle_stride = g.stride_h * g.W * g.C;
  axis.inner_stride = g.stride_w * g.C, axis.offset = (-g.pad_h * g.W - g.pad_w) * g.C;
  return axis;
}

// Filter taps (r, s, c), c innermost, as an axis of a channels-last x: offset of x[·, r·dh, s·dw, c].
inline implicit_gemm::Axis channels_last_taps(const ConvShape& g) {
  implicit_gemm::Axis axis;
  axis.inner_extent = FastDivmod(g.C), axis.middle_extent = FastDivmod(g.S);
  axis.outer_stride = g.dilation_h * g.W * g.C, axis.middle_stride = g.dilation_w * g.C,
  axis.inner_stride = 1;
  axis.row_outer = g.dilation_h, axis.col_middle = g.dilation_w;
  return axis;
}

// The forward pass on channels-last copies x [N, H, W, C] and w [K, R, S, C] (Note [channels-last copies]):
// K filters × N·P·Q output positions, reducing over R·S·C taps.
inline ForwardOperands forward_operands_channels_last(const ConvShape& shape, const float* x_channels_last,
                                                      const float* w_channels_last, const float* bias,
                                                      float* y) {
  ForwardOperands ops;
  ops.M = shape.K, ops.N = shape.N * shape.PQ, ops.K = shape.CRS;
  ops.a = implicit_gemm::matrix(w_channels_last, shape.CRS, true, shape.CRS);
  ops.b.data = x_channels_last, ops.b.line = channels_last_positions(shape);
  ops.b.depth = channels_last_taps(shape);
  ops.b.rows = shape.H, ops.b.cols = shape.W, ops.b.contiguous_in_depth = true;
  ops.b.four_in_a_row = shape.C % 4 == 0 && aligned_16(x_channels_last);
  ops.y = y, ops.bias = bias, ops.positions = FastDivmod(shape.PQ);
  return ops;
}

// The weight gradient as a product: K filters × C·R·S taps, reducing over N·P·Q output positions.
inline BackwardWeightOperands backward_weight_operands(const ConvShape& shape, const float* x,
                                                       const float* grad_y, float* grad_w) {
  BackwardWeightOperands ops;
  ops.M = shape.K, ops.N = shape.CRS, ops.K = shape.N * shape.PQ;
  // grad_y as K lines of N·P·Q: line k at k·P·Q, position (n, pq) at n·K·P·Q + pq.
  ops.a.data = grad_y, ops.a.line.outer_stride = shape.PQ;
  ops.a.depth.inner_extent = FastDivmod(shape.PQ), ops.a.depth.inner_stride = 1;
  ops.a.depth.outer_stride = shape.K * shape.PQ;
  ops.a.four_in_a_row = shape.PQ % 4 == 0 && aligned_16(grad_y);
  // x as C·R·S lines (the taps) of N·P·Q positions.
  ops.b.data = x, ops.b.line = input_taps(shape), ops.b.depth = input_positions(shape);
  ops.b.rows = shape.H, ops.b.cols = shape.W;
  ops.grad_w = grad_w;
  return ops;
}

// Note [shifted copies]: the weight gradient reduces over output positions, and along them its input
// operand x[n, c, p·sh − ph + r·dh, q·sw − pw + s·dw] runs unaligned (by the tap's column shift) and
// bounded, one copy per element, as the forward's did. Channels-last does not help here: the channels are
// its lines, not its reduction. Instead, on the tensor cores, it reads S copies of x made first, copy s
// holding each row's columns q·sw − pw + s·dw for q < Q (zero outside the image): in copy s, tap (c, r, s)
// at position (n, p, q) is at [n, c, p·sh − ph + r·dh, q], so four neighbouring q are neighbours in memory
// and in the image's columns, and they travel in one 16-byte copy with one check of the row, where Q is a
// multiple of 4. S times the memory of x, written once per call.

__host__ __device__ inline std::int64_t shifted_copy_floats(const ConvShape& g) {
  return static_cast<std::int64_t>(g.S) * g.N * g.C * g.H * g.Q;
}

// Whether the weight gradient of `shape` can read shifted copies four positions at a time, within 2 GiB of
// scratch memory (and so within the kernels' 32-bit offsets).
inline bool weight_gradient_shifted_fits(const ConvShape& shape) {
  return shape.Q % 4 == 0 && shifted_copy_floats(shape) <= (std::int64_t{1} << 29);
}

// Element `at` of the shifted copies [S, N, C, H, Q] of x (Note [shifted copies]).
// x is float, or bfloat16 activations (mixed precision), widened as they are copied.
template <typename T>
__host__ __device__ inline float shifted_copy_element(const ConvShape& g, const T* x, std::int64_t at) {
  const int q = static_cast<int>(at % g.Q);
  const std::int64_t row = at / g.Q;  // (s, n, c, h)
  const std::int64_t image_rows = static_cast<std::int64_t>(g.N) * g.C * g.H;
  const int s = static_cast<int>(row / image_rows);
  const int column = q * g.stride_w - g.pad_w + s * g.dilation_w;
  return column >= 0 && column < g.W ? as_float(x[(row % image_rows) * g.W + column]) : 0.0f;
}

// The weight gradient on shifted copies of x (Note [shifted copies]): as backward_weight_operands, with x's
// tap (c, r, s) at s·N·C·H·Q + c·H·Q + r·dh·Q and position (n, p, q) at n·C·H·Q + (p·sh − ph)·Q + q.
inline BackwardWeightOperands backward_weight_operands_shifted(const ConvShape& shape, const float* x_shifted,
                                                               const float* grad_y, float* grad_w) {
  BackwardWeightOperands ops = backward_weight_operands(shape, x_shifted, grad_y, grad_w);
  const int plane = shape.H * shape.Q;
  implicit_gemm::Axis taps;
  taps.inner_extent = FastDivmod(shape.S), taps.middle_extent = FastDivmod(shape.R);
  taps.outer_stride = plane, taps.middle_stride = shape.dilation_h * shape.Q;
  taps.inner_stride = shape.N * shape.C * plane, taps.row_middle = shape.dilation_h;
  implicit_gemm::Axis positions;
  positions.inner_extent = FastDivmod(shape.Q), positions.middle_extent = FastDivmod(shape.P);
  positions.outer_stride = shape.C * plane, positions.middle_stride = shape.stride_h * shape.Q;
  positions.inner_stride = 1, positions.offset = -shape.pad_h * shape.Q;
  positions.row_middle = shape.stride_h, positions.row_start = -shape.pad_h;
  ops.b.line = taps, ops.b.depth = positions;
  ops.b.rows = shape.H, ops.b.cols = 1, ops.b.contiguous_in_depth = true;
  ops.b.four_in_a_row = shape.Q % 4 == 0 && aligned_16(x_shifted);
  return ops;
}

// The input gradient as stride_h · stride_w products, one per phase (h mod sh, w mod sw): C channels × the
// phase's positions, reducing over the taps that reach them and the K filters. w_by_channel is the weights
// laid out [C, R, S, K].
// With grad_y_channels_last set, grad_y is read from that channels-last copy [N, P, Q, K] instead (Note
// [channels-last copies]): the filters k are innermost in both operands' reduction, four at a time.
inline std::vector<BackwardInputOperands> backward_input_operands(const ConvShape& shape, const float* grad_y,
                                                                  const float* w_by_channel, float* grad_x,
                                                                  bool grad_y_channels_last = false) {
  std::vector<BackwardInputOperands> phases;
  for (int first_h = 0; first_h < shape.stride_h && first_h < shape.H; ++first_h)
    for (int first_w = 0; first_w < shape.stride_w && first_w < shape.W; ++first_w) {
      const PhaseTaps rows = phase_taps(first_h, shape.pad_h, shape.R, shape.stride_h, shape.dilation_h);
      const PhaseTaps cols = phase_taps(first_w, shape.pad_w, shape.S, shape.stride_w, shape.dilation_w);
      const int phase_h = (shape.H - first_h + shape.stride_h - 1) / shape.stride_h;
      const int phase_w = (shape.W - first_w + shape.stride_w - 1) / shape.stride_w;
      BackwardInputOperands ops;
      // A phase no tap reaches still runs, with K = 0: its gradient is zero and must be written.
      ops.M = shape.C, ops.N = shape.N * phase_h * phase_w, ops.K = rows.count * cols.count * shape.K;
      // The reduction index is (j, i, k): tap r0 + j·step_r, s0 + i·step_s of filter k.
      implicit_gemm::Axis taps;
      taps.inner_extent = FastDivmod(shape.K);
      taps.middle_extent = FastDivmod(cols.count > 0 ? cols.count : 1);
      // w as C lines of taps: w_by_channel[c, r0 + j·step_r, s0 + i·step_s, k].
      ops.a.data = w_by_channel, ops.a.line.outer_stride = shape.RS * shape.K;
      ops.a.depth = taps;
      ops.a.depth.outer_stride = rows.step * shape.S * shape.K;
      ops.a.depth.middle_stride = cols.step * shape.K;
      ops.a.depth.inner_stride = 1, ops.a.depth.offset = (rows.r0 * shape.S + cols.r0) * shape.K;
      ops.a.four_in_a_row = shape.K % 4 == 0 && aligned_16(w_by_channel);
      // grad_y as the phase's positions (n, h', w') at grad_y[n, ·, h', w'], and the taps moving to
      // grad_y[·, k, base_r − j·shift_r, base_s − i·shift_s]. A pixel of grad_y is `pixel` apart from the
      // next along q, and filter k at k·filter_stride: 1 and P·Q in NCHW, K and 1 channels-last.
      const int pixel = grad_y_channels_last ? shape.K : 1;
      const int filter_stride = grad_y_channels_last ? 1 : shape.PQ;
      ops.b.data = grad_y;
      ops.b.line.inner_extent = FastDivmod(phase_w), ops.b.line.middle_extent = FastDivmod(phase_h);
      ops.b.line.outer_stride = shape.K * shape.PQ, ops.b.line.middle_stride = shape.Q * pixel;
      ops.b.line.inner_stride = pixel, ops.b.line.row_middle = 1, ops.b.line.col_inner = 1;
      ops.b.depth = taps;
      ops.b.depth.outer_stride = -rows.shift * shape.Q * pixel,
      ops.b.depth.middle_stride = -cols.shift * pixel;
      ops.b.depth.inner_stride = filter_stride,
      ops.b.depth.offset = (rows.base * shape.Q + cols.base) * pixel;
      ops.b.depth.row_outer = -rows.shift, ops.b.depth.row_start = rows.base;
      ops.b.depth.col_middle = -cols.shift, ops.b.depth.col_start = cols.base;
      ops.b.rows = shape.P, ops.b.cols = shape.Q, ops.b.contiguous_in_depth = grad_y_channels_last;
      ops.b.four_in_a_row = grad_y_channels_last && shape.K % 4 == 0 && aligned_16(grad_y);
      ops.grad_x = grad_x, ops.phase_w = FastDivmod(phase_w), ops.phase_h = FastDivmod(phase_h);
      ops.HW = shape.HW, ops.W = shape.W, ops.first_h = first_h, ops.first_w = first_w;
      ops.stride_h = shape.stride_h, ops.stride_w = shape.stride_w;
      phases.push_back(ops);
    }
  return phases;
}

}  // namespace dscope::kernels::cuda
