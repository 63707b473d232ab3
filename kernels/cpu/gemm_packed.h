// The operand layout of our packed GEMM (cpu/gemm_packed.cpp, Note [micro-kernel]), for kernels that write
// their operands in it to begin with instead of having every product copy them (cpu/conv2d_winograd.cpp).
//
// A product C[M, N] = A[M, K] · B[K, N] runs as tiles of kTileRows × kTileColumns of C. A is packed in
// panels of kTileRows rows and B in panels of kTileColumns columns, each panel over the whole depth K and
// ordered by k, so that a tile reads both operands at unit stride:
//   packed A: a[(i / kTileRows) · kTileRows · K + k · kTileRows + i % kTileRows] = A(i, k)
//   packed B: b[(j / kTileColumns) · kTileColumns · K + k · kTileColumns + j % kTileColumns] = B(k, j)
// The last panel is padded to a whole one; its padding may hold anything (the tiles' values there are never
// written to C).
#pragma once

#include <cstdint>

#include "kernels/cpu/float_vector.h"

namespace dscope::kernels::cpu::packed {

#if DSCOPE_FLOAT_VECTOR
inline constexpr std::int64_t kTileRows = simd::kRegisters == 32 ? 8 : 6;
inline constexpr std::int64_t kTileColumns = 2 * simd::kLanes;
#else
inline constexpr std::int64_t kTileRows = 4, kTileColumns = 8;
#endif

// Floats a packed operand takes: `lines` rows of A (or columns of B) rounded up to whole panels, × depth.
inline std::int64_t a_size(std::int64_t rows, std::int64_t depth) {
  return (rows + kTileRows - 1) / kTileRows * kTileRows * depth;
}
inline std::int64_t b_size(std::int64_t depth, std::int64_t columns) {
  return (columns + kTileColumns - 1) / kTileColumns * kTileColumns * depth;
}

// Where A(i, k) and B(k, j) go in their packed layouts (above).
inline std::int64_t a_index(std::int64_t i, std::int64_t k, std::int64_t depth) {
  return i / kTileRows * kTileRows * depth + k * kTileRows + i % kTileRows;
}
inline std::int64_t b_index(std::int64_t k, std::int64_t j, std::int64_t depth) {
  return j / kTileColumns * kTileColumns * depth + k * kTileColumns + j % kTileColumns;
}

// One panel of packed A (the panel of rows i..i + kTileRows − 1 starts at a_index(i, 0, depth)) from
// `count` ≤ kTileRows rows of a row-major matrix, `ld` floats apart, `depth` long; rows past `count` are
// zero.
void pack_a_panel(const float* rows, std::int64_t ld, std::int64_t count, std::int64_t depth, float* panel);

// C = A · B + beta · C for row-major C [M, N] with leading dimension ldc, from packed A [M, K] and B [K, N];
// beta = 0 never reads C. Runs on the calling thread.
void gemm(std::int64_t M, std::int64_t N, std::int64_t K, const float* a, const float* b, float beta,
          float* c, std::int64_t ldc);

}  // namespace dscope::kernels::cpu::packed
