// Our packed, register-blocked GEMM for AVX2 + FMA (see kernels/gemm.h), in the blocking scheme of
// Goto and van de Geijn ("Anatomy of high-performance matrix multiplication", 2008).
//
// Note [micro-kernel]: the innermost routine computes one tile of 6 rows × 16 columns of C, held in twelve
// 8-float registers for the whole depth of the product. At each step k it loads 16 values of B (two
// registers), broadcasts each of the 6 values of A in turn and issues 12 fused multiply-adds. Zen 3 retires
// two 8-wide FMAs a cycle with a latency of four, so at least eight independent accumulators are needed to
// keep both pipes full; twelve leave room, and 12 accumulators + 2 B values + 1 broadcast is 15 of the 16
// registers. Its operands are packed beforehand so that it reads both at unit stride:
//   - A in panels of 6 rows: panel[k·6 + i] = A(row i of the panel, k);
//   - B in panels of 16 columns: panel[k·16 + j] = B(k, column j of the panel).
// A panel past the edge of the matrix is padded with zeros, so the kernel always computes a whole tile, and
// only its valid part is written to C.
//
// Note [cache blocking]: the loops around the kernel cut the product so that each operand stays in the
// level of cache that its reuse needs (sizes for Zen 3: 32 KiB L1d and 512 KiB L2 per core, shared L3):
//   - kDepthBlock = 256 steps of k: one B panel (256 × 16 floats, 16 KiB) stays in L1 while the kernel runs
//     down every A panel of the row block;
//   - kRowBlock = 144 rows: the packed A block (144 × 256 floats, 144 KiB) stays in L2;
//   - kColumnBlock = 4080 columns: the packed B block (256 × 4080 floats, 4 MiB) stays in L3.
// Successive depth blocks accumulate into C: the first applies beta, the rest add.
//
// Note [threads]: outside a parallel region a large product is cut into one contiguous share of C per
// thread, along N when it has more 16-column panels than M has 6-row panels, else along M; each thread runs
// the whole serial algorithm on its share with its own packing buffers. Every element of C is then summed
// in the same order whatever the number of threads, so the result does not depend on it. Inside a parallel
// region (conv2d runs one GEMM per thread) the product runs on the calling thread.
//
// Note [where it stands]: at 1024³ and on a wide conv-like product (64 × 32768 × 576) it matches or beats
// Eigen's GEMM; on the small products of a ResNet-8's convolutions (16 to 64 filters) it runs at 0.6-0.95×
// Eigen on one core, so kernels::cpu::gemm keeps Eigen's as the default. Two losses: where M is small (the
// forward and the weight gradient, M = filters) each packed value of B feeds only M multiply-adds, so copying
// the operand costs about as much as multiplying it; where the depth is short (the input gradient, depth =
// filters) a tile's few steps do not amortise reading and writing it. The way past the first is to have
// conv2d write its im2col columns in the packed layout to begin with, which only a GEMM of our own allows.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/gemm.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define DSCOPE_PACKED_GEMM 1
#else
#define DSCOPE_PACKED_GEMM 0
#endif

namespace dscope::kernels::cpu {

#if DSCOPE_PACKED_GEMM
namespace {

constexpr std::int64_t kTileRows = 6, kTileColumns = 16;
constexpr std::int64_t kDepthBlock = 256, kRowBlock = 144, kColumnBlock = 4080;
static_assert(kRowBlock % kTileRows == 0 && kColumnBlock % kTileColumns == 0);

// Below about a million multiply-adds a product runs on one thread: waking a team costs more.
constexpr std::int64_t kMinParallelMultiplyAdds = std::int64_t{1} << 20;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

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

// Copies `count` ≤ width values of each of `width` stored rows, along the rows' own direction, into a panel
// whose step k holds one value of every row: panel[k · width + r] = rows[r][k], for k < depth, zero for
// rows past `count`. This is the packing of an operand stored across the panel (A as [M, K], B as [N, K]);
// whole blocks of 8 × 8 are transposed in registers.
void pack_across(const float* source, std::int64_t ld, std::int64_t count, std::int64_t depth,
                 std::int64_t width, float* panel) {
  std::int64_t k = 0;
  if (count == width) {
    for (; k + 8 <= depth; k += 8)
      for (std::int64_t r0 = 0; r0 < width; r0 += 8) {
        const std::int64_t block_rows = std::min<std::int64_t>(8, width - r0);
        __m256 rows[8];
        for (std::int64_t r = 0; r < 8; ++r)
          rows[r] = r < block_rows ? _mm256_loadu_ps(source + (r0 + r) * ld + k) : _mm256_setzero_ps();
        transpose8x8(rows);
        for (std::int64_t step = 0; step < 8; ++step) {
          float* out = panel + (k + step) * width + r0;
          if (block_rows == 8) {
            _mm256_storeu_ps(out, rows[step]);
          } else {
            // The 6-row panel of A: four values and then two.
            _mm_storeu_ps(out, _mm256_castps256_ps128(rows[step]));
            _mm_storel_pi(reinterpret_cast<__m64*>(out + 4), _mm256_extractf128_ps(rows[step], 1));
          }
        }
      }
  }
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
    if (count == width && width == kTileColumns) {
      _mm256_storeu_ps(out, _mm256_loadu_ps(row));
      _mm256_storeu_ps(out + 8, _mm256_loadu_ps(row + 8));
    } else {
      for (std::int64_t j = 0; j < width; ++j)
        out[j] = j < count ? row[j] : 0.0f;
    }
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

// C[row] = alpha · sum + beta · C[row] for 16 columns of one row; beta = 0 never reads C.
void update_row(float* row, __m256 low, __m256 high, __m256 alpha, __m256 beta, bool accumulate) {
  low = _mm256_mul_ps(alpha, low), high = _mm256_mul_ps(alpha, high);
  if (accumulate) {
    low = _mm256_fmadd_ps(beta, _mm256_loadu_ps(row), low);
    high = _mm256_fmadd_ps(beta, _mm256_loadu_ps(row + 8), high);
  }
  _mm256_storeu_ps(row, low);
  _mm256_storeu_ps(row + 8, high);
}

// One tile: C[rows, columns] = alpha · Apanel · Bpanel + beta · C, for rows ≤ 6 and columns ≤ 16
// (Note [micro-kernel]). beta = 0 never reads C. The twelve sums are named variables, not an array: GCC
// keeps an array of vectors in memory as well and stores it back at every step of k, which halves the
// kernel's speed.
void micro_kernel(std::int64_t depth, const float* a_panel, const float* b_panel, float alpha, float beta,
                  float* c, std::int64_t ldc, std::int64_t rows, std::int64_t columns) {
  // C's rows are far apart in memory and each is read or written only here: start fetching them now, so
  // that they arrive while the sums are computed.
  for (std::int64_t i = 0; i < rows; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kTileColumns - 1), _MM_HINT_T0);
  }
  __m256 s0l = _mm256_setzero_ps(), s0h = s0l, s1l = s0l, s1h = s0l, s2l = s0l, s2h = s0l;
  __m256 s3l = s0l, s3h = s0l, s4l = s0l, s4h = s0l, s5l = s0l, s5h = s0l;
  for (std::int64_t k = 0; k < depth; ++k) {
    const __m256 b_low = _mm256_loadu_ps(b_panel), b_high = _mm256_loadu_ps(b_panel + 8);
    __m256 a_value = _mm256_broadcast_ss(a_panel);
    s0l = _mm256_fmadd_ps(a_value, b_low, s0l), s0h = _mm256_fmadd_ps(a_value, b_high, s0h);
    a_value = _mm256_broadcast_ss(a_panel + 1);
    s1l = _mm256_fmadd_ps(a_value, b_low, s1l), s1h = _mm256_fmadd_ps(a_value, b_high, s1h);
    a_value = _mm256_broadcast_ss(a_panel + 2);
    s2l = _mm256_fmadd_ps(a_value, b_low, s2l), s2h = _mm256_fmadd_ps(a_value, b_high, s2h);
    a_value = _mm256_broadcast_ss(a_panel + 3);
    s3l = _mm256_fmadd_ps(a_value, b_low, s3l), s3h = _mm256_fmadd_ps(a_value, b_high, s3h);
    a_value = _mm256_broadcast_ss(a_panel + 4);
    s4l = _mm256_fmadd_ps(a_value, b_low, s4l), s4h = _mm256_fmadd_ps(a_value, b_high, s4h);
    a_value = _mm256_broadcast_ss(a_panel + 5);
    s5l = _mm256_fmadd_ps(a_value, b_low, s5l), s5h = _mm256_fmadd_ps(a_value, b_high, s5h);
    a_panel += kTileRows;
    b_panel += kTileColumns;
  }

  const __m256 alpha_v = _mm256_set1_ps(alpha), beta_v = _mm256_set1_ps(beta);
  const bool accumulate = beta != 0.0f;
  if (rows == kTileRows && columns == kTileColumns) {
    update_row(c, s0l, s0h, alpha_v, beta_v, accumulate);
    update_row(c + ldc, s1l, s1h, alpha_v, beta_v, accumulate);
    update_row(c + 2 * ldc, s2l, s2h, alpha_v, beta_v, accumulate);
    update_row(c + 3 * ldc, s3l, s3h, alpha_v, beta_v, accumulate);
    update_row(c + 4 * ldc, s4l, s4h, alpha_v, beta_v, accumulate);
    update_row(c + 5 * ldc, s5l, s5h, alpha_v, beta_v, accumulate);
    return;
  }
  // A tile at the edge of C: spill the sums and write only the valid part.
  alignas(32) float tile[kTileRows * kTileColumns];
  const __m256 sums[2 * kTileRows] = {s0l, s0h, s1l, s1h, s2l, s2h, s3l, s3h, s4l, s4h, s5l, s5h};
  for (std::int64_t i = 0; i < 2 * kTileRows; ++i)
    _mm256_store_ps(tile + 8 * i, sums[i]);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < columns; ++j) {
      float& out = c[i * ldc + j];
      out = alpha * tile[i * kTileColumns + j] + (accumulate ? beta * out : 0.0f);
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
  if (g.K == 0) {
    // No depth: C = beta · C, and beta = 0 clears it without reading.
    for (std::int64_t i = 0; i < g.M; ++i)
      for (std::int64_t j = 0; j < g.N; ++j) {
        float& out = c[i * g.ldc + j];
        out = beta == 0.0f ? 0.0f : beta * out;
      }
    return;
  }
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
        for (std::int64_t j = 0; j < columns; j += kTileColumns)
          for (std::int64_t i = 0; i < rows; i += kTileRows)
            micro_kernel(depth, buffers.a.data() + i * depth, buffers.b.data() + j * depth, alpha, block_beta,
                         c + (row0 + i) * g.ldc + column0 + j, g.ldc, std::min(kTileRows, rows - i),
                         std::min(kTileColumns, columns - j));
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

bool has_packed_gemm() {
  return true;
}

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

#else  // no AVX2 + FMA: the Eigen GEMM serves every call (kernels/gemm.h)

bool has_packed_gemm() {
  return false;
}

void gemm_packed(const GemmGeometry& g, float alpha, const float* a, const float* b, float beta, float* c) {
  gemm_eigen(g, alpha, a, b, beta, c);
}

#endif

}  // namespace dscope::kernels::cpu
