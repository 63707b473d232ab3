// Pooling CPU kernels against the double-precision reference over a table of shapes: stride equal to,
// smaller than (overlapping windows) and larger than the kernel, padding, odd and non-square sizes, 1×1
// kernels, a kernel as large as the input, batch 1 and one channel. Outputs are prefilled with NaN so an
// element the kernel forgets to write shows up.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/pool2d.h"
#include "tensor/random.h"
#include "tests/support/compare.h"

namespace dscope {
namespace {

using kernels::Pool2dGeometry;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// N, C, H, W, kernel, stride, padding; P and Q follow.
Pool2dGeometry geometry(std::int64_t N, std::int64_t C, std::int64_t H, std::int64_t W, std::int64_t kernel_h,
                        std::int64_t kernel_w, std::int64_t stride_h, std::int64_t stride_w,
                        std::int64_t pad_h, std::int64_t pad_w) {
  Pool2dGeometry g;
  g.N = N, g.C = C, g.H = H, g.W = W;
  g.kernel_h = kernel_h, g.kernel_w = kernel_w, g.stride_h = stride_h, g.stride_w = stride_w;
  g.pad_h = pad_h, g.pad_w = pad_w;
  g.P = (H + 2 * pad_h - kernel_h) / stride_h + 1;
  g.Q = (W + 2 * pad_w - kernel_w) / stride_w + 1;
  return g;
}

const std::vector<Pool2dGeometry> kShapes = {
    geometry(2, 3, 8, 8, 2, 2, 2, 2, 0, 0),     // the common 2×2 stride 2
    geometry(1, 1, 9, 7, 3, 3, 2, 2, 1, 1),     // ResNet stem: 3×3 stride 2 padding 1, odd sizes
    geometry(2, 5, 9, 11, 3, 2, 1, 2, 1, 0),    // overlapping rows, non-square kernel
    geometry(1, 4, 5, 5, 5, 5, 1, 1, 2, 2),     // kernel as large as the input, maximal padding
    geometry(3, 2, 6, 11, 1, 1, 1, 1, 0, 0),    // 1×1 kernel
    geometry(2, 3, 10, 10, 2, 2, 3, 3, 1, 1),   // stride larger than the kernel: skipped positions
    geometry(1, 2, 4, 13, 4, 3, 1, 1, 2, 1),    // overlapping windows both ways, padding at half the kernel
    geometry(4, 16, 16, 16, 3, 3, 2, 2, 1, 1),  // big enough to run in parallel
};

std::string name(const Pool2dGeometry& g) {
  std::ostringstream out;
  out << "input [" << g.N << "," << g.C << "," << g.H << "," << g.W << "] kernel [" << g.kernel_h << ","
      << g.kernel_w << "] stride [" << g.stride_h << "," << g.stride_w << "] padding [" << g.pad_h << ","
      << g.pad_w << "]";
  return out.str();
}

std::vector<float> normal_values(std::int64_t n, std::uint64_t seed) {
  Generator generator(seed);
  std::vector<float> values(static_cast<std::size_t>(n));
  for (float& value : values)
    value = generator.normal();
  return values;
}

std::vector<double> widen(const std::vector<float>& values) {
  return {values.begin(), values.end()};
}

std::size_t input_size(const Pool2dGeometry& g) {
  return static_cast<std::size_t>(g.N * g.C * g.H * g.W);
}
std::size_t output_size(const Pool2dGeometry& g) {
  return static_cast<std::size_t>(g.N * g.C * g.P * g.Q);
}

TEST(Pool2dKernels, MaxForwardMatchesReference) {
  for (const Pool2dGeometry& g : kShapes) {
    const std::vector<float> x = normal_values(static_cast<std::int64_t>(input_size(g)), 1);
    std::vector<float> y(output_size(g), kNaN), y_without_argmax(output_size(g), kNaN);
    std::vector<std::int64_t> argmax(output_size(g), -1);
    kernels::cpu::max_pool2d_forward(g, x.data(), y.data(), argmax.data());
    kernels::cpu::max_pool2d_forward(g, x.data(), y_without_argmax.data(), nullptr);
    std::vector<double> y_ref(output_size(g));
    std::vector<std::int64_t> argmax_ref(output_size(g));
    kernels::reference::max_pool2d_forward(g, widen(x).data(), y_ref.data(), argmax_ref.data());
    EXPECT_TRUE(testing::all_close(y, y_ref, 0.0, 0.0, "max_pool2d_forward " + name(g)));
    EXPECT_EQ(argmax, argmax_ref) << name(g);
    EXPECT_EQ(y, y_without_argmax) << name(g);
  }
}

TEST(Pool2dKernels, MaxBackwardMatchesReference) {
  for (const Pool2dGeometry& g : kShapes) {
    const std::vector<float> x = normal_values(static_cast<std::int64_t>(input_size(g)), 2);
    const std::vector<float> grad_y = normal_values(static_cast<std::int64_t>(output_size(g)), 3);
    std::vector<float> y(output_size(g));
    std::vector<std::int64_t> argmax(output_size(g));
    kernels::cpu::max_pool2d_forward(g, x.data(), y.data(), argmax.data());
    std::vector<float> grad_x(input_size(g), kNaN);
    kernels::cpu::max_pool2d_backward(g, grad_y.data(), argmax.data(), grad_x.data());
    std::vector<double> grad_x_ref(input_size(g));
    kernels::reference::max_pool2d_backward(g, widen(grad_y).data(), argmax.data(), grad_x_ref.data());
    EXPECT_TRUE(testing::all_close(grad_x, grad_x_ref, 1e-6, 1e-6, "max_pool2d_backward " + name(g)));
  }
}

TEST(Pool2dKernels, AvgForwardAndBackwardMatchReference) {
  for (const Pool2dGeometry& g : kShapes) {
    const std::vector<float> x = normal_values(static_cast<std::int64_t>(input_size(g)), 4);
    const std::vector<float> grad_y = normal_values(static_cast<std::int64_t>(output_size(g)), 5);
    std::vector<float> y(output_size(g), kNaN), grad_x(input_size(g), kNaN);
    kernels::cpu::avg_pool2d_forward(g, x.data(), y.data());
    kernels::cpu::avg_pool2d_backward(g, grad_y.data(), grad_x.data());
    std::vector<double> y_ref(output_size(g)), grad_x_ref(input_size(g));
    kernels::reference::avg_pool2d_forward(g, widen(x).data(), y_ref.data());
    kernels::reference::avg_pool2d_backward(g, widen(grad_y).data(), grad_x_ref.data());
    EXPECT_TRUE(testing::all_close(y, y_ref, 1e-6, 1e-5, "avg_pool2d_forward " + name(g)));
    EXPECT_TRUE(testing::all_close(grad_x, grad_x_ref, 1e-6, 1e-5, "avg_pool2d_backward " + name(g)));
  }
}

TEST(Pool2dKernels, MaxPaddingIsMinusInfinityAndAverageCountsIt) {
  // A 2×2 plane of negative values, 3×3 windows with padding 1: each window holds all four values.
  const Pool2dGeometry g = geometry(1, 1, 2, 2, 3, 3, 1, 1, 1, 1);
  const std::vector<float> x = {-4.0f, -3.0f, -2.0f, -1.0f};
  std::vector<float> y(4, kNaN);
  std::vector<std::int64_t> argmax(4, -1);
  kernels::cpu::max_pool2d_forward(g, x.data(), y.data(), argmax.data());
  EXPECT_EQ(y, std::vector<float>(4, -1.0f));  // never the padding's 0
  EXPECT_EQ(argmax, std::vector<std::int64_t>(4, 3));
  kernels::cpu::avg_pool2d_forward(g, x.data(), y.data());
  for (float value : y)
    EXPECT_FLOAT_EQ(value, -10.0f / 9.0f);  // the five padded positions count in the divisor
}

TEST(Pool2dKernels, MaxTakesTheFirstMaximumAndPropagatesNaN) {
  const Pool2dGeometry g = geometry(1, 1, 2, 4, 2, 2, 2, 2, 0, 0);
  const float nan = kNaN;
  const std::vector<float> x = {1.0f, 5.0f, 2.0f, nan,  //
                                5.0f, 0.0f, nan,  9.0f};
  std::vector<float> y(2, 0.0f);
  std::vector<std::int64_t> argmax(2, -1);
  kernels::cpu::max_pool2d_forward(g, x.data(), y.data(), argmax.data());
  EXPECT_EQ(y[0], 5.0f);
  EXPECT_EQ(argmax[0], 1);  // the tie between positions 1 and 4 goes to the first in row-major order
  EXPECT_TRUE(std::isnan(y[1]));
  EXPECT_EQ(argmax[1], 3);  // the first NaN
}

}  // namespace
}  // namespace dscope
