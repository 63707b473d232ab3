// What the host-side checks of the CUDA convolution share (test_conv_operands.cu, test_conv_winograd.cu,
// test_conv_few_channels.cu): a shape, random data, a Gather's element as the kernel reads it, and the error
// against the reference convolution. Included only by .cu files (it reads the kernels' .cuh headers).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cuda/implicit_gemm.cuh"

namespace dscope::kernels::cuda::host_check {

struct ConvCase {
  std::string name;
  std::int64_t N, C, H, W, K, R, S, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
};

inline Conv2dGeometry geometry_of(const ConvCase& c) {
  Conv2dGeometry g;
  g.N = c.N, g.C = c.C, g.H = c.H, g.W = c.W, g.K = c.K, g.R = c.R, g.S = c.S;
  g.stride_h = c.stride_h, g.stride_w = c.stride_w, g.pad_h = c.pad_h, g.pad_w = c.pad_w;
  g.dilation_h = c.dilation_h, g.dilation_w = c.dilation_w;
  g.P = conv2d_output_size(g.H, g.R, g.stride_h, g.pad_h, g.dilation_h);
  g.Q = conv2d_output_size(g.W, g.S, g.stride_w, g.pad_w, g.dilation_w);
  return g;
}

inline std::vector<float> random_values(std::size_t count, std::mt19937& random) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(count);
  for (float& value : values)
    value = normal(random);
  return values;
}

inline std::vector<double> as_double(const std::vector<float>& values) {
  return std::vector<double>(values.begin(), values.end());
}

// Element (line, k) of a Gather as the kernel reads it: zero where it is not present.
inline float element(const implicit_gemm::Gather& g, int line, int k) {
  const implicit_gemm::Coordinate l = g.line.at(line), d = g.depth.at(k);
  return g.present(l, d) ? g.data[l.offset + d.offset] : 0.0f;
}

// Largest |got − want| over the largest |want|; NaN (an element nothing wrote) makes it NaN.
inline double relative_error(const std::vector<float>& got, const std::vector<double>& want) {
  double error = 0.0, scale = 1e-30;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double difference = std::abs(static_cast<double>(got[i]) - want[i]);
    if (std::isnan(difference)) return difference;
    error = std::max(error, difference), scale = std::max(scale, std::abs(want[i]));
  }
  return error / scale;
}

}  // namespace dscope::kernels::cuda::host_check
