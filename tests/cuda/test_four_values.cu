// The packing of four activations into one memory access (kernels/cuda/four_values.cuh), checked on the
// host: the batch norm's kernels move bfloat16 activations this way, and a value paired with the wrong
// neighbour would pass every shape whose planes are not a multiple of 4.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/cuda/four_values.cuh"

namespace dscope::kernels::cuda {
namespace {

TEST(FourValues, BFloat16LoadsWidenEachValueInItsPlace) {
  alignas(8) BFloat16 values[8];
  const float expected[8] = {1.0f, -2.5f, 0.0f, 3.140625f, -0.0078125f, 65280.0f, -1.0e-20f, 7.0f};
  for (int i = 0; i < 8; ++i)
    values[i] = to_bfloat16(expected[i]);
  for (int first : {0, 4}) {
    const Pack<4> four = load_values<4>(values + first);
    for (int e = 0; e < 4; ++e) {
      EXPECT_EQ(four.v[e], to_float(values[first + e])) << "value " << first + e;
      EXPECT_EQ(load_values<1>(values + first + e).v[0], four.v[e]) << "value " << first + e;
    }
  }
}

TEST(FourValues, BFloat16StoresRoundEachValueIntoItsPlace) {
  const Pack<4> four{{1.00390625f, -3.14159f, 1.0e30f, -0.0f}};
  alignas(8) BFloat16 stored[6] = {{0xAAAA}, {0xAAAA}, {0xAAAA}, {0xAAAA}, {0xAAAA}, {0xAAAA}};
  store_values<4>(stored + 0, four);
  for (int e = 0; e < 4; ++e)
    EXPECT_EQ(stored[e].bits, to_bfloat16(four.v[e]).bits) << "value " << e;
  EXPECT_EQ(stored[4].bits, 0xAAAA) << "a store of four wrote a fifth value";
  store_values<1>(stored + 5, Pack<1>{{2.0f}});
  EXPECT_EQ(stored[5].bits, to_bfloat16(2.0f).bits);
}

TEST(FourValues, FloatsRoundTripAndAlignmentIsPerElementType) {
  alignas(16) float values[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  alignas(16) float copied[4] = {};
  store_values<4>(copied, load_values<4>(values + 4));
  EXPECT_EQ(std::vector<float>(copied, copied + 4), std::vector<float>(values + 4, values + 8));
  EXPECT_TRUE(aligned_for_four(values));
  EXPECT_FALSE(aligned_for_four(values + 2));  // 8 bytes in: not a float4
  alignas(16) BFloat16 halves[8];
  EXPECT_TRUE(aligned_for_four(halves + 4));  // 8 bytes in: four bfloat16
  EXPECT_FALSE(aligned_for_four(halves + 2));
}

}  // namespace
}  // namespace dscope::kernels::cuda
