// The CUDA convolution by Winograd's F(4×4, 3×3), checked on the host, so that it is tested on every machine
// that builds the CUDA backend, GPU or not (CI has none).
//
// The steps of kernels/cuda/conv2d_winograd.cuh run here with their own functions: the transforms exactly as
// the kernels call them, and the 36 point products through the Gathers the shared tiled kernel reads, split
// as its launch splits them (one part per block row of the grid's z). Each pass's result is compared with
// the reference convolution in double. What only the GPU can check (the kernels' thread indexing, the
// copies) is test_cuda's job.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cuda/conv2d_winograd.cuh"
#include "tests/cuda/host_conv_check.h"

namespace dscope::kernels::cuda::winograd {
namespace {

using host_check::element;
using host_check::random_values;
using host_check::relative_error;

// A 3×3, stride-1 case with the same padding on both axes.
struct Case {
  std::string name;
  std::int64_t N, C, H, W, K, pad;
};

Conv2dGeometry geometry_of(const Case& c) {
  return host_check::geometry_of({c.name, c.N, c.C, c.H, c.W, c.K, 3, 3, 1, 1, c.pad, c.pad, 1, 1});
}

// The shared kernel's split product as it runs with a workspace: block row z sums k in
// [z·chunk, (z + 1)·chunk) into part z, at [z][m][n] (in double here).
std::vector<float> split_product(const PointProducts& ops, int parts, int chunk) {
  std::vector<float> products(static_cast<std::size_t>(parts) * ops.M * ops.N);
  for (int z = 0; z < parts; ++z)
    for (int m = 0; m < ops.M; ++m)
      for (int n = 0; n < ops.N; ++n) {
        double sum = 0.0;
        for (int k = z * chunk; k < std::min(ops.K, (z + 1) * chunk); ++k)
          sum += static_cast<double>(element(ops.a, m, k)) * element(ops.b, n, k);
        products[(static_cast<std::int64_t>(z) * ops.M + m) * ops.N + n] = static_cast<float>(sum);
      }
  return products;
}

const float kNan = std::numeric_limits<float>::quiet_NaN();

// V[ξ][c][t] for every channel and tile of the plan.
std::vector<float> transformed_input(const Plan& plan, const std::vector<float>& x) {
  std::vector<float> input(static_cast<std::size_t>(kPoints) * plan.C * plan.depth, kNan);
  for (int c = 0; c < plan.C; ++c)
    for (int t = 0; t < plan.depth; ++t)
      transform_input_tile(plan, x.data(), c, t, input.data());
  return input;
}

// The weight gradient's steps on the host, with `multiprocessors` deciding the splits as the GPU's count
// would.
std::vector<float> winograd_weight_gradient(const Conv2dGeometry& g, const std::vector<float>& x,
                                            const std::vector<float>& grad_y, int multiprocessors,
                                            Plan& plan) {
  plan = plan_weight_gradient(g, multiprocessors);
  std::vector<float> gradient(static_cast<std::size_t>(kPoints) * plan.K * plan.depth, kNan);
  for (int k = 0; k < plan.K; ++k)
    for (int t = 0; t < plan.depth; ++t)
      transform_gradient_tile(plan, grad_y.data(), k, t, gradient.data());
  const std::vector<float> input = transformed_input(plan, x);
  const std::vector<float> products = split_product(
      weight_gradient_products(plan, gradient.data(), input.data()), kPoints * plan.splits, plan.chunk);
  std::vector<float> grad_w(g.K * g.C * 9, kNan);
  for (int k = 0; k < plan.K; ++k)
    for (int c = 0; c < plan.C; ++c)
      filter_gradient(plan, products.data(), k, c, grad_w.data());
  return grad_w;
}

// The forward's steps on the host, for g with w as it comes or turned (the input gradient's).
std::vector<float> winograd_forward(const Conv2dGeometry& g, const std::vector<float>& x,
                                    const std::vector<float>& w, bool turned, const float* bias) {
  const Plan plan = plan_tiles(g);
  std::vector<float> filters(static_cast<std::size_t>(kPoints) * plan.K * plan.C, kNan);
  for (int k = 0; k < plan.K; ++k)
    for (int c = 0; c < plan.C; ++c)
      transform_filter(plan, w.data(), turned, k, c, filters.data());
  const std::vector<float> input = transformed_input(plan, x);
  const std::vector<float> products =
      split_product(forward_products(plan, filters.data(), input.data()), kPoints, plan.C);
  std::vector<float> y(g.N * g.K * g.P * g.Q, kNan);
  for (int k = 0; k < plan.K; ++k)
    for (int t = 0; t < plan.tiles; ++t)
      output_tile(plan, products.data(), bias, k, t, y.data());
  return y;
}

// Outputs that fill whole tiles and outputs that do not (P, Q not multiples of 4), paddings 0 to 2, one
// image and several, channel counts that are and are not multiples of 4, and enough tiles (N = 8 at 34×36:
// 648) for the weight gradient's reduction to split in two.
const std::vector<Case> kCases = {
    {"8x8 pad 1, whole tiles", 1, 2, 8, 8, 3, 1},
    {"7x6 pad 1, partial tiles", 2, 3, 7, 6, 4, 1},
    {"9x11 no padding", 2, 2, 9, 11, 3, 0},
    {"5x5 pad 2", 1, 3, 5, 5, 2, 2},
    {"3x3 pad 1, one tile", 3, 1, 3, 3, 1, 1},
    {"N 8 at 34x36 pad 1, two splits", 8, 3, 34, 36, 5, 1},
    {"12 channels, 8 filters, 10x9", 2, 12, 10, 9, 8, 1},
};

// The transforms' rounding is about 1e-6 of the largest value here (the products are summed in double).
constexpr double kTolerance = 1e-5;

TEST(ConvWinograd, ForwardMatchesTheReferenceOnTheHost) {
  std::mt19937 random(10);
  for (const Case& c : kCases) {
    const Conv2dGeometry g = geometry_of(c);
    ASSERT_TRUE(forward_fits(g)) << c.name;
    const std::vector<float> x = random_values(g.N * g.C * g.H * g.W, random);
    const std::vector<float> w = random_values(g.K * g.C * 9, random), bias = random_values(g.K, random);
    const std::vector<float> y = winograd_forward(g, x, w, false, bias.data());
    std::vector<double> want(y.size());
    reference::conv2d_forward(g, host_check::as_double(x).data(), host_check::as_double(w).data(),
                              host_check::as_double(bias).data(), want.data());
    EXPECT_LT(relative_error(y, want), kTolerance) << c.name;  // NaN where nothing was written
  }
}

TEST(ConvWinograd, InputGradientMatchesTheReferenceOnTheHost) {
  std::mt19937 random(12);
  for (const Case& c : kCases) {
    const Conv2dGeometry g = geometry_of(c);
    ASSERT_TRUE(input_gradient_fits(g)) << c.name;
    const std::vector<float> grad_y = random_values(g.N * g.K * g.P * g.Q, random);
    const std::vector<float> w = random_values(g.K * g.C * 9, random);
    const Conv2dGeometry turned = input_gradient_geometry(g);
    ASSERT_EQ(turned.P, g.H) << c.name;
    ASSERT_EQ(turned.Q, g.W) << c.name;
    const std::vector<float> grad_x = winograd_forward(turned, grad_y, w, true, nullptr);
    std::vector<double> want(grad_x.size());
    reference::conv2d_backward_input(g, host_check::as_double(grad_y).data(), host_check::as_double(w).data(),
                                     want.data());
    EXPECT_LT(relative_error(grad_x, want), kTolerance) << c.name;
  }
}

TEST(ConvWinograd, WeightGradientMatchesTheReferenceOnTheHost) {
  std::mt19937 random(11);
  for (const Case& c : kCases) {
    const Conv2dGeometry g = geometry_of(c);
    ASSERT_TRUE(weight_gradient_fits(g)) << c.name;
    const std::vector<float> x = random_values(g.N * g.C * g.H * g.W, random);
    const std::vector<float> grad_y = random_values(g.N * g.K * g.P * g.Q, random);
    Plan plan;
    const std::vector<float> grad_w = winograd_weight_gradient(g, x, grad_y, 132, plan);
    EXPECT_EQ(plan.depth % implicit_gemm::kSliceK, 0) << c.name;
    EXPECT_GE(plan.depth, plan.tiles) << c.name;
    std::vector<double> want(grad_w.size());
    reference::conv2d_backward_weight(g, host_check::as_double(x).data(),
                                      host_check::as_double(grad_y).data(), want.data());
    EXPECT_LT(relative_error(grad_w, want), kTolerance) << c.name << " (" << plan.splits << " splits)";
    if (c.N == 8) EXPECT_EQ(plan.splits, 2) << c.name;
  }
}

TEST(ConvWinograd, PlansSplitOnlyWhereTheBlocksAreFew) {
  // 512 channels on 8×8 at batch 128: 16 blocks per point already fill 132 multiprocessors.
  EXPECT_EQ(plan_weight_gradient(geometry_of({"", 128, 512, 8, 8, 512, 1}), 132).splits, 1);
  // 128 channels on 32×32: one block per point, so the 8192 tiles split 8 ways.
  const Plan narrow = plan_weight_gradient(geometry_of({"", 128, 128, 32, 32, 128, 1}), 132);
  EXPECT_EQ(narrow.splits, 8);
  EXPECT_EQ(narrow.depth, 8192);
}

TEST(ConvWinograd, RunsOnlyOnThreeByThreeStrideOneWithinItsMemoryAndFromSixtyFourChannels) {
  const Conv2dGeometry g = geometry_of({"", 2, 64, 8, 8, 64, 1});
  EXPECT_TRUE(forward_fits(g) && input_gradient_fits(g) && weight_gradient_fits(g) && pays(g));
  Conv2dGeometry strided = g;
  strided.stride_h = strided.stride_w = 2;
  Conv2dGeometry dilated = g;
  dilated.dilation_h = 2;
  Conv2dGeometry five = g;
  five.R = five.S = 5;
  for (const Conv2dGeometry& other : {strided, dilated, five})
    EXPECT_FALSE(forward_fits(other) || input_gradient_fits(other) || weight_gradient_fits(other));
  Conv2dGeometry wide_padding = g;  // the input gradient's turned padding would be negative
  wide_padding.pad_h = 3;
  EXPECT_FALSE(input_gradient_fits(wide_padding));
  // 64 channels on 224×224 at batch 256: the transformed tensors would need 15 GB.
  const Conv2dGeometry huge = geometry_of({"", 256, 64, 224, 224, 64, 1});
  EXPECT_FALSE(forward_fits(huge) || input_gradient_fits(huge) || weight_gradient_fits(huge));
  // The stem's 3 channels, and 32 channels: the products' blocks would be mostly padding.
  EXPECT_FALSE(pays(geometry_of({"", 2, 3, 8, 8, 64, 1})));
  EXPECT_FALSE(pays(geometry_of({"", 2, 64, 8, 8, 32, 1})));
}

}  // namespace
}  // namespace dscope::kernels::cuda::winograd
