// The CUDA input gradient for inputs with few channels, checked on the host, so that it is tested on every
// machine that builds the CUDA backend, GPU or not (CI has none): the weights copied into the [R][S][K][C]
// order by the kernel's own copy_index, then every input position through the kernel's own
// input_gradient_at, compared with the reference convolution in double.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cuda/conv2d_few_channels.cuh"
#include "tests/cuda/host_conv_check.h"

namespace dscope::kernels::cuda::few_channels {
namespace {

using host_check::geometry_of;
using host_check::random_values;
using Case = host_check::ConvCase;

// The stem's shape, strides (with positions no tap reaches), dilation, rectangular filters, one channel and
// the most the kernel takes.
const std::vector<Case> kCases = {
    {"3x3 stride 1 pad 1, 3 channels (the stem)", 2, 3, 7, 6, 16, 3, 3, 1, 1, 1, 1, 1, 1},
    {"7x7 stride 2 pad 3, 3 channels", 1, 3, 12, 11, 8, 7, 7, 2, 2, 3, 3, 1, 1},
    {"1x1 stride 2, 8 channels", 2, 8, 6, 7, 5, 1, 1, 2, 2, 0, 0, 1, 1},
    {"3x3 dilation 2 pad 2, 1 channel", 1, 1, 9, 9, 4, 3, 3, 1, 1, 2, 2, 2, 2},
    {"3x5 strides 2/1 pad 1/2, 5 channels", 2, 5, 9, 11, 6, 3, 5, 2, 1, 1, 2, 1, 1},
};

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
    reference::conv2d_backward_input(g, host_check::as_double(grad_y).data(), host_check::as_double(w).data(),
                                     want.data());
    EXPECT_LT(host_check::relative_error(grad_x, want), 1e-5) << c.name;  // NaN where nothing was written
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
