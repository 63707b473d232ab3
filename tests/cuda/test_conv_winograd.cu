// The CUDA weight gradient by Winograd's F(4×4, 3×3), checked on the host, so that it is tested on every
// machine that builds the CUDA backend, GPU or not (CI has none).
//
// The three steps of kernels/cuda/conv2d_winograd.cuh run here with their own functions: the tile
// transforms and the filter transform exactly as the kernels call them, and the 36 point products through
// the Gathers the shared tiled kernel reads, split as its launch splits them (one part per block row of the
// grid's z). The result is compared with the reference convolution in double. What only the GPU can check
// (the kernels' thread indexing, the copies) is test_cuda's job.
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

// Steps 1 to 3 on the host, with `multiprocessors` deciding the splits as the GPU's count would.
std::vector<float> winograd_weight_gradient(const Conv2dGeometry& g, const std::vector<float>& x,
                                            const std::vector<float>& grad_y, int multiprocessors,
                                            WeightGradientPlan& plan) {
  plan = plan_weight_gradient(g, multiprocessors);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> gradient(plan.gradient_floats(), nan), input(plan.input_floats(), nan),
      products(plan.product_floats(), nan);
  for (int k = 0; k < plan.K; ++k)
    for (int t = 0; t < plan.depth; ++t)
      transform_gradient_tile(plan, grad_y.data(), k, t, gradient.data());
  for (int c = 0; c < plan.C; ++c)
    for (int t = 0; t < plan.depth; ++t)
      transform_input_tile(plan, x.data(), c, t, input.data());
  // As product_kernel with partials: block z sums k in [z·chunk, (z + 1)·chunk) into part z.
  const PointProducts ops = point_products(plan, gradient.data(), input.data());
  const int parts = kPoints * plan.splits;
  for (int z = 0; z < parts; ++z)
    for (int m = 0; m < ops.M; ++m)
      for (int n = 0; n < ops.N; ++n) {
        double sum = 0.0;
        for (int k = z * plan.chunk; k < std::min(ops.K, (z + 1) * plan.chunk); ++k)
          sum += static_cast<double>(element(ops.a, m, k)) * element(ops.b, n, k);
        products[(static_cast<std::int64_t>(z) * ops.M + m) * ops.N + n] = static_cast<float>(sum);
      }
  std::vector<float> grad_w(g.K * g.C * 9, nan);
  for (int k = 0; k < plan.K; ++k)
    for (int c = 0; c < plan.C; ++c)
      filter_gradient(plan, products.data(), k, c, grad_w.data());
  return grad_w;
}

// Outputs that fill whole tiles and outputs that do not (P, Q not multiples of 4), paddings 0 to 2, one
// image and several, and enough tiles (N = 8 at 34×36: 648) for the reduction to split in two.
const std::vector<Case> kCases = {
    {"8x8 pad 1, whole tiles", 1, 2, 8, 8, 3, 1}, {"7x6 pad 1, partial tiles", 2, 3, 7, 6, 4, 1},
    {"9x11 no padding", 2, 2, 9, 11, 3, 0},       {"5x5 pad 2", 1, 3, 5, 5, 2, 2},
    {"3x3 pad 1, one tile", 3, 1, 3, 3, 1, 1},    {"N 8 at 34x36 pad 1, two splits", 8, 3, 34, 36, 5, 1},
};

TEST(ConvWinograd, WeightGradientMatchesTheReferenceOnTheHost) {
  std::mt19937 random(11);
  for (const Case& c : kCases) {
    const Conv2dGeometry g = geometry_of(c);
    ASSERT_TRUE(weight_gradient_applies(g)) << c.name;
    const std::vector<float> x = random_values(g.N * g.C * g.H * g.W, random);
    const std::vector<float> grad_y = random_values(g.N * g.K * g.P * g.Q, random);
    WeightGradientPlan plan;
    const std::vector<float> grad_w = winograd_weight_gradient(g, x, grad_y, 132, plan);
    EXPECT_EQ(plan.depth % implicit_gemm::kSliceK, 0) << c.name;
    EXPECT_GE(plan.depth, plan.tiles) << c.name;
    std::vector<double> want(grad_w.size());
    reference::conv2d_backward_weight(g, host_check::as_double(x).data(),
                                      host_check::as_double(grad_y).data(), want.data());
    // The transforms' rounding is about 1e-6 of the largest value here (the products are summed in double).
    EXPECT_LT(relative_error(grad_w, want), 1e-5) << c.name << " (" << plan.splits << " splits)";
    if (c.N == 8) EXPECT_EQ(plan.splits, 2) << c.name;
  }
}

TEST(ConvWinograd, PlansSplitOnlyWhereTheBlocksAreFew) {
  // 512 channels on 8×8 at batch 128: 16 blocks per point already fill 132 multiprocessors.
  Conv2dGeometry wide = geometry_of({"", 128, 512, 8, 8, 512, 1});
  EXPECT_EQ(plan_weight_gradient(wide, 132).splits, 1);
  // 128 channels on 32×32: one block per point, so the 8192 tiles split 8 ways.
  const WeightGradientPlan narrow = plan_weight_gradient(geometry_of({"", 128, 128, 32, 32, 128, 1}), 132);
  EXPECT_EQ(narrow.splits, 8);
  EXPECT_EQ(narrow.depth, 8192);
}

TEST(ConvWinograd, AppliesOnlyToThreeByThreeStrideOneWithinItsMemory) {
  Conv2dGeometry g = geometry_of({"", 2, 4, 8, 8, 4, 1});
  EXPECT_TRUE(weight_gradient_applies(g));
  Conv2dGeometry strided = g;
  strided.stride_h = strided.stride_w = 2;
  EXPECT_FALSE(weight_gradient_applies(strided));
  Conv2dGeometry dilated = g;
  dilated.dilation_h = 2;
  EXPECT_FALSE(weight_gradient_applies(dilated));
  Conv2dGeometry five = g;
  five.R = five.S = 5;
  EXPECT_FALSE(weight_gradient_applies(five));
  // 64 channels on 224×224 at batch 256: U and V would need 15 GB.
  EXPECT_FALSE(weight_gradient_applies(geometry_of({"", 256, 64, 224, 224, 64, 1})));
}

}  // namespace
}  // namespace dscope::kernels::cuda::winograd
