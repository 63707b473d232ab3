// The widest vector of floats the build's target processor offers, so that a kernel is written once for
// both AVX-512 (16 lanes, 32 vector registers) and AVX2 + FMA (8 lanes, 16 registers). Which one a build gets
// follows its compiler flags (-march=native by default, see cmake/DscopeTargets.cmake);
// DSCOPE_FLOAT_VECTOR is 0 when the target has neither, and kernels that use this header then fall back.
#pragma once

#include <cstdint>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#define DSCOPE_FLOAT_VECTOR 1
#else
#define DSCOPE_FLOAT_VECTOR 0
#endif

namespace dscope::kernels::cpu::simd {

// `value`, held in a vector register from here on. A loaded vector that several FMAs use may otherwise be
// reloaded by each of them (the compiler folds the load into the FMA's memory operand), which costs load
// slots a register tile needs for its other operands. The empty asm makes the value opaque, so the
// compiler keeps the one load.
#if DSCOPE_FLOAT_VECTOR
template <typename Vector>
inline Vector in_register(Vector value) {
  asm("" : "+v"(value));
  return value;
}
#endif

#if defined(__AVX512F__)

using Floats = __m512;
inline constexpr int kLanes = 16;
inline constexpr int kRegisters = 32;

inline Floats load(const float* from) {
  return _mm512_loadu_ps(from);
}
inline void store(float* to, Floats value) {
  _mm512_storeu_ps(to, value);
}
// A non-temporal store: it writes the whole line to memory without reading it into the caches first.
// `to` must lie on a vector boundary (see is_vector_aligned).
inline void store_streaming(float* to, Floats value) {
  _mm512_stream_ps(to, value);
}
inline Floats splat(float value) {
  return _mm512_set1_ps(value);
}
inline Floats add(Floats a, Floats b) {
  return _mm512_add_ps(a, b);
}
inline Floats multiply(Floats a, Floats b) {
  return _mm512_mul_ps(a, b);
}
// a · b + c, rounded once.
inline Floats multiply_add(Floats a, Floats b, Floats c) {
  return _mm512_fmadd_ps(a, b, c);
}
// max(value, 0) per lane; a NaN lane gives 0, as `value > 0 ? value : 0` does (max returns its second
// operand when either is NaN).
// (The zero-masking form with every lane selected is the plain max; GCC 12 reports a false "may be used
// uninitialized" for the unmasked one's undefined pass-through operand.)
inline Floats relu(Floats value) {
  return _mm512_maskz_max_ps(static_cast<__mmask16>(0xFFFF), value, _mm512_setzero_ps());
}
// Lanes [0, count) from from[0..count), the others zero; reads nothing past from[count − 1]. count ≤ kLanes.
inline Floats load_first(const float* from, std::int64_t count) {
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1), from);
}
// Lanes [first, end) of `value` to to[first..end); writes nothing else. end ≤ kLanes.
inline void store_lanes(float* to, Floats value, std::int64_t first, std::int64_t end) {
  _mm512_mask_storeu_ps(to, static_cast<__mmask16>(((1u << end) - 1) & ~((1u << first) - 1)), value);
}
// The 2·kLanes floats of low then high split by parity: even[i] = (low, high)[2i], odd[i] = (low, high)[2i +
// 1].
inline void deinterleave(Floats low, Floats high, Floats& even, Floats& odd) {
  even = _mm512_permutex2var_ps(
      low, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), high);
  odd = _mm512_permutex2var_ps(
      low, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), high);
}
// The inverse: (low, high)[2i] = even[i], (low, high)[2i + 1] = odd[i].
inline void interleave(Floats even, Floats odd, Floats& low, Floats& high) {
  low = _mm512_permutex2var_ps(
      even, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), odd);
  high = _mm512_permutex2var_ps(
      even, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), odd);
}
// value moved up by `lanes` (0 ≤ lanes < kLanes): lane l holds value[l − lanes], the first `lanes` zero.
inline Floats shift_up(Floats value, std::int64_t lanes) {
  const __m512i from =
      _mm512_sub_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                       _mm512_set1_epi32(static_cast<int>(lanes)));
  return _mm512_maskz_permutexvar_ps(static_cast<__mmask16>(0xFFFFu << lanes), from, value);
}
// a[1], a[2], ..., a[kLanes − 1], b[0]: a moved down one lane, with the first lane of b shifted in. (Zero
// masking with every lane selected, as in relu above.)
inline Floats shift_in(Floats a, Floats b) {
  return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(static_cast<__mmask16>(0xFFFF), _mm512_castps_si512(b),
                                                       _mm512_castps_si512(a), 1));
}

#elif DSCOPE_FLOAT_VECTOR

using Floats = __m256;
inline constexpr int kLanes = 8;
inline constexpr int kRegisters = 16;

inline Floats load(const float* from) {
  return _mm256_loadu_ps(from);
}
inline void store(float* to, Floats value) {
  _mm256_storeu_ps(to, value);
}
// A non-temporal store: it writes the whole line to memory without reading it into the caches first.
// `to` must lie on a vector boundary (see is_vector_aligned).
inline void store_streaming(float* to, Floats value) {
  _mm256_stream_ps(to, value);
}
inline Floats splat(float value) {
  return _mm256_set1_ps(value);
}
inline Floats add(Floats a, Floats b) {
  return _mm256_add_ps(a, b);
}
inline Floats multiply(Floats a, Floats b) {
  return _mm256_mul_ps(a, b);
}
// a · b + c, rounded once.
inline Floats multiply_add(Floats a, Floats b, Floats c) {
  return _mm256_fmadd_ps(a, b, c);
}
// max(value, 0) per lane; a NaN lane gives 0, as `value > 0 ? value : 0` does (max returns its second
// operand when either is NaN).
inline Floats relu(Floats value) {
  return _mm256_max_ps(value, _mm256_setzero_ps());
}
// The mask of lanes [first, end): all bits set in those lanes.
inline __m256i lanes_mask(std::int64_t first, std::int64_t end) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_and_si256(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(static_cast<int>(first) - 1)),
                          _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(end)), lane));
}
// Lanes [0, count) from from[0..count), the others zero; reads nothing past from[count − 1]. count ≤ kLanes.
inline Floats load_first(const float* from, std::int64_t count) {
  return _mm256_maskload_ps(from, lanes_mask(0, count));
}
// Lanes [first, end) of `value` to to[first..end); writes nothing else. end ≤ kLanes.
inline void store_lanes(float* to, Floats value, std::int64_t first, std::int64_t end) {
  _mm256_maskstore_ps(to, lanes_mask(first, end), value);
}
// The 2·kLanes floats of low then high split by parity: even[i] = (low, high)[2i], odd[i] = (low, high)[2i +
// 1]. The shuffles work within 128-bit halves (giving [0, 2, 8, 10 | 4, 6, 12, 14]); the permutation of
// 64-bit pairs puts the halves' pairs in order.
inline void deinterleave(Floats low, Floats high, Floats& even, Floats& odd) {
  const auto in_order = [](Floats pairs) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(pairs), _MM_SHUFFLE(3, 1, 2, 0)));
  };
  even = in_order(_mm256_shuffle_ps(low, high, _MM_SHUFFLE(2, 0, 2, 0)));
  odd = in_order(_mm256_shuffle_ps(low, high, _MM_SHUFFLE(3, 1, 3, 1)));
}
// The inverse: (low, high)[2i] = even[i], (low, high)[2i + 1] = odd[i]. The unpacks pair lanes within 128-bit
// halves (e0 o0 e1 o1 | e4 o4 e5 o5 and e2 o2 e3 o3 | e6 o6 e7 o7); the permutations join the halves.
inline void interleave(Floats even, Floats odd, Floats& low, Floats& high) {
  const Floats pairs_low = _mm256_unpacklo_ps(even, odd), pairs_high = _mm256_unpackhi_ps(even, odd);
  low = _mm256_permute2f128_ps(pairs_low, pairs_high, 0x20);
  high = _mm256_permute2f128_ps(pairs_low, pairs_high, 0x31);
}
// value moved up by `lanes` (0 ≤ lanes < kLanes): lane l holds value[l − lanes], the first `lanes` zero.
inline Floats shift_up(Floats value, std::int64_t lanes) {
  const __m256i from =
      _mm256_sub_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(lanes)));
  return _mm256_and_ps(_mm256_permutevar8x32_ps(value, from), _mm256_castsi256_ps(lanes_mask(lanes, kLanes)));
}
// a[1], a[2], ..., a[kLanes − 1], b[0]: a moved down one lane, with the first lane of b shifted in. The byte
// shift works within 128-bit halves, so its upper operand is a's upper half followed by b's lower one.
inline Floats shift_in(Floats a, Floats b) {
  const Floats next = _mm256_permute2f128_ps(a, b, 0x21);
  return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(next), _mm256_castps_si256(a), 4));
}

#endif

// Outputs of at least this many bytes are written by streaming stores (cpu/conv2d_direct.cpp, Note
// [streaming stores]).
inline constexpr std::int64_t kStreamingMinBytes = std::int64_t{4} << 20;

#if DSCOPE_FLOAT_VECTOR
// The 2·kLanes floats from `from` split by parity: even[i] = from[2i], odd[i] = from[2i + 1].
inline void deinterleave(const float* from, Floats& even, Floats& odd) {
  deinterleave(load(from), load(from + kLanes), even, odd);
}
// The inverse: to[2i] = even[i], to[2i + 1] = odd[i], for 2·kLanes floats.
inline void interleave(Floats even, Floats odd, float* to) {
  Floats low, high;
  interleave(even, odd, low, high);
  store(to, low);
  store(to + kLanes, high);
}
// Whether `at` lies on a vector boundary, as streaming stores need.
inline bool is_vector_aligned(const float* at) {
  return reinterpret_cast<std::uintptr_t>(at) % (kLanes * sizeof(float)) == 0;
}
// Streaming stores are weakly ordered: this makes the calling thread's earlier ones visible before any of
// its later stores, such as the one by which an OpenMP barrier tells the other threads it has arrived.
inline void finish_streaming_stores() {
  _mm_sfence();
}
#endif

}  // namespace dscope::kernels::cpu::simd
