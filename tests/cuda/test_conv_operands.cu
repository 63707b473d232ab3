// The index arithmetic of the CUDA convolution, checked on the host, so that it is tested on every machine
// that builds the CUDA backend, GPU or not (CI has none).
//
// Each pass of conv2d is a product whose operands are Gathers (kernels/cuda/conv2d_operands.cuh). Here the
// products are evaluated element by element with the kernel's own address and bounds arithmetic
// (Axis::at, Gather::present, FastDivmod) and stored through the passes' own store(), then compared with
// the reference convolution in double. What only the GPU can check (the copies, the tensor-core fragments)
// is test_cuda's job.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cuda/conv2d_operands.cuh"
#include "kernels/cuda/fast_divmod.cuh"
#include "tests/cuda/host_conv_check.h"

namespace dscope::kernels::cuda {
namespace {

using host_check::as_double;
using host_check::element;
using host_check::geometry_of;
using host_check::random_values;
using host_check::relative_error;
using Case = host_check::ConvCase;

TEST(FastDivmod, MatchesIntegerDivisionOverTheWholeRange) {
  std::mt19937 random(3);
  std::vector<int> divisors = {1, 2, 3, 7, 9, 64, 576, 4096, 1 << 20, std::numeric_limits<int>::max()};
  for (int i = 0; i < 200; ++i)
    divisors.push_back(1 + static_cast<int>(random() % std::numeric_limits<int>::max()));
  for (int d : divisors) {
    const FastDivmod divide(d);
    std::vector<int> numerators = {
        0, 1, d - 1, d, std::numeric_limits<int>::max(), std::numeric_limits<int>::max() - 1};
    if (d < std::numeric_limits<int>::max()) numerators.push_back(d + 1);
    for (int i = 0; i < 200; ++i)
      numerators.push_back(static_cast<int>(random() % (1u << 31)));
    for (int n : numerators) {
      int quotient = -1, remainder = -1;
      divide.divmod(n, quotient, remainder);
      ASSERT_EQ(quotient, n / d) << n << " / " << d;
      ASSERT_EQ(remainder, n % d) << n << " % " << d;
    }
  }
  EXPECT_THROW(FastDivmod(0), std::invalid_argument);
}

// The claim four_in_a_row makes: from every multiple of 4, four k are neighbours in memory, with one answer
// to "present" for all four.
void expect_four_in_a_row_holds(const implicit_gemm::Gather& g, int lines, int K, const std::string& what) {
  if (!g.four_in_a_row) return;
  ASSERT_EQ(K % 4, 0) << what;
  for (int line = 0; line < lines; ++line) {
    const implicit_gemm::Coordinate l = g.line.at(line);
    for (int k = 0; k < K; k += 4) {
      const implicit_gemm::Coordinate first = g.depth.at(k);
      ASSERT_EQ((l.offset + first.offset) % 4, 0) << what << ": line " << line << ", k " << k;
      for (int i = 1; i < 4; ++i) {
        const implicit_gemm::Coordinate next = g.depth.at(k + i);
        ASSERT_EQ(next.offset, first.offset + i) << what << ": line " << line << ", k " << k + i;
        ASSERT_EQ(g.present(l, next), g.present(l, first)) << what << ": line " << line << ", k " << k + i;
      }
    }
  }
}

// Every result of the product, stored through the pass's own store().
template <typename Operands>
void evaluate(const Operands& ops) {
  for (int m = 0; m < ops.M; ++m)
    for (int n = 0; n < ops.N; ++n) {
      double sum = 0.0;
      for (int k = 0; k < ops.K; ++k)
        sum += static_cast<double>(element(ops.a, m, k)) * element(ops.b, n, k);
      ops.store(m, n, static_cast<float>(sum));
    }
}

// Strides 1–3 per axis, with phases that no tap reaches (1×1 stride 2, 2×2 stride 3), dilation, uneven
// padding, rectangular filters, and filter counts that are and are not multiples of 4 (the 16-byte copies).
const std::vector<Case> kCases = {
    {"3x3 stride 1 pad 1, K 8", 2, 3, 7, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1},
    {"3x3 stride 2 pad 1, K 5", 2, 4, 9, 8, 5, 3, 3, 2, 2, 1, 1, 1, 1},
    {"1x1 stride 2, K 4", 1, 5, 6, 7, 4, 1, 1, 2, 2, 0, 0, 1, 1},
    {"2x2 stride 3, K 3", 2, 2, 8, 8, 3, 2, 2, 3, 3, 0, 0, 1, 1},
    {"3x3 dilation 2 pad 2, K 4", 1, 3, 9, 9, 4, 3, 3, 1, 1, 2, 2, 2, 2},
    {"3x5 strides 2/1 pad 1/2, K 6", 2, 3, 9, 11, 6, 3, 5, 2, 1, 1, 2, 1, 1},
    {"5x5 stride 2 dilation 2 pad 3, K 4", 1, 2, 13, 12, 4, 5, 5, 2, 2, 3, 3, 2, 2},
    {"7x7 stride 2 pad 3 (a stem), K 8", 1, 3, 12, 12, 8, 7, 7, 2, 2, 3, 3, 1, 1},
};

TEST(ConvOperands, ForwardProductIsTheConvolution) {
  std::mt19937 random(5);
  for (const Case& c : kCases) {
    const Conv2dGeometry g = geometry_of(c);
    const std::vector<float> x = random_values(g.N * g.C * g.H * g.W, random);
    const std::vector<float> w = random_values(g.K * g.C * g.R * g.S, random);
    const std::vector<float> bias = random_values(g.K, random);
    std::vector<float> y(g.N * g.K * g.P * g.Q, std::numeric_limits<float>::quiet_NaN());
    const ForwardOperands ops = forward_operands(ConvShape(g), x.data(), w.data(), bias.data(), y.data());
    expect_four_in_a_row_holds(ops.a, ops.M, ops.K, c.name + " forward A");
    evaluate(ops);
    std::vector<double> want(y.size());
    reference::conv2d_forward(g, as_double(x).data(), as_double(w).data(), as_double(bias).data(),
                              want.data());
    EXPECT_LT(relative_error(y, want), 1e-5) << c.name;
  }
}

// [batches][rows][cols] → [batches][cols][rows]: the channels-last copies that conv2d.cu's transpose makes.
std::vector<float> transposed(const std::vector<float>& values, std::int64_t batches, std::int64_t rows,
                              std::int64_t cols) {
  std::vector<float> out(values.size());
  for (std::int64_t b = 0; b < batches; ++b)
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t j = 0; j < cols; ++j)
        out[(b * cols + j) * rows + i] = values[(b * rows + i) * cols + j];
  return out;
}

// The case with its channel and filter counts rounded up to multiples of 4, as the channels-last paths need.
Case in_fours(Case c) {
  c.C = (c.C + 3) / 4 * 4, c.K = (c.K + 3) / 4 * 4;
  return c;
}

TEST(ConvOperands, ForwardProductOnChannelsLastCopiesIsTheConvolution) {
  std::mt19937 random(8);
  for (const Case& original : kCases) {
    const Case c = in_fours(original);
    const Conv2dGeometry g = geometry_of(c);
    const ConvShape shape(g);
    ASSERT_TRUE(forward_channels_last_fits(shape)) << c.name;
    const std::vector<float> x = random_values(g.N * g.C * g.H * g.W, random);
    const std::vector<float> w = random_values(g.K * g.C * g.R * g.S, random);
    const std::vector<float> bias = random_values(g.K, random);
    const std::vector<float> x_channels_last = transposed(x, g.N, g.C, g.H * g.W);
    const std::vector<float> w_channels_last = transposed(w, g.K, g.C, g.R * g.S);
    std::vector<float> y(g.N * g.K * g.P * g.Q, std::numeric_limits<float>::quiet_NaN());
    const ForwardOperands ops = forward_operands_channels_last(shape, x_channels_last.data(),
                                                               w_channels_last.data(), bias.data(), y.data());
    ASSERT_TRUE(ops.b.four_in_a_row) << c.name;  // a std::vector's data is 16-byte aligned
    expect_four_in_a_row_holds(ops.a, ops.M, ops.K, c.name + " channels-last forward A");
    expect_four_in_a_row_holds(ops.b, ops.N, ops.K, c.name + " channels-last forward B");
    evaluate(ops);
    std::vector<double> want(y.size());
    reference::conv2d_forward(g, as_double(x).data(), as_double(w).data(), as_double(bias).data(),
                              want.data());
    EXPECT_LT(relative_error(y, want), 1e-5) << c.name;
  }
}

TEST(ConvOperands, WeightGradientProductIsTheConvolutions) {
  std::mt19937 random(6);
  for (const Case& c : kCases) {
    const Conv2dGeometry g = geometry_of(c);
    const std::vector<float> x = random_values(g.N * g.C * g.H * g.W, random);
    const std::vector<float> grad_y = random_values(g.N * g.K * g.P * g.Q, random);
    std::vector<float> grad_w(g.K * g.C * g.R * g.S, std::numeric_limits<float>::quiet_NaN());
    const BackwardWeightOperands ops =
        backward_weight_operands(ConvShape(g), x.data(), grad_y.data(), grad_w.data());
    expect_four_in_a_row_holds(ops.a, ops.M, ops.K, c.name + " backward weight A");
    evaluate(ops);
    std::vector<double> want(grad_w.size());
    reference::conv2d_backward_weight(g, as_double(x).data(), as_double(grad_y).data(), want.data());
    EXPECT_LT(relative_error(grad_w, want), 1e-5) << c.name;
  }
}

// Every case, on the S shifted copies of x made with the kernel's own shifted_copy_element; the 16-byte
// copies' claim checked wherever Q is a multiple of 4 (widths made so for a second round).
TEST(ConvOperands, WeightGradientOnShiftedCopiesIsTheConvolution) {
  std::mt19937 random(9);
  std::vector<Case> cases = kCases;
  for (Case c : kCases) {
    while (geometry_of(c).Q % 4 != 0)
      ++c.W;
    cases.push_back(c);
  }
  for (const Case& c : cases) {
    const Conv2dGeometry g = geometry_of(c);
    const ConvShape shape(g);
    const std::vector<float> x = random_values(g.N * g.C * g.H * g.W, random);
    const std::vector<float> grad_y = random_values(g.N * g.K * g.P * g.Q, random);
    std::vector<float> x_shifted(shifted_copy_floats(shape));
    for (std::int64_t at = 0; at < shifted_copy_floats(shape); ++at)
      x_shifted[at] = shifted_copy_element(shape, x.data(), at);
    std::vector<float> grad_w(g.K * g.C * g.R * g.S, std::numeric_limits<float>::quiet_NaN());
    const BackwardWeightOperands ops =
        backward_weight_operands_shifted(shape, x_shifted.data(), grad_y.data(), grad_w.data());
    EXPECT_EQ(ops.b.four_in_a_row, g.Q % 4 == 0) << c.name;
    expect_four_in_a_row_holds(ops.b, ops.N, ops.K, c.name + " shifted copies B");
    evaluate(ops);
    std::vector<double> want(grad_w.size());
    reference::conv2d_backward_weight(g, as_double(x).data(), as_double(grad_y).data(), want.data());
    EXPECT_LT(relative_error(grad_w, want), 1e-5) << c.name << " (Q " << g.Q << ")";
  }
}

// Every case in NCHW, then with channel and filter counts in fours on a channels-last grad_y.
TEST(ConvOperands, InputGradientPhasesCoverEveryPositionOnce) {
  std::mt19937 random(7);
  std::vector<std::pair<Case, bool>> runs;
  for (const Case& c : kCases)
    runs.emplace_back(c, false);
  for (const Case& c : kCases)
    runs.emplace_back(in_fours(c), true);
  for (const auto& [c, channels_last] : runs) {
    const Conv2dGeometry g = geometry_of(c);
    const std::vector<float> grad_y = random_values(g.N * g.K * g.P * g.Q, random);
    const std::vector<float> w = random_values(g.K * g.C * g.R * g.S, random);
    // The [C, R, S, K] copy the GPU makes first.
    std::vector<float> w_by_channel(w.size());
    const std::int64_t CRS = g.C * g.R * g.S;
    for (std::int64_t k = 0; k < g.K; ++k)
      for (std::int64_t crs = 0; crs < CRS; ++crs)
        w_by_channel[crs * g.K + k] = w[k * CRS + crs];
    std::vector<float> grad_x(g.N * g.C * g.H * g.W, std::numeric_limits<float>::quiet_NaN());
    const std::vector<float> grad_y_channels_last = transposed(grad_y, g.N, g.K, g.P * g.Q);
    const std::vector<BackwardInputOperands> phases =
        backward_input_operands(ConvShape(g), channels_last ? grad_y_channels_last.data() : grad_y.data(),
                                w_by_channel.data(), grad_x.data(), channels_last);
    EXPECT_EQ(static_cast<std::int64_t>(phases.size()),
              std::min(g.stride_h, g.H) * std::min(g.stride_w, g.W));
    int total_positions = 0;
    for (const BackwardInputOperands& ops : phases) {
      expect_four_in_a_row_holds(ops.a, ops.M, ops.K, c.name + " backward input A");
      expect_four_in_a_row_holds(ops.b, ops.N, ops.K, c.name + " backward input B");
      if (channels_last) EXPECT_TRUE(ops.b.four_in_a_row) << c.name;
      total_positions += ops.N;
      evaluate(ops);
    }
    EXPECT_EQ(total_positions, g.N * g.H * g.W) << c.name;
    std::vector<double> want(grad_x.size());
    reference::conv2d_backward_input(g, as_double(grad_y).data(), as_double(w).data(), want.data());
    EXPECT_LT(relative_error(grad_x, want), 1e-5) << c.name;  // NaN where a position was never written
  }
}

// Mixed precision: with y_bfloat16 (grad_x_bfloat16) set, the passes store every result there, rounded,
// and at the place the float store writes it; and the shifted copies widen bfloat16 inputs as they copy.
// (The operands need not make a convolution here: each pass's two stores are compared with each other.)
TEST(ConvOperands, BFloat16StoresRoundEveryResultInPlace) {
  std::mt19937 random(9);
  const BFloat16 unwritten{0x7FC1};  // a NaN no rounding produces
  for (const Case& original : kCases) {
    const Case c = in_fours(original);
    const Conv2dGeometry g = geometry_of(c);
    const ConvShape shape(g);
    const std::vector<float> x =
        transposed(random_values(g.N * g.C * g.H * g.W, random), g.N, g.C, g.H * g.W);
    const std::vector<float> w =
        transposed(random_values(g.K * g.C * g.R * g.S, random), g.K, g.C, g.R * g.S);
    const std::vector<float> bias = random_values(g.K, random);
    std::vector<float> y(g.N * g.K * g.P * g.Q);
    std::vector<BFloat16> y_rounded(y.size(), unwritten);
    ForwardOperands ops = forward_operands_channels_last(shape, x.data(), w.data(), bias.data(), y.data());
    evaluate(ops);
    ops.y = nullptr, ops.y_bfloat16 = y_rounded.data();
    evaluate(ops);
    for (std::size_t i = 0; i < y.size(); ++i)
      ASSERT_EQ(y_rounded[i].bits, to_bfloat16(y[i]).bits) << c.name << ": forward output " << i;

    const std::vector<float> grad_y = random_values(g.N * g.K * g.P * g.Q, random);
    std::vector<float> grad_x(g.N * g.C * g.H * g.W);
    std::vector<BFloat16> grad_x_rounded(grad_x.size(), unwritten);
    for (BackwardInputOperands phase :
         backward_input_operands(shape, grad_y.data(), w.data(), grad_x.data(), true)) {
      evaluate(phase);
      phase.grad_x = nullptr, phase.grad_x_bfloat16 = grad_x_rounded.data();
      evaluate(phase);
    }
    for (std::size_t i = 0; i < grad_x.size(); ++i)
      ASSERT_EQ(grad_x_rounded[i].bits, to_bfloat16(grad_x[i]).bits) << c.name << ": input gradient " << i;

    std::vector<BFloat16> x_bfloat16;
    for (const float value : x)
      x_bfloat16.push_back(to_bfloat16(value));
    for (std::int64_t at = 0; at < shifted_copy_floats(shape); at += 7) {
      const float copied = shifted_copy_element(shape, x_bfloat16.data(), at);
      const float widened_first = shifted_copy_element(shape, x.data(), at);
      ASSERT_EQ(copied, to_float(to_bfloat16(widened_first))) << c.name << ": shifted copy " << at;
    }
  }
}

}  // namespace
}  // namespace dscope::kernels::cuda
