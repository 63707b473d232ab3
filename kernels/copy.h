// Strided copy: moves elements between two layouts of the same shape (views, permutes, expands, slices).
// The workhorse of contiguous(), of concat, and of writing a gradient into a slice of a larger one.
#pragma once

#include <cstdint>

#include "kernels/bfloat16.h"

namespace dscope::kernels {

inline constexpr int kMaxRank = 8;

// `rank` extents, and for each the source and destination strides in elements.
struct CopyGeometry {
  int rank = 0;
  std::int64_t shape[kMaxRank] = {};
  std::int64_t src_strides[kMaxRank] = {};
  std::int64_t dst_strides[kMaxRank] = {};
};

namespace cpu {
// dst[i] = src[i] for every index i of `shape`, each side read through its strides. T is float,
// std::int64_t or BFloat16. dst must not overlap src, and no two indices may map to the same dst element.
template <typename T>
void copy(const CopyGeometry& geometry, const T* src, T* dst);
// dst[n] = value.
template <typename T>
void fill(std::int64_t n, T value, T* dst);
}  // namespace cpu

namespace cuda {
// Same contracts, on device pointers (instantiated for float, std::int64_t and BFloat16).
template <typename T>
void copy(const CopyGeometry& geometry, const T* src, T* dst);
template <typename T>
void fill(std::int64_t n, T value, T* dst);
}  // namespace cuda

}  // namespace dscope::kernels
