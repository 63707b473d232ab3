// Four neighbouring activations moved as one memory access: a float4 (16 bytes) of float, or 8 bytes of
// bfloat16 (mixed precision), widened to float as they are loaded and rounded as they are stored. The
// elementwise passes over activations (batch norm) are memory-bound, so they move four values at a time
// where the layout allows: every pointer aligned to four elements and the run inside one plane.
// Host and device code alike, so that the packing is checked on the host too (tests/cuda).
//
// Included only by .cu files.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/bfloat16.h"

namespace dscope::kernels::cuda {

template <int kWidth>
struct Pack {
  float v[kWidth];
};

// One access of a whole Word (float4, uint2) at `at`: a plain wide load or store on the device; on the host,
// where reading a BFloat16 array through a uint2 would break C++'s aliasing rules, a memcpy.
template <typename Word, typename T>
__host__ __device__ inline Word read_word(const T* at) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const Word*>(at);
#else
  Word word;
  std::memcpy(&word, at, sizeof word);
  return word;
#endif
}
template <typename Word, typename T>
__host__ __device__ inline void write_word(T* at, const Word& word) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<Word*>(at) = word;
#else
  std::memcpy(at, &word, sizeof word);
#endif
}

// Whether `pointer` may be read and written four elements at a time.
template <typename T>
bool aligned_for_four(const T* pointer) {
  return reinterpret_cast<std::uintptr_t>(pointer) % (4 * sizeof(T)) == 0;
}

template <int kWidth>
__host__ __device__ inline Pack<kWidth> load_values(const float* from) {
  Pack<kWidth> pack;
  if constexpr (kWidth == 4) {
    const float4 four = read_word<float4>(from);
    pack.v[0] = four.x, pack.v[1] = four.y, pack.v[2] = four.z, pack.v[3] = four.w;
  } else {
    pack.v[0] = *from;
  }
  return pack;
}

// Four bfloat16 values are two 32-bit words, the first value in the low half of the first word (memory is
// little-endian); a value widens to float as its 16 bits moved to the top of a word.
template <int kWidth>
__host__ __device__ inline Pack<kWidth> load_values(const BFloat16* from) {
  Pack<kWidth> pack;
  if constexpr (kWidth == 4) {
    const uint2 four = read_word<uint2>(from);
    pack.v[0] = float_from_bits(four.x << 16), pack.v[1] = float_from_bits(four.x & 0xFFFF0000u);
    pack.v[2] = float_from_bits(four.y << 16), pack.v[3] = float_from_bits(four.y & 0xFFFF0000u);
  } else {
    pack.v[0] = to_float(*from);
  }
  return pack;
}

template <int kWidth>
__host__ __device__ inline void store_values(float* to, const Pack<kWidth>& pack) {
  if constexpr (kWidth == 4)
    write_word(to, make_float4(pack.v[0], pack.v[1], pack.v[2], pack.v[3]));
  else
    *to = pack.v[0];
}

template <int kWidth>
__host__ __device__ inline void store_values(BFloat16* to, const Pack<kWidth>& pack) {
  if constexpr (kWidth == 4) {
    const unsigned low = static_cast<unsigned>(to_bfloat16(pack.v[0]).bits) |
                         static_cast<unsigned>(to_bfloat16(pack.v[1]).bits) << 16;
    const unsigned high = static_cast<unsigned>(to_bfloat16(pack.v[2]).bits) |
                          static_cast<unsigned>(to_bfloat16(pack.v[3]).bits) << 16;
    write_word(to, make_uint2(low, high));
  } else {
    *to = to_bfloat16(pack.v[0]);
  }
}

}  // namespace dscope::kernels::cuda
