// The mask of inverted dropout: element i is kept with probability 1 − p and then scaled by 1/(1 − p), so
// the expected output equals the input and evaluation needs no rescaling.
//
// Element i draws the (i + 1)-th number of the splitmix64 sequence started at `seed` (the op takes the seed
// from its Generator). splitmix64's state after i steps is seed + i·γ, so every element computes its own
// number without a shared state: the loop parallelises, and the mask depends only on the seed, not on the
// number of threads or the device. The draw is turned into a float in [0, 1) the way Generator::uniform does.
#pragma once

#include <cstdint>

#include "kernels/host_device.h"

namespace dscope::kernels {

// The uniform number in [0, 1) that decides element `index`: dropped when it is below p.
DSCOPE_HOST_DEVICE inline float dropout_uniform(std::uint64_t seed, std::int64_t index) {
  std::uint64_t z = seed + (static_cast<std::uint64_t>(index) + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  // The top 24 bits fill a float's mantissa. They go through int32 because AVX2 converts int32 to float but
  // has no conversion from 64-bit integers: this way the mask loop vectorises (about 5× faster on one core
  // here).
  return static_cast<float>(static_cast<std::int32_t>(z >> 40)) * (1.0f / 16777216.0f);
}

namespace cpu {
// mask [n]; writes mask[i] = 0 where dropout_uniform(seed, i) < p, else 1/(1 − p). Requires 0 ≤ p < 1.
void dropout_mask(std::int64_t n, float p, std::uint64_t seed, float* mask);
}  // namespace cpu

namespace cuda {
// Same contract on a device pointer: the same mask as the CPU's, bit for bit.
void dropout_mask(std::int64_t n, float p, std::uint64_t seed, float* mask);
}  // namespace cuda

}  // namespace dscope::kernels
