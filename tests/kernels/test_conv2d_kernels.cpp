// The CPU conv2d kernels against the double-precision reference, forward and both backward passes, over a
// table of geometries chosen to reach every path of both variants. im2col + GEMM: 1×1 filters (with and
// without im2col), strides, padding wider than the filter reach, dilation, R != S, odd sizes, batch 1
// (Eigen threads the GEMM), blocks of several images (small outputs) and blocks of rows (large outputs, rows
// longer than a block). Winograd, on every 3×3 stride-1 case: padding 0 to 2, odd output sizes, blocks of
// images and of tile rows. Direct convolution, on every case with padding inside the filter's extent: 1×1
// to 7×7 filters, R != S, every register tile, partial tiles of filters, columns and rows, strides 2 and 3
// (rows split into phases by shuffles and element by element), and the strided input gradient by phases
// (1×1 stride 2, where three of four phases are zero; differing strides per axis; 3 × 3 phases; and a
// geometry that falls back to im2col), and outputs large enough to be written by streaming stores.
// Every variant's forward also runs with the ReLU applied as it writes. Outputs are pre-filled with NaN, so
// an element a kernel forgets to write fails the comparison. The cases that exercise blocks have over a
// million multiply-adds, so they also run on several threads (smaller convolutions stay on one: Note [small
// convolutions] in cpu/conv2d.cpp).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "tensor/random.h"
#include "tests/support/compare.h"

namespace dscope {
namespace {

using kernels::Conv2dGeometry;

struct Case {
  std::int64_t N, C, H, W, K, R, S;
  std::int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
};

Conv2dGeometry geometry_of(const Case& c) {
  Conv2dGeometry g;
  g.N = c.N, g.C = c.C, g.H = c.H, g.W = c.W, g.K = c.K, g.R = c.R, g.S = c.S;
  g.stride_h = c.stride_h, g.stride_w = c.stride_w, g.pad_h = c.pad_h, g.pad_w = c.pad_w;
  g.dilation_h = c.dilation_h, g.dilation_w = c.dilation_w;
  g.P = kernels::conv2d_output_size(g.H, g.R, g.stride_h, g.pad_h, g.dilation_h);
  g.Q = kernels::conv2d_output_size(g.W, g.S, g.stride_w, g.pad_w, g.dilation_w);
  return g;
}

std::string describe(const Conv2dGeometry& g) {
  std::ostringstream out;
  out << "N" << g.N << " C" << g.C << " " << g.H << "x" << g.W << " K" << g.K << " filter " << g.R << "x"
      << g.S << " stride " << g.stride_h << "x" << g.stride_w << " pad " << g.pad_h << "x" << g.pad_w
      << " dilation " << g.dilation_h << "x" << g.dilation_w;
  return out.str();
}

const Case kCases[] = {
    {2, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1},         // 3×3, padding 1
    {2, 5, 7, 6, 4, 1, 1},                      // 1×1 pointwise: no im2col
    {2, 6, 9, 9, 4, 1, 1, 2, 2},                // 1×1 stride 2 (ResNet shortcut)
    {2, 16, 9, 70, 24, 1, 1, 2, 2},             // 1×1 stride 2, 16 channels: the forward by direct
                                                // convolution over every other row and column
    {2, 16, 10, 40, 8, 1, 1, 3, 3},             // 1×1 stride 3 by direct: two phases of three not copied
    {3, 4, 10, 13, 6, 3, 3, 2, 2, 1, 1},        // stride 2, padding, odd width
    {2, 3, 11, 12, 4, 3, 3, 1, 1, 2, 2, 2, 2},  // dilation 2
    {2, 3, 8, 10, 5, 2, 5, 1, 2, 1, 2},         // R != S, different strides and padding per axis
    {1, 10, 12, 12, 9, 3, 3, 1, 1, 1, 1},       // batch 1
    {2, 13, 6, 7, 11, 3, 3, 1, 1, 1, 1},        // channels not a multiple of 8
    {2, 3, 32, 32, 8, 7, 7, 2, 2, 3, 3},        // ResNet stem: 7×7, stride 2, padding 3
    {2, 2, 5, 5, 3, 3, 3, 1, 1, 3, 3},          // padding wider than the filter reach: all-padding rows
    {20, 24, 4, 4, 24, 3, 3, 1, 1, 1, 1},       // small outputs: blocks of several whole images
    {37, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1},       // image blocks with a partial last block
    {12, 96, 5, 5, 96, 1, 1},                   // pointwise over image blocks: im2col after all
    {2, 8, 40, 40, 8, 3, 3, 1, 1, 1, 1},        // large outputs: blocks of rows
    {2, 32, 36, 36, 32, 1, 1},                  // pointwise over row blocks: GEMM on the image itself
    {2, 2, 2, 1100, 2, 1, 3, 1, 1, 0, 1},       // output rows longer than a block
    {2, 5, 7, 9, 4, 3, 3, 1, 1, 0, 0},          // Winograd: no padding, odd output width
    {3, 6, 6, 5, 7, 3, 3, 1, 1, 2, 2},          // Winograd: padding 2, odd output height
    {2, 64, 9, 10, 64, 3, 3, 1, 1, 1, 1},       // 64 channels, rows of 10: Winograd, one chunk of tiles
    {2, 64, 9, 20, 64, 3, 3, 1, 1, 1, 1},       // Winograd chosen: enough channels, odd height
    {9, 33, 4, 4, 40, 3, 3, 1, 1, 1, 1},        // Winograd over blocks of several images
    {1, 257, 5, 6, 256, 3, 3, 1, 1, 1, 1},      // Winograd: 257 rows of filters, a partial last panel of U
    {1, 8, 66, 65, 8, 3, 3, 1, 1, 1, 1},        // Winograd over blocks of tile rows
    {2, 7, 10, 19, 12, 3, 3, 1, 1, 1, 1},       // direct: a partial last tile of filters and of columns
    {2, 5, 4, 60, 16, 3, 3, 1, 1, 1, 1},        // direct: 16 filters, rows of 60 (AVX-512: 4 × 2 × 2)
    {2, 5, 5, 48, 16, 3, 3, 1, 1, 1, 1},        // direct: rows of 48 (AVX-512: 4 × 4, tied with 4 × 3)
    {2, 6, 11, 13, 10, 3, 3, 1, 1, 1, 1},       // direct: two-row tiles, an odd last row, partial tiles
    {2, 4, 9, 12, 5, 5, 5, 1, 1, 2, 2},         // direct: 5×5, filter columns in chunks of 3 and 2
    {2, 3, 8, 10, 7, 2, 5, 1, 1, 1, 2},         // direct: R != S, padding per axis
    {2, 16, 9, 75, 20, 3, 3, 2, 2, 1, 1},       // strided direct chosen: rows split by vectors, then a tail
    {2, 17, 8, 70, 64, 3, 3, 2, 2, 0, 0},       // strided direct chosen: no padding, 64 filters
    {2, 16, 9, 18, 72, 3, 3, 2, 2, 1, 1},       // 72 filters, strided: direct forward and input gradient,
                                                // weight gradient by im2col
    {1, 3, 5, 64, 24, 3, 3, 1, 1, 1, 1},        // direct: 24 filters on rows of 64 (AVX-512: 4 × 2 × 2,
                                                // an odd last row)
    {2, 4, 11, 40, 6, 3, 4, 3, 3, 2, 1},        // direct: stride 3, three phases per row; input gradient
                                                // by im2col (a row phase would need padding −1)
    {2, 5, 17, 40, 7, 5, 4, 3, 3, 1, 1},        // direct: stride 3, input gradient by 3 × 3 phases
    {1, 2, 64, 70, 240, 3, 3, 1, 1, 1, 1},      // direct: an output over 4 MiB, streamed (rows of 70:
                                                // vectors on and off the vector boundary, partial ones)
    {1, 240, 64, 70, 2, 3, 3, 1, 1, 1, 1},      // direct: an input gradient over 4 MiB, streamed
};

std::vector<float> random_values(std::int64_t count, Generator& generator) {
  std::vector<float> values(static_cast<std::size_t>(count));
  for (float& value : values)
    value = generator.normal();
  return values;
}

std::vector<double> in_double(const std::vector<float>& values) {
  return {values.begin(), values.end()};
}

std::int64_t input_size(const Conv2dGeometry& g) {
  return g.N * g.C * g.H * g.W;
}
std::int64_t weight_size(const Conv2dGeometry& g) {
  return g.K * g.C * g.R * g.S;
}
std::int64_t output_size(const Conv2dGeometry& g) {
  return g.N * g.K * g.P * g.Q;
}

// Every CPU variant, with the geometries it supports; the variant-choosing entry points run on every case.
using kernels::cpu::Conv2dActivation;
using kernels::cpu::Conv2dPass;
using Forward = void (*)(const Conv2dGeometry&, const float*, const float*, const float*, float*,
                         const kernels::cpu::Conv2dEpilogue&);
using BackwardInput = void (*)(const Conv2dGeometry&, const float*, const float*, float*);
using BackwardWeight = void (*)(const Conv2dGeometry&, const float*, const float*, float*);

bool always(const Conv2dGeometry&) {
  return true;
}

struct Variant {
  const char* name;
  bool (*supports)(const Conv2dGeometry&);
  Forward forward;
  BackwardInput backward_input;
  BackwardWeight backward_weight;
};

// The absolute tolerance of a forward, an input gradient or a weight gradient, each output a sum of `depth`
// products of unit normal values (so of standard deviation √depth). Winograd F(4×4, 3×3) rounds to about
// 1.5e-5 to 4e-5 of that deviation here (kernels/cpu/conv2d_winograd.cpp, Note [Winograd F(4×4, 3×3)]), the
// other variants to far less; a wrong transform or tile would be off by about the deviation itself.
double summed_tolerance(const Variant& variant, const Conv2dGeometry& g, Conv2dPass pass,
                        std::int64_t depth) {
  const std::string name = variant.name;
  const bool winograd =
      name == "winograd" || (name == "chosen" && kernels::cpu::conv2d_uses_winograd(g, pass));
  return winograd ? 1e-4 * std::sqrt(static_cast<double>(depth)) : 1e-4;
}

const Variant kVariants[] = {
    {"chosen", always, kernels::cpu::conv2d_forward, kernels::cpu::conv2d_backward_input,
     kernels::cpu::conv2d_backward_weight},
    {"im2col_gemm", always, kernels::cpu::conv2d_forward_im2col_gemm,
     kernels::cpu::conv2d_backward_input_im2col_gemm, kernels::cpu::conv2d_backward_weight_im2col_gemm},
    {"winograd", kernels::cpu::conv2d_winograd_supports, kernels::cpu::conv2d_forward_winograd,
     kernels::cpu::conv2d_backward_input_winograd, kernels::cpu::conv2d_backward_weight_winograd},
    {"direct", kernels::cpu::conv2d_direct_supports, kernels::cpu::conv2d_forward_direct,
     kernels::cpu::conv2d_backward_input_direct, kernels::cpu::conv2d_backward_weight_direct},
};

// Every variant's forward on every case against the reference, the bias on every other case; with
// `activation` relu the reference is clamped at zero (about half the outputs are), and with `residual` a
// random array of y's shape is added before that (as a ResNet block adds its shortcut).
void check_forward(std::uint64_t seed, Conv2dActivation activation, bool residual = false) {
  Generator generator(seed);
  const bool relu = activation == Conv2dActivation::relu;
  bool with_bias = relu;
  for (const Case& c : kCases) {
    const Conv2dGeometry g = geometry_of(c);
    with_bias = !with_bias;
    const std::vector<float> x = random_values(input_size(g), generator);
    const std::vector<float> w = random_values(weight_size(g), generator);
    const std::vector<float> bias = random_values(g.K, generator);
    const std::vector<double> xd = in_double(x), wd = in_double(w), bias_d = in_double(bias);
    std::vector<double> expected(static_cast<std::size_t>(output_size(g)));
    kernels::reference::conv2d_forward<double>(g, xd.data(), wd.data(), with_bias ? bias_d.data() : nullptr,
                                               expected.data());
    const std::vector<float> shortcut =
        residual ? random_values(output_size(g), generator) : std::vector<float>();
    for (std::size_t i = 0; i < shortcut.size(); ++i)
      expected[i] += shortcut[i];
    if (relu)
      for (double& value : expected)
        value = std::max(value, 0.0);
    for (const Variant& variant : kVariants) {
      if (!variant.supports(g)) continue;
      std::vector<float> y(expected.size(), std::nanf(""));
      variant.forward(g, x.data(), w.data(), with_bias ? bias.data() : nullptr, y.data(),
                      {activation, residual ? shortcut.data() : nullptr});
      EXPECT_TRUE(testing::all_close(
          y, expected, summed_tolerance(variant, g, Conv2dPass::forward, g.C * g.R * g.S), 1e-4,
          std::string("conv2d_forward") + (residual ? " + residual" : "") + (relu ? " with ReLU " : " ") +
              variant.name + " " + describe(g) + (with_bias ? " with bias" : "")));
    }
  }
}

TEST(Conv2dKernels, ForwardMatchesReference) {
  check_forward(21, Conv2dActivation::none);
}

// The ReLU applied as each variant writes its output.
TEST(Conv2dKernels, ForwardWithReluMatchesClampedReference) {
  check_forward(24, Conv2dActivation::relu);
}

// The residual added, then the ReLU, as each variant writes its output; and the residual alone.
TEST(Conv2dKernels, ForwardPlusResidualMatchesReference) {
  check_forward(25, Conv2dActivation::relu, true);
  check_forward(26, Conv2dActivation::none, true);
}

TEST(Conv2dKernels, BackwardInputMatchesReference) {
  Generator generator(22);
  for (const Case& c : kCases) {
    const Conv2dGeometry g = geometry_of(c);
    const std::vector<float> grad_y = random_values(output_size(g), generator);
    const std::vector<float> w = random_values(weight_size(g), generator);
    const std::vector<double> grad_y_d = in_double(grad_y), wd = in_double(w);
    std::vector<double> expected(static_cast<std::size_t>(input_size(g)));
    kernels::reference::conv2d_backward_input<double>(g, grad_y_d.data(), wd.data(), expected.data());
    for (const Variant& variant : kVariants) {
      if (!variant.supports(g)) continue;
      std::vector<float> grad_x(expected.size(), std::nanf(""));
      variant.backward_input(g, grad_y.data(), w.data(), grad_x.data());
      EXPECT_TRUE(testing::all_close(
          grad_x, expected, summed_tolerance(variant, g, Conv2dPass::input_gradient, g.K * g.R * g.S), 1e-4,
          std::string("conv2d_backward_input ") + variant.name + " " + describe(g)));
    }
  }
}

TEST(Conv2dKernels, BackwardWeightMatchesReference) {
  Generator generator(23);
  for (const Case& c : kCases) {
    const Conv2dGeometry g = geometry_of(c);
    const std::vector<float> x = random_values(input_size(g), generator);
    const std::vector<float> grad_y = random_values(output_size(g), generator);
    const std::vector<double> xd = in_double(x), grad_y_d = in_double(grad_y);
    std::vector<double> expected(static_cast<std::size_t>(weight_size(g)));
    kernels::reference::conv2d_backward_weight<double>(g, xd.data(), grad_y_d.data(), expected.data());
    for (const Variant& variant : kVariants) {
      if (!variant.supports(g)) continue;
      std::vector<float> grad_w(expected.size(), std::nanf(""));
      variant.backward_weight(g, x.data(), grad_y.data(), grad_w.data());
      // The weight gradient sums N·P·Q products (up to 4,480 here), so float rounding grows with it; by
      // Winograd as summed_tolerance says (the build without vectors had exceeded 1e-3 on the 66 × 65 case).
      const double tolerance =
          std::max(1e-3, summed_tolerance(variant, g, Conv2dPass::weight_gradient, g.N * g.P * g.Q));
      EXPECT_TRUE(
          testing::all_close(grad_w, expected, tolerance, 1e-4,
                             std::string("conv2d_backward_weight ") + variant.name + " " + describe(g)));
    }
  }
}

// The direct weight gradient sums its work items in fixed chunks whatever the number of threads (Note
// [weight gradient chunks] in cpu/conv2d_direct.cpp), so 1, 2 and 3 threads give the same bits.
TEST(Conv2dKernels, DirectWeightGradientIsTheSameOnAnyNumberOfThreads) {
  const Conv2dGeometry g = geometry_of({6, 16, 20, 24, 16, 3, 3, 1, 1, 1, 1});
  if (!kernels::cpu::conv2d_direct_supports(g)) GTEST_SKIP() << "no direct convolution on this processor";
  Generator generator(27);
  const std::vector<float> x = random_values(input_size(g), generator);
  const std::vector<float> grad_y = random_values(output_size(g), generator);
  const int threads = omp_get_max_threads();
  std::vector<std::vector<float>> results;
  for (const int count : {1, 2, 3}) {
    omp_set_num_threads(count);
    results.emplace_back(static_cast<std::size_t>(weight_size(g)), std::nanf(""));
    kernels::cpu::conv2d_backward_weight_direct(g, x.data(), grad_y.data(), results.back().data());
  }
  omp_set_num_threads(threads);
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

// The direct forward and input gradient cut their output rows into blocks whose height depends on the
// number of threads (Note [rows per item] in cpu/conv2d_direct.cpp), and every output is computed alone from
// the same taps in the same order, so 1, 2 and 3 threads (blocks of 8, 4 and 2 rows here) give the same bits.
TEST(Conv2dKernels, DirectForwardAndInputGradientAreTheSameOnAnyNumberOfThreads) {
  for (const Case& c : {Case{1, 8, 40, 20, 12, 3, 3, 1, 1, 1, 1}, Case{1, 16, 80, 36, 8, 3, 3, 2, 2, 1, 1}}) {
    const Conv2dGeometry g = geometry_of(c);
    if (!kernels::cpu::conv2d_direct_supports(g)) GTEST_SKIP() << "no direct convolution on this processor";
    Generator generator(28);
    const std::vector<float> x = random_values(input_size(g), generator);
    const std::vector<float> w = random_values(weight_size(g), generator);
    const std::vector<float> grad_y = random_values(output_size(g), generator);
    const int threads = omp_get_max_threads();
    std::vector<std::vector<float>> outputs, input_gradients;
    for (const int count : {1, 2, 3}) {
      omp_set_num_threads(count);
      outputs.emplace_back(static_cast<std::size_t>(output_size(g)), std::nanf(""));
      kernels::cpu::conv2d_forward_direct(g, x.data(), w.data(), nullptr, outputs.back().data());
      input_gradients.emplace_back(static_cast<std::size_t>(input_size(g)), std::nanf(""));
      kernels::cpu::conv2d_backward_input_direct(g, grad_y.data(), w.data(), input_gradients.back().data());
    }
    omp_set_num_threads(threads);
    EXPECT_EQ(outputs[0], outputs[1]) << describe(g);
    EXPECT_EQ(outputs[0], outputs[2]) << describe(g);
    EXPECT_EQ(input_gradients[0], input_gradients[1]) << describe(g);
    EXPECT_EQ(input_gradients[0], input_gradients[2]) << describe(g);
  }
}

TEST(Conv2dKernels, OutputSizeFormula) {
  EXPECT_EQ(kernels::conv2d_output_size(64, 3, 1, 1, 1), 64);
  EXPECT_EQ(kernels::conv2d_output_size(64, 3, 2, 1, 1), 32);
  EXPECT_EQ(kernels::conv2d_output_size(224, 7, 2, 3, 1), 112);
  EXPECT_EQ(kernels::conv2d_output_size(11, 3, 1, 2, 2), 11);
  EXPECT_EQ(kernels::conv2d_output_size(2, 5, 1, 0, 1), 0);  // filter larger than the input
}

}  // namespace
}  // namespace dscope
