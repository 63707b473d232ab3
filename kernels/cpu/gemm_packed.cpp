// Our packed, register-blocked GEMM (see kernels/gemm.h), in the blocking scheme of Goto and van de Geijn
// ("Anatomy of high-performance matrix multiplication", 2008), written once for AVX-512 and for AVX2 + FMA
// through cpu/float_vector.h.
//
// Note [micro-kernel]: the innermost routine computes one tile of kTileRows rows × kTileColumns columns of
// C (cpu/gemm_packed.h), held in registers for the whole depth of the product, two vectors per row. At each
// step k it loads one row of the tile's B (two vectors), broadcasts each of the kTileRows values of A in
// turn and issues 2 · kTileRows fused multiply-adds. A core retires two FMAs a cycle with a latency of
// four, so at least eight independent accumulators are needed to keep both pipes full:
//   - AVX2 (16 registers of 8 floats): 6 rows × 16 columns, 12 accumulators + 2 + 1 = 15 registers;
//   - AVX-512 (32 registers of 16 floats): 8 rows × 32 columns, 16 accumulators. A larger tile fits (8 × 48,
//     or 12 × 32), but in cache both ran at the same 155-167 GFLOP/s on one core of this Xeon (about 90% of
//     its FMA peak), and the smaller one pads less: conv2d's products have 16, 32, 64, ... rows (filters)
//     and 128, 256, ... columns (Winograd tiles), which panels of 12 rows or 48 columns would pad by up to
//     a third.
// Its operands are packed beforehand so that it reads both at unit stride:
//   - A in panels of kTileRows rows: panel[k·kTileRows + i] = A(row i of the panel, k);
//   - B in panels of kTileColumns columns: panel[k·kTileColumns + j] = B(k, column j of the panel).
// A panel past the edge of the matrix is padded with zeros, so the kernel always computes a whole tile, and
// only its valid part is written to C. Kernels that can write an operand in this layout to begin with call
// packed::gemm and skip the copies (cpu/conv2d_winograd.cpp).
//
// Note [cache blocking]: the loops around the kernel cut the product so that each operand stays in the
// level of cache that its reuse needs:
//   - kDepthBlock = 256 steps of k: one B panel (256 × 16 or 256 × 32 floats, 16 or 32 KiB) stays in L1
//     (32 KiB on Zen 3, 48 KiB on Intel's AVX-512 cores) while the kernel runs down every A panel of the
//     row block;
//   - kRowBlock rows: the packed A block (144 or 512 rows × 256 floats, 144 or 512 KiB) stays in L2
//     (512 KiB or 2 MiB);
//   - kColumnBlock columns: the packed B block (3.75 MiB) stays in L3.
// Successive depth blocks accumulate into C: the first applies beta, the rest add. (A product whose rows
// lie 4 KiB apart, such as 1024³, runs slower than it should: a tile's eight rows of C then share one set
// of the 12-way L1. conv2d's products have other strides.)
//
// Note [threads]: outside a parallel region a large product is cut into one contiguous share of C per
// thread, along N when it has more column panels than M has row panels, else along M; each thread runs
// the whole serial algorithm on its share with its own packing buffers. Every element of C is then summed
// in the same order whatever the number of threads, so the result does not depend on it. Inside a parallel
// region (conv2d runs one GEMM per thread) the product runs on the calling thread.
//
// Note [where it stands]: on Zen 3 (AVX2) it matched or beat Eigen's GEMM at 1024³ and on a wide conv-like
// product (64 × 32768 × 576), but on the small products of a ResNet-8's convolutions (16 to 64 filters) it
// ran at 0.6-0.95× Eigen on one core. Two losses: where M is small (the forward and the weight gradient,
// M = filters) each packed value of B feeds only M multiply-adds, so copying the operand costs about as much
// as multiplying it; where the depth is short (the input gradient, depth = filters) a tile's few steps do
// not amortise reading and writing it. On the AVX-512 Xeon, whole ResNet-8 and ResNet-18 steps ran within
// the noise under either GEMM (8 alternating runs, paired ratios 0.98-1.03). So kernels::cpu::gemm keeps
// Eigen's; the Winograd forward, whose operands need no copy, runs on packed::gemm.
#include "kernels/cpu/gemm_packed.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/gemm.h"

namespace dscope::kernels::cpu {
namespace {

using packed::kTileColumns;
using packed::kTileRows;

// Note [cache blocking].
constexpr std::int64_t kDepthBlock = 256, kRowBlock = kTileRows == 8 ? 512 : 144, kColumnBlock = 3840;
static_assert(kRowBlock % kTileRows == 0 && kColumnBlock % kTileColumns == 0);

// Below about a million multiply-adds a product runs on one thread: waking a team costs more.
constexpr std::int64_t kMinParallelMultiplyAdds = std::int64_t{1} << 20;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

#if DSCOPE_FLOAT_VECTOR
// Transposes the 8 × 8 block held in rows[0..7] in place: afterwards rows[k] holds column k.
void transpose8x8(__m256 rows[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(rows[0], rows[1]), t1 = _mm256_unpackhi_ps(rows[0], rows[1]);
  const __m256 t2 = _mm256_unpacklo_ps(rows[2], rows[3]), t3 = _mm256_unpackhi_ps(rows[2], rows[3]);
  const __m256 t4 = _mm256_unpacklo_ps(rows[4], rows[5]), t5 = _mm256_unpackhi_ps(rows[4], rows[5]);
  const __m256 t6 = _mm256_unpacklo_ps(rows[6], rows[7]), t7 = _mm256_unpackhi_ps(rows[6], rows[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  rows[0] = _mm256_permute2f128_ps(u0, u4, 0x20), rows[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  rows[2] = _mm256_permute2f128_ps(u2, u6, 0x20), rows[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  rows[4] = _mm256_permute2f128_ps(u0, u4, 0x31), rows[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  rows[6] = _mm256_permute2f128_ps(u2, u6, 0x31), rows[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}
#endif

// Copies `count` ≤ width values of each of `width` stored rows, along the rows' own direction, into a panel
// whose step k holds one value of every row: panel[k · width + r] = rows[r][k], for k < depth, zero for
// rows past `count`. This is the packing of an operand stored across the panel (A as [M, K], B as [N, K]);
// with vectors, whole blocks of 8 × 8 are transposed in registers.
void pack_across(const float* source, std::int64_t ld, std::int64_t count, std::int64_t depth,
                 std::int64_t width, float* panel) {
  std::int64_t k = 0;
#if DSCOPE_FLOAT_VECTOR
  if (count == width) {
    for (; k + 8 <= depth; k += 8)
      for (std::int64_t r0 = 0; r0 < width; r0 += 8) {
        const std::int64_t block_rows = std::min<std::int64_t>(8, width - r0);
        __m256 rows[8];
        for (std::int64_t r = 0; r < 8; ++r)
          rows[r] = r < block_rows ? _mm256_loadu_ps(source + (r0 + r) * ld + k) : _mm256_setzero_ps();
        transpose8x8(rows);
        // A panel of 6 rows (AVX2's A) ends in a block of 6: only its first lanes are stored.
        const __m256i stored = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(block_rows)),
                                                  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (std::int64_t step = 0; step < 8; ++step)
          _mm256_maskstore_ps(panel + (k + step) * width + r0, stored, rows[step]);
      }
  }
#endif
  for (; k < depth; ++k)
    for (std::int64_t r = 0; r < width; ++r)
      panel[k * width + r] = r < count ? source[r * ld + k] : 0.0f;
}

// Copies `count` ≤ width consecutive values from each of `depth` stored rows into a panel: panel[k · width +
// j] = source[k · ld + j], zero for j past `count`. This is the packing of an operand stored along the panel
// (A as [K, M], B as [K, N]).
void pack_along(const float* source, std::int64_t ld, std::int64_t count, std::int64_t depth,
                std::int64_t width, float* panel) {
  for (std::int64_t k = 0; k < depth; ++k) {
    const float* row = source + k * ld;
    float* out = panel + k * width;
#if DSCOPE_FLOAT_VECTOR
    if (count == width && width % simd::kLanes == 0) {
      for (std::int64_t j = 0; j < width; j += simd::kLanes)
        simd::store(out + j, simd::load(row + j));
      continue;
    }
#endif
    for (std::int64_t j = 0; j < width; ++j)
      out[j] = j < count ? row[j] : 0.0f;
  }
}

// Packs lines [first, first + count) × depth [k0, k0 + depth) of an operand into panels of `width` lines
// (Note [micro-kernel]), zero-padding the last panel. A line is a row of op(A) or a column of op(B); it is a
// stored row when `lines_stored_as_rows` (A as [M, K], B as [N, K]), else a stored column.
void pack_panels(const float* data, std::int64_t ld, bool lines_stored_as_rows, std::int64_t first,
                 std::int64_t count, std::int64_t k0, std::int64_t depth, std::int64_t width, float* packed) {
  for (std::int64_t line = 0; line < count; line += width) {
    const std::int64_t valid = std::min(width, count - line);
    float* panel = packed + line * depth;
    if (lines_stored_as_rows) {
      pack_across(data + (first + line) * ld + k0, ld, valid, depth, width, panel);
    } else {
      pack_along(data + k0 * ld + first + line, ld, valid, depth, width, panel);
    }
  }
}

// Rows [row0, row0 + rows) of op(A) and columns [column0, column0 + columns) of op(B), over depth
// [k0, k0 + depth), in their panels.
void pack_a(const GemmGeometry& g, const float* a, std::int64_t row0, std::int64_t rows, std::int64_t k0,
            std::int64_t depth, float* packed) {
  pack_panels(a, g.lda, !g.transpose_a, row0, rows, k0, depth, kTileRows, packed);
}

void pack_b(const GemmGeometry& g, const float* b, std::int64_t k0, std::int64_t depth, std::int64_t column0,
            std::int64_t columns, float* packed) {
  pack_panels(b, g.ldb, g.transpose_b, column0, columns, k0, depth, kTileColumns, packed);
}

// The valid part of a tile held in `tile` (kTileRows × kTileColumns, row-major) into C: C = alpha · tile +
// beta · C; beta = 0 never reads C.
void write_tile_part(const float* tile, float alpha, float beta, float* c, std::int64_t ldc,
                     std::int64_t rows, std::int64_t columns) {
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < columns; ++j) {
      float& out = c[i * ldc + j];
      out = alpha * tile[i * kTileColumns + j] + (beta != 0.0f ? beta * out : 0.0f);
    }
}

#if DSCOPE_FLOAT_VECTOR
// One tile: C[rows, columns] = alpha · Apanel · Bpanel + beta · C, for rows ≤ kTileRows and columns ≤
// kTileColumns (Note [micro-kernel]). beta = 0 never reads C.
void micro_kernel(std::int64_t depth, const float* a_panel, const float* b_panel, float alpha, float beta,
                  float* c, std::int64_t ldc, std::int64_t rows, std::int64_t columns) {
  using simd::Floats;
  constexpr std::int64_t kVectors = kTileColumns / simd::kLanes;
  // C's rows are far apart in memory and each is read or written only here: start fetching them now, so
  // that they arrive while the sums are computed.
  for (std::int64_t i = 0; i < rows; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kTileColumns - 1), _MM_HINT_T0);
  }
  Floats sum[kTileRows][kVectors];
#pragma GCC unroll 8
  for (std::int64_t i = 0; i < kTileRows; ++i)
#pragma GCC unroll 2
    for (std::int64_t v = 0; v < kVectors; ++v)
      sum[i][v] = simd::splat(0.0f);
  for (std::int64_t k = 0; k < depth; ++k) {
    // Each loaded B vector feeds kTileRows FMAs: kept in a register, not reloaded by each
    // (simd::in_register).
    Floats b[kVectors];
#pragma GCC unroll 2
    for (std::int64_t v = 0; v < kVectors; ++v)
      b[v] = simd::in_register(simd::load(b_panel + v * simd::kLanes));
#pragma GCC unroll 8
    for (std::int64_t i = 0; i < kTileRows; ++i) {
      const Floats a_value = simd::splat(a_panel[i]);
#pragma GCC unroll 2
      for (std::int64_t v = 0; v < kVectors; ++v)
        sum[i][v] = simd::multiply_add(a_value, b[v], sum[i][v]);
    }
    a_panel += kTileRows;
    b_panel += kTileColumns;
  }

  const Floats alpha_v = simd::splat(alpha), beta_v = simd::splat(beta);
  if (rows == kTileRows && columns == kTileColumns) {
#pragma GCC unroll 8
    for (std::int64_t i = 0; i < kTileRows; ++i)
#pragma GCC unroll 2
      for (std::int64_t v = 0; v < kVectors; ++v) {
        float* out = c + i * ldc + v * simd::kLanes;
        const Floats scaled = simd::multiply(alpha_v, sum[i][v]);
        simd::store(out, beta != 0.0f ? simd::multiply_add(beta_v, simd::load(out), scaled) : scaled);
      }
    return;
  }
  // A tile at the edge of C: spill the sums and write only the valid part.
  float tile[kTileRows * kTileColumns];
  for (std::int64_t i = 0; i < kTileRows; ++i)
    for (std::int64_t v = 0; v < kVectors; ++v)
      simd::store(tile + i * kTileColumns + v * simd::kLanes, sum[i][v]);
  write_tile_part(tile, alpha, beta, c, ldc, rows, columns);
}
#else
// The same tile in plain C++, for processors without AVX2 + FMA: correct, and as fast as the compiler makes
// it.
void micro_kernel(std::int64_t depth, const float* a_panel, const float* b_panel, float alpha, float beta,
                  float* c, std::int64_t ldc, std::int64_t rows, std::int64_t columns) {
  float tile[kTileRows * kTileColumns] = {};
  for (std::int64_t k = 0; k < depth; ++k, a_panel += kTileRows, b_panel += kTileColumns)
    for (std::int64_t i = 0; i < kTileRows; ++i)
      for (std::int64_t j = 0; j < kTileColumns; ++j)
        tile[i * kTileColumns + j] += a_panel[i] * b_panel[j];
  write_tile_part(tile, alpha, beta, c, ldc, rows, columns);
}
#endif

// C[rows, columns] = alpha · A · B + beta · C over `depth` steps, from A in panels of kTileRows rows that
// start a_panel_stride floats apart and B in panels of kTileColumns columns b_panel_stride apart: every B
// panel meets every A panel while it stays in L1 (Note [cache blocking]).
void multiply_panels(std::int64_t rows, std::int64_t columns, std::int64_t depth, const float* a,
                     std::int64_t a_panel_stride, const float* b, std::int64_t b_panel_stride, float alpha,
                     float beta, float* c, std::int64_t ldc) {
  for (std::int64_t j = 0; j < columns; j += kTileColumns)
    for (std::int64_t i = 0; i < rows; i += kTileRows)
      micro_kernel(depth, a + i / kTileRows * a_panel_stride, b + j / kTileColumns * b_panel_stride, alpha,
                   beta, c + i * ldc + j, ldc, std::min(kTileRows, rows - i),
                   std::min(kTileColumns, columns - j));
}

// C = beta · C, the whole product when there is no depth; beta = 0 clears C without reading it.
void scale(std::int64_t M, std::int64_t N, float beta, float* c, std::int64_t ldc) {
  for (std::int64_t i = 0; i < M; ++i)
    for (std::int64_t j = 0; j < N; ++j) {
      float& out = c[i * ldc + j];
      out = beta == 0.0f ? 0.0f : beta * out;
    }
}

// Packing buffers, one pair per thread, kept between calls so that a product allocates (and the kernel
// faults in fresh pages) only the first time.
struct PackingBuffers {
  std::vector<float> a, b;
};

PackingBuffers& thread_buffers() {
  thread_local PackingBuffers buffers;
  return buffers;
}

// The whole product on the calling thread (Note [cache blocking]).
void gemm_serial(const GemmGeometry& g, float alpha, const float* a, const float* b, float beta, float* c) {
  if (g.K == 0) return scale(g.M, g.N, beta, c, g.ldc);
  PackingBuffers& buffers = thread_buffers();
  const std::int64_t depth_block = std::min(kDepthBlock, g.K);
  const std::int64_t row_block = std::min(kRowBlock, ceil_div(g.M, kTileRows) * kTileRows);
  const std::int64_t column_block = std::min(kColumnBlock, ceil_div(g.N, kTileColumns) * kTileColumns);
  buffers.a.resize(static_cast<std::size_t>(row_block * depth_block));
  buffers.b.resize(static_cast<std::size_t>(column_block * depth_block));

  for (std::int64_t column0 = 0; column0 < g.N; column0 += kColumnBlock) {
    const std::int64_t columns = std::min(kColumnBlock, g.N - column0);
    for (std::int64_t k0 = 0; k0 < g.K; k0 += kDepthBlock) {
      const std::int64_t depth = std::min(kDepthBlock, g.K - k0);
      const float block_beta = k0 == 0 ? beta : 1.0f;
      pack_b(g, b, k0, depth, column0, columns, buffers.b.data());
      for (std::int64_t row0 = 0; row0 < g.M; row0 += kRowBlock) {
        const std::int64_t rows = std::min(kRowBlock, g.M - row0);
        pack_a(g, a, row0, rows, k0, depth, buffers.a.data());
        multiply_panels(rows, columns, depth, buffers.a.data(), kTileRows * depth, buffers.b.data(),
                        kTileColumns * depth, alpha, block_beta, c + row0 * g.ldc + column0, g.ldc);
      }
    }
  }
}

// The part of the product that writes rows [row0, row1) and columns [column0, column1) of C.
void gemm_share(const GemmGeometry& g, float alpha, const float* a, const float* b, float beta, float* c,
                std::int64_t row0, std::int64_t row1, std::int64_t column0, std::int64_t column1) {
  GemmGeometry share = g;
  share.M = row1 - row0, share.N = column1 - column0;
  const float* a_share = a + (g.transpose_a ? row0 : row0 * g.lda);
  const float* b_share = b + (g.transpose_b ? column0 * g.ldb : column0);
  gemm_serial(share, alpha, a_share, b_share, beta, c + row0 * g.ldc + column0);
}

}  // namespace

namespace packed {

void pack_a_panel(const float* rows, std::int64_t ld, std::int64_t count, std::int64_t depth, float* panel) {
  pack_across(rows, ld, count, depth, kTileRows, panel);
}

void gemm(std::int64_t M, std::int64_t N, std::int64_t K, const float* a, const float* b, float beta,
          float* c, std::int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) return scale(M, N, beta, c, ldc);
  // Panels span the whole depth, so a depth block of one is the next kDepthBlock steps of each.
  for (std::int64_t k0 = 0; k0 < K; k0 += kDepthBlock)
    multiply_panels(M, N, std::min(kDepthBlock, K - k0), a + k0 * kTileRows, kTileRows * K,
                    b + k0 * kTileColumns, kTileColumns * K, 1.0f, k0 == 0 ? beta : 1.0f, c, ldc);
}

}  // namespace packed

void gemm_packed(const GemmGeometry& g, float alpha, const float* a, const float* b, float beta, float* c) {
  if (g.M == 0 || g.N == 0) return;
  const std::int64_t row_panels = ceil_div(g.M, kTileRows), column_panels = ceil_div(g.N, kTileColumns);
  const bool along_columns = column_panels >= row_panels;
  const std::int64_t panels = along_columns ? column_panels : row_panels;
  const int threads = omp_in_parallel() || g.M * g.N * g.K < kMinParallelMultiplyAdds
                          ? 1
                          : static_cast<int>(std::min<std::int64_t>(omp_get_max_threads(), panels));
  if (threads <= 1) {
    gemm_serial(g, alpha, a, b, beta, c);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    // Thread t takes panels [t·panels/threads, (t+1)·panels/threads) (Note [threads]).
    const std::int64_t t = omp_get_thread_num(), count = omp_get_num_threads();
    const std::int64_t first = t * panels / count, last = (t + 1) * panels / count;
    if (along_columns) {
      gemm_share(g, alpha, a, b, beta, c, 0, g.M, first * kTileColumns, std::min(g.N, last * kTileColumns));
    } else {
      gemm_share(g, alpha, a, b, beta, c, first * kTileRows, std::min(g.M, last * kTileRows), 0, g.N);
    }
  }
}

}  // namespace dscope::kernels::cpu
