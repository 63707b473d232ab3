// bfloat16 rounding (kernels/bfloat16.h) and the CPU conversion kernels (kernels/convert.h), bit by bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/convert.h"

namespace dscope::kernels {
namespace {

std::uint16_t rounded_bits(std::uint32_t float_bits_in) {
  return to_bfloat16(float_from_bits(float_bits_in)).bits;
}

TEST(BFloat16, KeepsTheTopHalfOfValuesItCanHold) {
  EXPECT_EQ(to_bfloat16(1.0f).bits, 0x3F80);
  EXPECT_EQ(to_bfloat16(-2.0f).bits, 0xC000);
  EXPECT_EQ(to_bfloat16(0.0f).bits, 0x0000);
  EXPECT_EQ(to_bfloat16(-0.0f).bits, 0x8000);
  EXPECT_EQ(to_bfloat16(std::numeric_limits<float>::infinity()).bits, 0x7F80);
  for (const float value : {1.0f, -3.5f, 0.15625f, 1.0e-30f, 3.0e38f})
    EXPECT_EQ(to_float(to_bfloat16(to_float(to_bfloat16(value)))), to_float(to_bfloat16(value))) << value;
}

TEST(BFloat16, RoundsToNearestWithTiesToEven) {
  EXPECT_EQ(rounded_bits(0x3F807FFFu), 0x3F80);  // just below half way: down
  EXPECT_EQ(rounded_bits(0x3F808001u), 0x3F81);  // just above: up
  EXPECT_EQ(rounded_bits(0x3F808000u), 0x3F80);  // half way, 0x3F80 even: down
  EXPECT_EQ(rounded_bits(0x3F818000u), 0x3F82);  // half way, 0x3F81 odd: up to even
  EXPECT_EQ(rounded_bits(0xBF818000u), 0xBF82);  // the sign does not change the rule
  EXPECT_EQ(rounded_bits(0x3FFF8000u), 0x4000);  // a carry out of the mantissa bumps the exponent
  // The largest float is past bfloat16's largest (0x7F7F) by more than half a step: infinity.
  EXPECT_EQ(to_bfloat16(std::numeric_limits<float>::max()).bits, 0x7F80);
}

TEST(BFloat16, KeepsNaNANaN) {
  // A NaN whose payload sits only in the dropped bits would become infinity if simply rounded.
  const std::uint16_t bits = rounded_bits(0x7F800001u);
  EXPECT_TRUE(std::isnan(to_float(BFloat16{bits}))) << std::hex << bits;
  EXPECT_TRUE(std::isnan(to_float(to_bfloat16(-std::numeric_limits<float>::quiet_NaN()))));
}

TEST(BFloat16, ErrorIsAtMostHalfAStep) {
  // bfloat16 keeps 8 significant bits, a step of 2^-7 relative to the value's power of two: the rounding
  // error is at most half of it, 2^-8 of the value.
  for (float value = -100.0f; value < 100.0f; value += 0.0137f) {
    const float rounded = to_float(to_bfloat16(value));
    EXPECT_LE(std::fabs(rounded - value), std::ldexp(std::fabs(value), -8)) << value;
  }
}

TEST(ConvertKernels, ArraysRoundAndWidenLikeTheScalarFunctions) {
  std::vector<float> values;
  for (int i = 0; i < 40000; ++i)  // past one OpenMP chunk
    values.push_back(std::sin(0.37f * static_cast<float>(i)) * std::ldexp(1.0f, i % 40 - 20));
  std::vector<BFloat16> narrowed(values.size());
  cpu::float_to_bfloat16(static_cast<std::int64_t>(values.size()), values.data(), narrowed.data());
  std::vector<float> widened(values.size());
  cpu::bfloat16_to_float(static_cast<std::int64_t>(values.size()), narrowed.data(), widened.data());
  for (std::size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(narrowed[i].bits, to_bfloat16(values[i]).bits) << i;
    ASSERT_EQ(widened[i], to_float(narrowed[i])) << i;
  }
}

}  // namespace
}  // namespace dscope::kernels
