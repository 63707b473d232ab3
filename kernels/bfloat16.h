// bfloat16: a float cut to its top 16 bits (sign, all 8 exponent bits, 7 of the 23 mantissa bits). It
// keeps float's range, so activations and gradients need no loss scaling, and gives up precision: about
// 3 significant decimal digits. Mixed precision (tensor/autocast.h) stores activations this way to halve
// their memory and traffic, while weights, optimizer state and every sum stay float.
//
// The conversion rounds to nearest, ties to even, as the tensor cores' cvt.rn.bf16 does: add 0x7FFF plus the
// lowest kept bit to the float's bits and drop the low half. A carry out of the mantissa bumps the exponent,
// which is exactly right, up to infinity for values past bfloat16's largest. NaN is kept a NaN (a
// payload in the dropped bits alone would otherwise round to infinity). Widening back is exact.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/host_device.h"

namespace dscope::kernels {

struct BFloat16 {
  std::uint16_t bits;
};

DSCOPE_HOST_DEVICE inline std::uint32_t float_bits(float value) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(value);
#else
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
#endif
}

DSCOPE_HOST_DEVICE inline float float_from_bits(std::uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
#endif
}

DSCOPE_HOST_DEVICE inline BFloat16 to_bfloat16(float value) {
  const std::uint32_t bits = float_bits(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u)  // NaN: keep the sign, set the quiet bit
    return {static_cast<std::uint16_t>((bits >> 16) | 0x0040u)};
  const std::uint32_t lowest_kept_bit = (bits >> 16) & 1u;
  return {static_cast<std::uint16_t>((bits + 0x7FFFu + lowest_kept_bit) >> 16)};
}

DSCOPE_HOST_DEVICE inline float to_float(BFloat16 value) {
  return float_from_bits(static_cast<std::uint32_t>(value.bits) << 16);
}

// An element of a float or bfloat16 array read as float, and a float written into one (rounded for
// bfloat16): what lets one kernel body serve both activation dtypes.
DSCOPE_HOST_DEVICE inline float as_float(float value) {
  return value;
}
DSCOPE_HOST_DEVICE inline float as_float(BFloat16 value) {
  return to_float(value);
}
DSCOPE_HOST_DEVICE inline void store_float(float* to, float value) {
  *to = value;
}
DSCOPE_HOST_DEVICE inline void store_float(BFloat16* to, float value) {
  *to = to_bfloat16(value);
}

}  // namespace dscope::kernels
