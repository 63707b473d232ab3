// The input gradient of a convolution whose input has few channels (an image's 3 colours, in a network's
// stem), apart from its launch (conv2d_few_channels.cu) so that a test can run it on the host, without a
// GPU, against the reference convolution (tests/cuda/test_conv_few_channels.cu).
//
// The shared tiled kernel computes this pass as C rows of results, in tiles of 64 rows: with C = 3, 95% of
// every tile is padding, and the pass ran at an eighth of cuDNN's speed. Here one thread takes one input
// position (n, h, w) and sums the gradient of all its C channels at once,
//   grad_x[n, c, h, w] = Σ_(r,s,k) w[k, c, r, s] · grad_y[n, k, p, q],   p·sh = h + ph − r·dh, q likewise,
// over the taps that reach it (those that divide evenly and land inside the output) and every filter k.
// The weights sit in shared memory, laid out [R][S][K][C] so that a tap's filters are read in order and all
// threads of a warp that take the same tap read the same word (a broadcast); neighbouring threads take
// neighbouring w, so their reads of grad_y are neighbours too. The sums are exact FP32 in every math mode:
// this pass does few operations per byte, and the tensor cores would not speed it up.
//
// Included only by .cu files.
#pragma once

#include <cstdint>

#include "kernels/conv2d.h"
#include "kernels/cuda/conv2d_operands.cuh"

namespace dscope::kernels::cuda::few_channels {

constexpr int kMaxChannels = 8;
constexpr int kMaxWeightFloats = 12 * 1024;  // the weights' copy in 48 KB of shared memory

inline bool input_gradient_applies(const Conv2dGeometry& g) {
  return g.C >= 1 && g.C <= kMaxChannels && g.K * g.C * g.R * g.S <= kMaxWeightFloats;
}

// The weights' element at `index` of w[K][C][R][S] goes to this index of the [R][S][K][C] copy.
__host__ __device__ inline int copy_index(const ConvShape& g, int index) {
  const int k = index / g.CRS, crs = index % g.CRS, c = crs / g.RS, rs = crs % g.RS;
  return (rs * g.K + k) * g.C + c;
}

// grad_x[n, ·, h, w] for all C channels, from grad_y and the [R][S][K][C] copy of the weights.
__host__ __device__ inline void input_gradient_at(const ConvShape& g, const float* grad_y,
                                                  const float* weights, int n, int h, int w, float* grad_x) {
  float sum[kMaxChannels] = {};
  for (int r = 0; r < g.R; ++r) {
    const int row = h + g.pad_h - r * g.dilation_h;
    if (row < 0 || row % g.stride_h != 0 || row / g.stride_h >= g.P) continue;
    for (int s = 0; s < g.S; ++s) {
      const int col = w + g.pad_w - s * g.dilation_w;
      if (col < 0 || col % g.stride_w != 0 || col / g.stride_w >= g.Q) continue;
      const float* gradient = grad_y + n * g.K * g.PQ + (row / g.stride_h) * g.Q + col / g.stride_w;
      const float* taps = weights + (r * g.S + s) * g.K * g.C;
      for (int k = 0; k < g.K; ++k) {
        const float d = gradient[k * g.PQ];
        for (int c = 0; c < kMaxChannels; ++c)
          if (c < g.C) sum[c] += taps[k * g.C + c] * d;
      }
    }
  }
  for (int c = 0; c < kMaxChannels; ++c)
    if (c < g.C) grad_x[((n * g.C + c) * g.H + h) * g.W + w] = sum[c];
}

// Runs the pass on the current stream (conv2d_few_channels.cu), where input_gradient_applies(g).
void conv2d_backward_input(const Conv2dGeometry& g, const float* grad_y, const float* w, float* grad_x);

}  // namespace dscope::kernels::cuda::few_channels
