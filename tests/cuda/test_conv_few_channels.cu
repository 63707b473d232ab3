// The CUDA input gradient for inputs with few channels, checked on the host, so that it is tested on every
// machine that builds the CUDA backend, GPU or not (CI has none): the weights copied into the [R][S][K][C]
// order by the kernel's own copy_index, then every input position through the kernel's own
// input_gradient_at, compared with the reference convolution in double.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cuda/conv2d_few_channels.cuh"

namespace dscope::kernels::cuda::few_channels {
namespace {

struct Case {
  std::string name;
  std::int64_t N, C, H, W, K, R, S, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
};

// The stem's shape, strides (with positions no tap reaches), dilation, rectangular filters, one channel and
// the most the kernel takes.
const std::vector<Case> kCases = {
    {"3x3 stride 1 pad 1, 3 channels (the stem)", 2, 3, 7, 6, 16, 3, 3, 1, 1, 1, 1, 1, 1},
    {"7x7 stride 2 pad 3, 3 channels", 1, 3, 12, 11, 8, 7, 7, 2, 2, 3, 3, 1, 1},
    {"1x1 stride 2, 8 channels", 2, 8, 6, 7, 5, 1, 1, 2, 2, 0, 0, 1, 1},
    {"3x3 dilation 2 pad 2, 1 channel", 1, 1, 9, 9, 4, 3, 3, 1, 1, 2, 2, 2, 2},
    {"3x5 strides 2/1 pad 1/2, 5 channels", 2, 5, 9, 11, 6, 3, 5, 2, 1, 1, 2, 1, 1},
};

Conv2dGeometry geometry_of(const Case& c) {
  Conv2dGeometry g;
  g.N = c.N, g.C = c.C, g.H = c.H, g.W = c.W, g.K = c.K, g.R = c.R, g.S = c.S;
  g.stride_h = c.stride_h, g.stride_w = c.stride_w, g.pad_h = c.pad_h, g.pad_w = c.pad_w;
  g.dilation_h = c.dilation_h, g.dilation_w = c.dilation_w;
  g.P = conv2d_output_size(g.H, g.R, g.stride_h, g.pad_h, g.dilation_h);
  g.Q = conv2d_output_size(g.W, g.S, g.stride_w, g.pad_w, g.dilation_w);
  return g;
}

std::vector<float> random_values(std::size_t count, std::mt19937& random) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(count);
  for (float& value : values)
    value = normal(random);
  return values;
}

TEST(ConvFewChannels, InputGradientMatchesTheReferenceOnTheHost) {
  std::mt19937 random(13);
  for (const Case& c : kCases) {
    const Conv2dGeometry g = geometry_of(c);
    ASSERT_TRUE(input_gradient_applies(g)) << c.name;
    const ConvShape shape(g);
    const std::vector<float> grad_y = random_values(g.N * g.K * g.P * g.Q, random);
    const std::vector<float> w = random_values(g.K * g.C * g.R * g.S, random);
    std::vector<float> weights(w.size(), std::numeric_limits<float>::quiet_NaN());
    for (int i = 0; i < static_cast<int>(w.size()); ++i)
      weights[copy_index(shape, i)] = w[i];
    std::vector<float> grad_x(g.N * g.C * g.H * g.W, std::numeric_limits<float>::quiet_NaN());
    for (int n = 0; n < shape.N; ++n)
      for (int h = 0; h < shape.H; ++h)
        for (int x = 0; x < shape.W; ++x)
          input_gradient_at(shape, grad_y.data(), weights.data(), n, h, x, grad_x.data());
    std::vector<double> want(grad_x.size());
    const std::vector<double> grad_y_double(grad_y.begin(), grad_y.end()), w_double(w.begin(), w.end());
    reference::conv2d_backward_input(g, grad_y_double.data(), w_double.data(), want.data());
    double error = 0.0, scale = 1e-30;
    for (std::size_t i = 0; i < grad_x.size(); ++i) {
      const double difference = std::abs(static_cast<double>(grad_x[i]) - want[i]);
      ASSERT_FALSE(std::isnan(difference)) << c.name << ": element " << i << " not written";
      error = std::max(error, difference), scale = std::max(scale, std::abs(want[i]));
    }
    EXPECT_LT(error / scale, 1e-5) << c.name;
  }
}

TEST(ConvFewChannels, AppliesOnlyToFewChannelsWithWeightsThatFitSharedMemory) {
  EXPECT_TRUE(input_gradient_applies(geometry_of(kCases[0])));
  Case wide = kCases[0];
  wide.C = kMaxChannels + 1;
  EXPECT_FALSE(input_gradient_applies(geometry_of(wide)));
  Case many_filters = kCases[1];  // 3 × 7 × 7 = 147 taps a filter: 83 filters fit in 12,288 floats, 84 do not
  many_filters.K = 83;
  EXPECT_TRUE(input_gradient_applies(geometry_of(many_filters)));
  many_filters.K = 84;
  EXPECT_FALSE(input_gradient_applies(geometry_of(many_filters)));
}

}  // namespace
}  // namespace dscope::kernels::cuda::few_channels
