// conv2d by Winograd's minimal filtering on the CPU (see kernels/conv2d.h): F(4×4, 3×3) for the forward, the
// input gradient and the weight gradient, except the weight gradient of the widest layers, F(2×2, 3×3).
//
// Note [Winograd F(2×2, 3×3)]: a 2×2 block of outputs of a 3×3 filter g reads a 4×4 input tile d, and
//   y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A          (⊙: element-wise product of two 4×4 matrices)
// with the constant matrices G, B and A below (the forward's filter, input and output transforms, of which
// the weight gradient uses the input's and the adjoints of the other two). That is 16
// multiplications per tile and channel instead of 4·9 = 36, so 2.25 times less arithmetic; the transforms
// need only additions (and halvings, in G). Summed over the input channels, the 16 element-wise products
// of one tile become 16 independent matrix products over all tiles of a block:
//   M[ξ] (K × tiles) = U[ξ] (K × C) · V[ξ] (C × tiles),   ξ = 0..15,
// where U = G g Gᵀ (the transformed filters, once per call) and V = Bᵀ d B (the transformed tiles). They run
// with the tiles as the long dimension. Rounding differs from direct summation only by
// the few extra additions of the transforms (about 1e-6 relative here; the tests allow 1e-4).
//
// Note [Winograd F(4×4, 3×3)]: the same with 4×4 blocks of outputs from 6×6 input tiles (the interpolation
// points 0, ±1, ±2 and ∞ of Lavin and Gray, "Fast algorithms for convolutional neural networks", 2016):
// 36 multiplications per tile and channel instead of 16·9 = 144, 4 times less arithmetic, so 36 GEMMs over a
// quarter of the tiles do 1.78 times less work than F(2×2)'s 16. The price is rounding: the transforms'
// coefficients (4, 5, 8, 1/24) make the sums round to about 1.5e-5 to 4e-5 of the outputs' spread on the
// unit normal data of the tests (which allow 1e-4 of it), where F(2×2) and direct sums stay within 1e-4
// absolute (4e-6 of the spread at 64 channels); FP32 training tolerates far more (BF16 rounds at 4e-3).
// Medians of 3 alternating runs of bench_conv2d, forward / forward + backward in ms at batch 32, F(2×2) →
// F(4×4): 64 channels on 64×64 43 → 37 / 162 → 110, 128 on 32×32 32 → 23 / 116 → 90, 256 on 16×16 32 → 20 /
// 95 → 66; but 512 on 8×8 33 → 46 / 105 → 114, where each of the 36 GEMMs of a block repacked its 512 × 512
// filter matrix. Since the filters are packed once per call (Note [tile layout]), F(4×4) serves 512 channels
// too: 10 alternating runs, paired ratios F(4×4) / F(2×2) 0.90 forward, 0.95 forward + backward.
//
// Note [tile layout]: tile t of a block numbers (image, tile row, tile column) in row-major order; V is
// stored [ξ][c][t] and M [ξ][k][t]. The forward's GEMMs M[ξ] = U[ξ] · V[ξ] run on our packed GEMM
// (cpu/gemm_packed.h) with no copy of either operand: the filter transform writes each U[ξ] as a packed A,
// once per call, and the input transform each V[ξ] as a packed B (Layout::packed), where successive tiles
// still lie side by side. (Eigen's GEMM, which the weight gradient still calls, packs both operands on
// every call: the 1 MiB U[ξ] of a 512-channel layer 64 times per forward.) A transform works on the same
// element of 16 (or 36) planes, so it runs over the tiles a vector at a time (16 with AVX-512, in the
// vector extension of GCC and Clang; scalar code where there is none), and the transforms are templates so
// that the same text serves the remainder one tile at a time. A tile's input rows are first copied, zero
// padded, into a row buffer and split into planes of raw tiles, so the arithmetic loop itself reads only
// unit-stride planes (Note [phases]).
//
// Note [input gradient by Winograd]: with stride 1, grad_x is the correlation of grad_y with every filter
// turned by 180° and its two channel axes swapped, padded by 2 − pad; it runs through the same forward.
//
// Note [weight gradient by Winograd]: per tile the forward is y = Aᵀ (U ⊙ V) A, so the gradient of U is the
// sum over tiles of (A dy Aᵀ) ⊙ V: again 16 (or 36) GEMMs, now with the tiles as their depth,
//   grad_U[ξ] (K × C) += M[ξ] (K × tiles) · V[ξ]ᵀ (tiles × C),   M = A dy Aᵀ,
// and since U = G g Gᵀ, grad_w = Gᵀ grad_U G, applied once at the end. The adjoint transforms (A·, Gᵀ·) are
// the transposes of the forward's. F(4×4) does 1.78 times less GEMM work than F(2×2) here too, but every
// thread sums into a grad_U of its own, 36 · K · C floats (38 MiB per thread for 512 channels, against
// 16 MiB), fresh pages each call, then added up: bench_conv2d, 8 alternating runs, medians of the paired
// ratios F(4×4) / F(2×2): 64 channels on 64×64 0.69, 128 on 32×32 0.71, 256 on 16×16 0.93, 64 on 16×16
// (batch 64) 0.81, but 512 on 8×8 1.35, where the few tiles (2 × 2 per image) leave the GEMMs little work
// to set against the partial sums. So F(2×2) keeps the layers beyond kLargestF4WeightFilters.
//
// Blocks and threads work as in cpu/conv2d.cpp (Note [threads]): a block is whole images or tile rows of
// one image; the forward hands blocks out one at a time (the input gradient, being a forward, too), and the
// weight gradient gives each thread a fixed share and sums one grad_U per thread.
#include <omp.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cpu/float_vector.h"
#include "kernels/cpu/gemm_packed.h"
#include "kernels/gemm.h"

namespace dscope::kernels::cpu {
namespace {

// As many floats as the widest register holds (cpu/float_vector.h: 16 with AVX-512, 8 with AVX2), in the
// vector extension of GCC and Clang, whose arithmetic operators work lane by lane.
#if DSCOPE_FLOAT_VECTOR
constexpr std::int64_t kLanes = simd::kLanes;
#else
constexpr std::int64_t kLanes = 4;  // SSE's 16 bytes: a wider vector type would be passed by another ABI
#endif
using Lanes = float __attribute__((vector_size(kLanes * sizeof(float))));

template <typename V>
V load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename V>
void store(float* p, const V& v) {
  std::memcpy(p, &v, sizeof v);
}

// p[0], p[stride], p[2·stride], ...: one value per lane.
template <typename V>
V gather(const float* p, std::int64_t stride) {
  if constexpr (sizeof(V) == sizeof(float)) {
    return *p;
  } else {
    V v;
    for (std::int64_t lane = 0; lane < kLanes; ++lane)
      v[lane] = p[lane * stride];
    return v;
  }
}

// p[0], p[stride], p[2·stride], ... = the lanes of v.
template <typename V>
void scatter(float* p, std::int64_t stride, const V& v) {
  if constexpr (sizeof(V) == sizeof(float)) {
    *p = v;
  } else {
    for (std::int64_t lane = 0; lane < kLanes; ++lane)
      p[lane * stride] = v[lane];
  }
}

// Calls body(i, Lanes{}) for i = 0, 8, 16, ... while eight items remain, then body(i, 0.0f) for each of the
// rest: the body reads the element type from its second argument.
template <typename Body>
void over_lanes(std::int64_t count, Body body) {
  std::int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes)
    body(i, Lanes{});
  for (; i < count; ++i)
    body(i, 0.0f);
}

// F(2×2, 3×3) (Note [Winograd F(2×2, 3×3)]), and below F(4×4, 3×3): the tilings as types, so that the same
// code serves both: kOutput × kOutput outputs per tile from kInput × kInput inputs, kPoints = kInput²
// transformed values, and the transforms of one tile. F(2×2), which only the weight gradient runs, needs
// only the input transform and the adjoints of the other two; G and A are
//   G = [[1,0,0], [½,½,½], [½,−½,½], [0,0,1]],   Aᵀ = [[1,1,1,0], [0,1,−1,−1]].
struct TilingF2 {
  static constexpr std::int64_t kOutput = 2, kInput = 4, kPoints = 16;

  // v = Bᵀ d B, Bᵀ = [[1,0,−1,0], [0,1,1,0], [0,−1,1,0], [0,1,0,−1]]; d and v are 4×4, row-major.
  template <typename V>
  static void input(const V* d, V* v) {
    V e[16];  // Bᵀ d
    for (int j = 0; j < 4; ++j) {
      e[j] = d[j] - d[8 + j];
      e[4 + j] = d[4 + j] + d[8 + j];
      e[8 + j] = d[8 + j] - d[4 + j];
      e[12 + j] = d[4 + j] - d[12 + j];
    }
    for (int i = 0; i < 4; ++i) {
      v[4 * i] = e[4 * i] - e[4 * i + 2];
      v[4 * i + 1] = e[4 * i + 1] + e[4 * i + 2];
      v[4 * i + 2] = e[4 * i + 2] - e[4 * i + 1];
      v[4 * i + 3] = e[4 * i + 1] - e[4 * i + 3];
    }
  }

  // m = A dy Aᵀ, the adjoint of the output transform y = Aᵀ m A (Note [weight gradient by Winograd]); dy is
  // 2×2, m 4×4.
  template <typename V>
  static void output_adjoint(const V* dy, V* m) {
    V f[8];  // A dy, 4×2
    for (int j = 0; j < 2; ++j) {
      f[j] = dy[j];
      f[2 + j] = dy[j] + dy[2 + j];
      f[4 + j] = dy[j] - dy[2 + j];
      f[6 + j] = -dy[2 + j];
    }
    for (int i = 0; i < 4; ++i) {
      m[4 * i] = f[2 * i];
      m[4 * i + 1] = f[2 * i] + f[2 * i + 1];
      m[4 * i + 2] = f[2 * i] - f[2 * i + 1];
      m[4 * i + 3] = -f[2 * i + 1];
    }
  }

  // g = Gᵀ u G, the adjoint of the filter transform u = G g Gᵀ; u is 4×4, g 3×3.
  template <typename V>
  static void filter_adjoint(const V* u, V* g) {
    V t[12];  // Gᵀ u, 3×4
    for (int j = 0; j < 4; ++j) {
      t[j] = u[j] + 0.5f * (u[4 + j] + u[8 + j]);
      t[4 + j] = 0.5f * (u[4 + j] - u[8 + j]);
      t[8 + j] = 0.5f * (u[4 + j] + u[8 + j]) + u[12 + j];
    }
    for (int i = 0; i < 3; ++i) {
      g[3 * i] = t[4 * i] + 0.5f * (t[4 * i + 1] + t[4 * i + 2]);
      g[3 * i + 1] = 0.5f * (t[4 * i + 1] - t[4 * i + 2]);
      g[3 * i + 2] = 0.5f * (t[4 * i + 1] + t[4 * i + 2]) + t[4 * i + 3];
    }
  }
};

// ---- F(4×4, 3×3) (Note [Winograd F(4×4, 3×3)]) -----------------------------------------------------------
// The one-dimensional transforms, each read from `in` at stride `in_stride` and written to `out` at stride
// `out_stride`; the two-dimensional ones apply them to the columns and then to the rows.

// out = G g, G = [[¼,0,0], [−⅙,−⅙,−⅙], [−⅙,⅙,−⅙], [1/24,1/12,⅙], [1/24,−1/12,⅙], [0,0,1]]; g has 3 values.
template <typename V>
void filter_points_f4(const V* in, std::int64_t in_stride, V* out, std::int64_t out_stride) {
  const V g0 = in[0], g1 = in[in_stride], g2 = in[2 * in_stride];
  const V even = g0 + g2, quarter_even = (1.0f / 24.0f) * g0 + (1.0f / 6.0f) * g2;
  out[0] = 0.25f * g0;
  out[out_stride] = (-1.0f / 6.0f) * (even + g1);
  out[2 * out_stride] = (-1.0f / 6.0f) * (even - g1);
  out[3 * out_stride] = quarter_even + (1.0f / 12.0f) * g1;
  out[4 * out_stride] = quarter_even - (1.0f / 12.0f) * g1;
  out[5 * out_stride] = g2;
}

// out = Bᵀ d, Bᵀ = [[4,0,−5,0,1,0], [0,−4,−4,1,1,0], [0,4,−4,−1,1,0], [0,−2,−1,2,1,0], [0,2,−1,−2,1,0],
// [0,4,0,−5,0,1]]; d has 6 values.
template <typename V>
void input_points_f4(const V* in, std::int64_t in_stride, V* out, std::int64_t out_stride) {
  const V d0 = in[0], d1 = in[in_stride], d2 = in[2 * in_stride], d3 = in[3 * in_stride],
          d4 = in[4 * in_stride], d5 = in[5 * in_stride];
  const V a = d4 - 4.0f * d2, b = d3 - 4.0f * d1;  // rows 1 and 2: a ± b
  const V c = d4 - d2, e = 2.0f * (d3 - d1);       // rows 3 and 4: c ± e
  out[0] = 4.0f * d0 - 5.0f * d2 + d4;
  out[out_stride] = a + b;
  out[2 * out_stride] = a - b;
  out[3 * out_stride] = c + e;
  out[4 * out_stride] = c - e;
  out[5 * out_stride] = 4.0f * d1 - 5.0f * d3 + d5;
}

// out = Aᵀ m, Aᵀ = [[1,1,1,1,1,0], [0,1,−1,2,−2,0], [0,1,1,4,4,0], [0,1,−1,8,−8,1]]; m has 6 values.
template <typename V>
void output_points_f4(const V* in, std::int64_t in_stride, V* out, std::int64_t out_stride) {
  const V m0 = in[0], m1 = in[in_stride], m2 = in[2 * in_stride], m3 = in[3 * in_stride],
          m4 = in[4 * in_stride], m5 = in[5 * in_stride];
  const V sum12 = m1 + m2, difference12 = m1 - m2, sum34 = m3 + m4, difference34 = m3 - m4;
  out[0] = m0 + sum12 + sum34;
  out[out_stride] = difference12 + 2.0f * difference34;
  out[2 * out_stride] = sum12 + 4.0f * sum34;
  out[3 * out_stride] = difference12 + 8.0f * difference34 + m5;
}

// out = A dy, the adjoint of output_points_f4 (A is the transpose of its Aᵀ); dy has 4 values.
template <typename V>
void output_adjoint_points_f4(const V* in, std::int64_t in_stride, V* out, std::int64_t out_stride) {
  const V dy0 = in[0], dy1 = in[in_stride], dy2 = in[2 * in_stride], dy3 = in[3 * in_stride];
  const V even = dy0 + dy2, odd = dy1 + dy3;                         // rows 1 and 2: even ± odd
  const V even4 = dy0 + 4.0f * dy2, odd8 = 2.0f * dy1 + 8.0f * dy3;  // rows 3 and 4
  out[0] = dy0;
  out[out_stride] = even + odd;
  out[2 * out_stride] = even - odd;
  out[3 * out_stride] = even4 + odd8;
  out[4 * out_stride] = even4 - odd8;
  out[5 * out_stride] = dy3;
}

// out = Gᵀ u, the adjoint of filter_points_f4; u has 6 values.
template <typename V>
void filter_adjoint_points_f4(const V* in, std::int64_t in_stride, V* out, std::int64_t out_stride) {
  const V u0 = in[0], u1 = in[in_stride], u2 = in[2 * in_stride], u3 = in[3 * in_stride],
          u4 = in[4 * in_stride], u5 = in[5 * in_stride];
  const V sum12 = u1 + u2, sum34 = u3 + u4;
  out[0] = 0.25f * u0 - (1.0f / 6.0f) * sum12 + (1.0f / 24.0f) * sum34;
  out[out_stride] = (1.0f / 6.0f) * (u2 - u1) + (1.0f / 12.0f) * (u3 - u4);
  out[2 * out_stride] = (1.0f / 6.0f) * (sum34 - sum12) + u5;
}

// y = M x Mᵀ for a one-dimensional transform `Points` of In values into Out (M is Out × In): x is In × In and
// y Out × Out, both row-major; the columns of x first, then the rows of the result.
template <int In, int Out, typename V, void (*Points)(const V*, std::int64_t, V*, std::int64_t)>
void transform_both_axes(const V* x, V* y) {
  V columns[Out * In];  // M x, Out × In
  for (int j = 0; j < In; ++j)
    Points(x + j, In, columns + j, In);
  for (int i = 0; i < Out; ++i)
    Points(columns + In * i, 1, y + Out * i, 1);
}

struct TilingF4 {
  static constexpr std::int64_t kOutput = 4, kInput = 6, kPoints = 36;

  // u = G g Gᵀ: g is 3×3 and u 6×6.
  template <typename V>
  static void filter(const V* g, V* u) {
    transform_both_axes<3, 6, V, filter_points_f4<V>>(g, u);
  }

  // v = Bᵀ d B: d and v are 6×6.
  template <typename V>
  static void input(const V* d, V* v) {
    transform_both_axes<6, 6, V, input_points_f4<V>>(d, v);
  }

  // y = Aᵀ m A: m is 6×6 and y 4×4.
  template <typename V>
  static void output(const V* m, V* y) {
    transform_both_axes<6, 4, V, output_points_f4<V>>(m, y);
  }

  // m = A dy Aᵀ, the adjoint of output: dy is 4×4 and m 6×6 (Note [weight gradient by Winograd]).
  template <typename V>
  static void output_adjoint(const V* dy, V* m) {
    transform_both_axes<4, 6, V, output_adjoint_points_f4<V>>(dy, m);
  }

  // g = Gᵀ u G, the adjoint of filter: u is 6×6 and g 3×3.
  template <typename V>
  static void filter_adjoint(const V* u, V* g) {
    transform_both_axes<6, 3, V, filter_adjoint_points_f4<V>>(u, g);
  }
};

// The weight gradient runs F(4×4, 3×3) up to this many (input, output) channel pairs, F(2×2, 3×3) above
// (Note [weight gradient by Winograd]).
constexpr std::int64_t kLargestF4WeightFilters = 256 * 256;

// Filters to transform before a team of threads pays (each is about 60 operations).
constexpr std::int64_t kMinParallelFilters = 4096;

// U[ξ] = G g Gᵀ for the filter g of every (row, col), which starts at w + row·row_stride + col·col_stride
// and is turned by 180° when `turn` (Note [input gradient by Winograd]); each U[ξ] is a rows × cols matrix
// in the packed GEMM's layout of A (cpu/gemm_packed.h), packed::a_size(rows, cols) floats apart. A panel's
// rows at a time are transformed into a row-major buffer, vectors of successive columns, and then packed.
template <typename Tiling>
void transform_filters(const float* w, std::int64_t rows, std::int64_t cols, std::int64_t row_stride,
                       std::int64_t col_stride, bool turn, float* u) {
  constexpr std::int64_t kPanelRows = packed::kTileRows;
  const std::int64_t point_stride = packed::a_size(rows, cols);
#pragma omp parallel if (rows * cols >= kMinParallelFilters)
  {
    thread_local std::vector<float> panel;  // [kPoints][kPanelRows][cols]
    panel.resize(static_cast<std::size_t>(Tiling::kPoints * kPanelRows * cols));
#pragma omp for schedule(static)
    for (std::int64_t first_row = 0; first_row < rows; first_row += kPanelRows) {
      const std::int64_t count = std::min(kPanelRows, rows - first_row);
      for (std::int64_t r = 0; r < count; ++r)
        over_lanes(cols, [&](std::int64_t col, auto lanes) {
          using V = decltype(lanes);
          V g[9], t[Tiling::kPoints];
          for (int e = 0; e < 9; ++e)
            g[e] = gather<V>(w + (first_row + r) * row_stride + col * col_stride + (turn ? 8 - e : e),
                             col_stride);
          Tiling::filter(g, t);
          for (std::int64_t point = 0; point < Tiling::kPoints; ++point)
            store(panel.data() + (point * kPanelRows + r) * cols + col, t[point]);
        });
      for (std::int64_t point = 0; point < Tiling::kPoints; ++point)
        packed::pack_a_panel(panel.data() + point * kPanelRows * cols, cols, count, cols,
                             u + point * point_stride + packed::a_index(first_row, 0, cols));
    }
  }
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

// Whether to open a parallel region: as in cpu/conv2d.cpp (Note [small convolutions]), only for more than
// one block and about a million multiply-adds of direct convolution.
constexpr std::int64_t kMinParallelMultiplyAdds = std::int64_t{1} << 20;
bool use_threads(const Conv2dGeometry& g, std::int64_t blocks) {
  return blocks > 1 && g.N * g.K * g.P * g.Q * g.C * g.R * g.S >= kMinParallelMultiplyAdds;
}

// Tile rows [tile_row_begin, tile_row_end) of images [image_begin, image_end): one image and some of its
// tile rows, or several whole images.
struct TileBlock {
  std::int64_t image_begin = 0, image_end = 0;
  std::int64_t tile_row_begin = 0, tile_row_end = 0;
};

// The tiles of one image and the largest block.
struct TilePlan {
  std::int64_t tile_rows = 0, tile_cols = 0;
  std::int64_t images = 1, rows = 1;  // a block holds `images` images or `rows` tile rows of one
  std::int64_t max_tiles() const { return images * rows * tile_cols; }
};

// Note [Winograd block size]: a block's V and M (16·(C + K) floats per tile) are written by one step and
// read by the next, so they should stay in cache, while a block keeps at least 128 tiles so its 16 GEMMs stay
// wide. On the ResNet shapes of bench_conv2d, 2 MiB was as fast as 4 or 8 MiB or faster (64 and 128
// channels gained most), and 16 MiB or more was slower.
constexpr std::int64_t kWorkspaceBytes = std::int64_t{2} << 20;
constexpr std::int64_t kMinBlockTiles = 128, kMaxBlockTiles = 1024;

template <typename Tiling>
TilePlan plan_tiles(const Conv2dGeometry& g) {
  TilePlan plan;
  plan.tile_rows = ceil_div(g.P, Tiling::kOutput), plan.tile_cols = ceil_div(g.Q, Tiling::kOutput);
  const std::int64_t tile_bytes = Tiling::kPoints * (g.C + g.K) * static_cast<std::int64_t>(sizeof(float));
  const std::int64_t target = std::clamp(kWorkspaceBytes / tile_bytes, kMinBlockTiles, kMaxBlockTiles);
  const std::int64_t image_tiles = plan.tile_rows * plan.tile_cols;
  if (image_tiles >= target) {
    plan.rows = std::clamp<std::int64_t>(target / plan.tile_cols, 1, plan.tile_rows);
  } else {
    // Several images per block, but not so many that a thread is left without a block.
    const std::int64_t images_per_thread = ceil_div(std::max<std::int64_t>(g.N, 1), omp_get_max_threads());
    plan.images = std::clamp<std::int64_t>(target / image_tiles, 1, images_per_thread);
    plan.rows = plan.tile_rows;
  }
  return plan;
}

// Blocks in all, numbered image by image and, within an image, by tile rows.
std::int64_t block_count(const Conv2dGeometry& g, const TilePlan& plan) {
  return plan.images > 1 ? ceil_div(g.N, plan.images) : g.N * ceil_div(plan.tile_rows, plan.rows);
}

TileBlock block_at(const Conv2dGeometry& g, const TilePlan& plan, std::int64_t index) {
  if (plan.images > 1) {
    const std::int64_t first_image = index * plan.images;
    return {first_image, std::min(g.N, first_image + plan.images), 0, plan.tile_rows};
  }
  const std::int64_t blocks_per_image = ceil_div(plan.tile_rows, plan.rows);
  const std::int64_t image = index / blocks_per_image, row = (index % blocks_per_image) * plan.rows;
  return {image, image + 1, row, std::min(plan.tile_rows, row + plan.rows)};
}

std::int64_t block_tiles(const TilePlan& plan, const TileBlock& block) {
  return (block.image_end - block.image_begin) * (block.tile_row_end - block.tile_row_begin) * plan.tile_cols;
}

std::int64_t round_up(std::int64_t a, std::int64_t b) {
  return ceil_div(a, b) * b;
}

// Note [phases]: tile column j of a row of tiles reads input columns kOutput·j + o, o < kInput, of the
// padded row. Split into its kOutput phases, phase p holding columns kOutput·j + p, the columns an offset o
// reads are a contiguous run: phase o mod kOutput from j + ⌊o / kOutput⌋ on. So a row is split once, by
// vector shuffles (simd::deinterleave: one split by two, or two for F(4×4)'s four phases), and each offset's
// values are copied out as a run, where reading them at a stride of kOutput had been a scalar loop and a
// tenth of the forward. Writing an output row is the reverse: the tiles' kOutput rows of outputs, one per
// phase, are interleaved (simd::interleave).

// even[j] = from[2j], odd[j] = from[2j + 1] for j < length (a multiple of kLanes).
void split_by_two(const float* from, std::int64_t length, float* even, float* odd) {
#if DSCOPE_FLOAT_VECTOR
  for (std::int64_t j = 0; j < length; j += kLanes) {
    simd::Floats even_lanes, odd_lanes;
    simd::deinterleave(from + 2 * j, even_lanes, odd_lanes);
    simd::store(even + j, even_lanes);
    simd::store(odd + j, odd_lanes);
  }
#else
  for (std::int64_t j = 0; j < length; ++j)
    even[j] = from[2 * j], odd[j] = from[2 * j + 1];
#endif
}

// to[2j] = even[j], to[2j + 1] = odd[j] for j < length (a multiple of kLanes).
void merge_pairs(const float* even, const float* odd, std::int64_t length, float* to) {
#if DSCOPE_FLOAT_VECTOR
  for (std::int64_t j = 0; j < length; j += kLanes)
    simd::interleave(simd::load(even + j), simd::load(odd + j), to + 2 * j);
#else
  for (std::int64_t j = 0; j < length; ++j)
    to[2 * j] = even[j], to[2 * j + 1] = odd[j];
#endif
}

// phases[p · length + j] = row[kOutput · j + p] for j < length (a multiple of kLanes); `scratch` holds
// kOutput · length floats (Note [phases]).
template <std::int64_t kOutput>
void split_phases(const float* row, std::int64_t length, float* scratch, float* phases) {
  static_assert(kOutput == 2 || kOutput == 4);
  if constexpr (kOutput == 2) {
    split_by_two(row, length, phases, phases + length);
  } else {
    // Columns 2j and 2j + 1, then each of those by two again: 4j and 4j + 2, 4j + 1 and 4j + 3.
    split_by_two(row, 2 * length, scratch, scratch + 2 * length);
    split_by_two(scratch, length, phases, phases + 2 * length);
    split_by_two(scratch + 2 * length, length, phases + length, phases + 3 * length);
  }
}

// row[4j + p] = planes[p · stride + j] for j < length (a multiple of kLanes) and p < 4: the reverse of
// split_phases<4> (the forward, which alone writes outputs, runs F(4×4)); `scratch` holds 4 · length floats.
void merge_four_phases(const float* planes, std::int64_t stride, std::int64_t length, float* scratch,
                       float* row) {
  merge_pairs(planes, planes + 2 * stride, length, scratch);
  merge_pairs(planes + stride, planes + 3 * stride, length, scratch + 2 * length);
  merge_pairs(scratch, scratch + 2 * length, 2 * length, row);
}

// One thread's buffers. They are kept between calls (workspace() below), as fresh pages would be faulted in,
// and zeroed, on every call.
template <typename Tiling>
struct Workspace {
  static constexpr std::int64_t kOutput = Tiling::kOutput;

  // Sizes the buffers for a call on g in blocks of `plan`.
  void prepare(const Conv2dGeometry& g, const TilePlan& plan) {
    // A row of tiles reads one more column of each phase than it has tiles (Note [phases]).
    phase_length = round_up(plan.tile_cols + 1, kLanes);
    output_length = round_up(plan.tile_cols, kLanes);
    resize(raw, Tiling::kPoints * plan.max_tiles());
    resize(transformed, Tiling::kPoints * packed::b_size(g.C, plan.max_tiles()));
    resize(products, Tiling::kPoints * g.K * plan.max_tiles());
    // The last plane is read up to a whole number of vectors past its tiles.
    resize(outputs, kOutput * kOutput * plan.max_tiles() + kLanes);
    row.assign(static_cast<std::size_t>(kOutput * phase_length), 0.0f);
    gradient_row.assign(static_cast<std::size_t>(kOutput * output_length), 0.0f);
    resize(phases, kOutput * phase_length);
    resize(scratch, kOutput * phase_length);
    resize(output_row, kOutput * output_length);
  }
  static void resize(std::vector<float>& buffer, std::int64_t size) {
    buffer.resize(static_cast<std::size_t>(size));
  }

  std::int64_t phase_length = 0;    // floats per phase of an input row, a whole number of vectors
  std::int64_t output_length = 0;   // tiles per phase of an output row, a whole number of vectors
  std::vector<float> raw;           // [kPoints][tiles]: the input values of each tile, one channel
  std::vector<float> transformed;   // V [kPoints][C][tiles], in either Layout
  std::vector<float> products;      // M [kPoints][K][tiles]
  std::vector<float> outputs;       // [kOutput²][tiles]: the outputs of each tile, one output channel
  std::vector<float> row;           // one input row, zero padded to cover every tile and whole vectors
  std::vector<float> gradient_row;  // one row of the output gradient, zero padded likewise
  std::vector<float> phases;        // [kOutput][phase_length]: the row split (Note [phases])
  std::vector<float> scratch;       // halfway through a split or a merge
  std::vector<float> output_row;    // one output row, interleaved from the tiles' rows
};

// The calling thread's workspace, prepared for g and plan. The values its buffers hold past what a call
// writes (the padding of the packed operands' last panels, the slack after the last output plane) are left
// from earlier calls; they reach only results that are never written out.
template <typename Tiling>
Workspace<Tiling>& workspace(const Conv2dGeometry& g, const TilePlan& plan) {
  thread_local Workspace<Tiling> work;
  work.prepare(g, plan);
  return work;
}

// For each tile column j of a row of tiles, the value at offset o of row `row` (the workspace's zero-padded
// row or gradient_row, `length` floats per phase; null for a row of zeros), for o < offsets: plane o
// (`stride` floats apart from `planes`) gets it at j, for the row's tile_cols tiles (Note [phases]).
template <typename Tiling>
void row_into_planes(Workspace<Tiling>& work, const float* row, std::int64_t length, std::int64_t offsets,
                     std::int64_t tile_cols, float* planes, std::int64_t stride) {
  constexpr std::int64_t kOutput = Tiling::kOutput;
  if (row == nullptr) {
    for (std::int64_t offset = 0; offset < offsets; ++offset)
      std::fill_n(planes + offset * stride, tile_cols, 0.0f);
    return;
  }
  split_phases<kOutput>(row, length, work.scratch.data(), work.phases.data());
  for (std::int64_t offset = 0; offset < offsets; ++offset)
    std::copy_n(work.phases.data() + offset % kOutput * length + offset / kOutput, tile_cols,
                planes + offset * stride);
}

// How transform_block_input lays out each V[ξ] (C × tiles): row-major, for the weight gradient's GEMM, or in
// the packed GEMM's layout of B (cpu/gemm_packed.h), which the forward's products read without a copy.
enum class Layout { row_major, packed };

// A vector of successive tiles, from a multiple of kLanes, lies side by side in either layout.
static_assert(packed::kTileColumns % kLanes == 0);

// V[ξ][c][t] for every tile of the block (Note [tile layout]), in `layout`.
template <typename Tiling>
void transform_block_input(const Conv2dGeometry& g, const TilePlan& plan, const float* x,
                           const TileBlock& block, std::int64_t tiles, Layout layout,
                           Workspace<Tiling>& work) {
  constexpr std::int64_t kOutput = Tiling::kOutput, kInput = Tiling::kInput;
  const std::int64_t row_width = kOutput * work.phase_length;
  // Input columns -pad_w .. row_width - pad_w of a row; the parts outside the image stay zero.
  const std::int64_t inside_begin = std::min(g.pad_w, row_width);
  const std::int64_t inside_end = std::clamp(g.pad_w + g.W, inside_begin, row_width);
  for (std::int64_t c = 0; c < g.C; ++c) {
    std::int64_t first_tile = 0;
    for (std::int64_t n = block.image_begin; n < block.image_end; ++n) {
      const float* plane = x + (n * g.C + c) * g.H * g.W;
      for (std::int64_t tile_row = block.tile_row_begin; tile_row < block.tile_row_end;
           ++tile_row, first_tile += plan.tile_cols)
        for (std::int64_t i = 0; i < kInput; ++i) {
          // Offset o of the tiles' row i goes to raw plane kInput·i + o; rows above or below the image
          // are zeros.
          const std::int64_t ih = kOutput * tile_row - g.pad_h + i;
          const bool inside = ih >= 0 && ih < g.H;
          if (inside) {
            const float* source = plane + ih * g.W;
            std::copy(source + (inside_begin - g.pad_w), source + (inside_end - g.pad_w),
                      work.row.data() + inside_begin);
          }
          row_into_planes(work, inside ? work.row.data() : nullptr, work.phase_length, kInput, plan.tile_cols,
                          work.raw.data() + kInput * i * plan.max_tiles() + first_tile, plan.max_tiles());
        }
    }
    const bool packed_layout = layout == Layout::packed;
    const std::int64_t point_stride = packed_layout ? packed::b_size(g.C, tiles) : g.C * tiles;
    over_lanes(tiles, [&](std::int64_t t, auto lanes) {
      using V = decltype(lanes);
      V d[Tiling::kPoints], v[Tiling::kPoints];
      for (std::int64_t point = 0; point < Tiling::kPoints; ++point)
        d[point] = load<V>(work.raw.data() + point * plan.max_tiles() + t);
      Tiling::input(d, v);
      float* transformed =
          work.transformed.data() + (packed_layout ? packed::b_index(c, t, g.C) : c * tiles + t);
      for (std::int64_t point = 0; point < Tiling::kPoints; ++point)
        store(transformed + point * point_stride, v[point]);
    });
  }
}

// The output row of `count` values at offset `index` of y from `row`: + add, then epilogue.apply, a vector
// at a time. (Applied value by value as the tiles were interleaved, the ReLU took a branch per value,
// mispredicted on about half of outputs of either sign.)
void finish_row(const float* row, std::int64_t count, float add, const Conv2dEpilogue& epilogue,
                std::int64_t index, float* y) {
  float* out = y + index;
  const float* residual = epilogue.residual != nullptr ? epilogue.residual + index : nullptr;
  const bool relu = epilogue.activation == Conv2dActivation::relu;
  over_lanes(count, [&](std::int64_t q, auto lanes) {
    using V = decltype(lanes);
    V value = load<V>(row + q) + add;
    if (residual != nullptr) value += load<V>(residual + q);
    if (relu) {
      const V zero{};
      value = value > zero ? value : zero;  // NaN too becomes 0, as `activated` says
    }
    store(out + q, value);
  });
}

// y for every tile of the block from M (Note [tile layout]), plus the bias, then the epilogue.
template <typename Tiling>
void transform_block_output(const Conv2dGeometry& g, const TilePlan& plan, const float* bias,
                            const Conv2dEpilogue& epilogue, const TileBlock& block, std::int64_t tiles,
                            Workspace<Tiling>& work, float* y) {
  constexpr std::int64_t kOutput = Tiling::kOutput;
  for (std::int64_t k = 0; k < g.K; ++k) {
    const float* products = work.products.data() + k * tiles;
    over_lanes(tiles, [&](std::int64_t t, auto lanes) {
      using V = decltype(lanes);
      V m[Tiling::kPoints], out[kOutput * kOutput];
      for (std::int64_t point = 0; point < Tiling::kPoints; ++point)
        m[point] = load<V>(products + point * g.K * tiles + t);
      Tiling::output(m, out);
      for (std::int64_t i = 0; i < kOutput * kOutput; ++i)
        store(work.outputs.data() + i * plan.max_tiles() + t, out[i]);
    });
    const float add = bias != nullptr ? bias[k] : 0.0f;
    std::int64_t first_tile = 0;
    for (std::int64_t n = block.image_begin; n < block.image_end; ++n)
      for (std::int64_t tile_row = block.tile_row_begin; tile_row < block.tile_row_end;
           ++tile_row, first_tile += plan.tile_cols)
        for (std::int64_t i = 0; i < kOutput && kOutput * tile_row + i < g.P; ++i) {
          // Output row kOutput·tile_row + i interleaves the tiles' rows i: column kOutput·j + c of the
          // output is column c of tile j (Note [phases]).
          const float* tile_rows = work.outputs.data() + (kOutput * i) * plan.max_tiles() + first_tile;
          static_assert(kOutput == 4);
          merge_four_phases(tile_rows, plan.max_tiles(), work.output_length, work.scratch.data(),
                            work.output_row.data());
          finish_row(work.output_row.data(), g.Q, add, epilogue,
                     ((n * g.K + k) * g.P + kOutput * tile_row + i) * g.Q, y);
        }
  }
}

// M[ξ][k][t] = A dy Aᵀ for every tile of the block, dy its kOutput × kOutput output gradients (zero past
// the output). Each output row is split into its kOutput phases, one per column of the tiles (Note
// [phases]).
template <typename Tiling>
void transform_block_output_gradient(const Conv2dGeometry& g, const TilePlan& plan, const float* grad_y,
                                     const TileBlock& block, std::int64_t tiles, Workspace<Tiling>& work) {
  constexpr std::int64_t kOutput = Tiling::kOutput, kPoints = Tiling::kPoints;
  for (std::int64_t k = 0; k < g.K; ++k) {
    std::int64_t first_tile = 0;
    for (std::int64_t n = block.image_begin; n < block.image_end; ++n)
      for (std::int64_t tile_row = block.tile_row_begin; tile_row < block.tile_row_end;
           ++tile_row, first_tile += plan.tile_cols)
        for (std::int64_t i = 0; i < kOutput; ++i) {
          // Column c of the tiles' row i goes to plane kOutput·i + c; rows past the output are zeros.
          const bool inside = kOutput * tile_row + i < g.P;
          if (inside) {
            const float* row = grad_y + ((n * g.K + k) * g.P + kOutput * tile_row + i) * g.Q;
            std::copy(row, row + g.Q, work.gradient_row.data());  // its tail past Q stays zero
          }
          row_into_planes(work, inside ? work.gradient_row.data() : nullptr, work.output_length, kOutput,
                          plan.tile_cols, work.outputs.data() + kOutput * i * plan.max_tiles() + first_tile,
                          plan.max_tiles());
        }
    float* products = work.products.data() + k * tiles;
    over_lanes(tiles, [&](std::int64_t t, auto lanes) {
      using V = decltype(lanes);
      V dy[kOutput * kOutput], m[kPoints];
      for (std::int64_t i = 0; i < kOutput * kOutput; ++i)
        dy[i] = load<V>(work.outputs.data() + i * plan.max_tiles() + t);
      Tiling::output_adjoint(dy, m);
      for (std::int64_t point = 0; point < kPoints; ++point)
        store(products + point * g.K * tiles + t, m[point]);
    });
  }
}

// The forward pass on transformed filters U, each U[ξ] packed (Note [tile layout]).
template <typename Tiling>
void winograd_forward(const Conv2dGeometry& g, const float* x, const float* u, const float* bias,
                      const Conv2dEpilogue& epilogue, float* y) {
  constexpr std::int64_t kPoints = Tiling::kPoints;
  const TilePlan plan = plan_tiles<Tiling>(g);
  const std::int64_t blocks = block_count(g, plan);
#pragma omp parallel if (use_threads(g, blocks))
  {
    Workspace<Tiling>& work = workspace<Tiling>(g, plan);
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t index = 0; index < blocks; ++index) {
      const TileBlock block = block_at(g, plan, index);
      const std::int64_t tiles = block_tiles(plan, block);
      transform_block_input(g, plan, x, block, tiles, Layout::packed, work);
      for (std::int64_t point = 0; point < kPoints; ++point)
        packed::gemm(g.K, tiles, g.C, u + point * packed::a_size(g.K, g.C),
                     work.transformed.data() + point * packed::b_size(g.C, tiles), 0.0f,
                     work.products.data() + point * g.K * tiles, tiles);
      transform_block_output(g, plan, bias, epilogue, block, tiles, work, y);
    }
  }
}

// The forward by F(4×4, 3×3) on filters w, transformed first: filter (row, col) of u starts at
// w + row·row_stride + col·col_stride and is turned by 180° when `turn` (Note [input gradient by Winograd]).
void run_forward(const Conv2dGeometry& g, const float* x, const float* w, std::int64_t row_stride,
                 std::int64_t col_stride, bool turn, const float* bias, const Conv2dEpilogue& epilogue,
                 float* y) {
  // Kept between calls (36 MiB for 512 channels), as fresh pages would be faulted in and zeroed on every
  // call; the rows that pad U's last panel may hold anything (cpu/gemm_packed.h).
  thread_local std::vector<float> u;
  u.resize(static_cast<std::size_t>(TilingF4::kPoints * packed::a_size(g.K, g.C)));
  transform_filters<TilingF4>(w, g.K, g.C, row_stride, col_stride, turn, u.data());
  winograd_forward<TilingF4>(g, x, u.data(), bias, epilogue, y);
}

// The weight gradient by `Tiling` (Note [weight gradient by Winograd]); each thread sums its blocks into its
// own grad_U, then the partials are added and transformed back, split over the output channels.
template <typename Tiling>
void weight_gradient(const Conv2dGeometry& g, const float* x, const float* grad_y, float* grad_w) {
  constexpr std::int64_t kPoints = Tiling::kPoints;
  const TilePlan plan = plan_tiles<Tiling>(g);
  const std::int64_t blocks = block_count(g, plan);
  const std::int64_t transformed_size = kPoints * g.K * g.C;
  std::vector<std::unique_ptr<float[]>> partials(static_cast<std::size_t>(omp_get_max_threads()));
#pragma omp parallel if (use_threads(g, blocks))
  {
    const std::size_t thread = static_cast<std::size_t>(omp_get_thread_num());
    partials[thread] = std::make_unique_for_overwrite<float[]>(transformed_size);
    float* partial = partials[thread].get();
    bool written = false;
    {
      Workspace<Tiling>& work = workspace<Tiling>(g, plan);
#pragma omp for schedule(static) nowait
      for (std::int64_t index = 0; index < blocks; ++index) {
        const TileBlock block = block_at(g, plan, index);
        const std::int64_t tiles = block_tiles(plan, block);
        transform_block_input(g, plan, x, block, tiles, Layout::row_major, work);
        transform_block_output_gradient(g, plan, grad_y, block, tiles, work);
        GemmGeometry product;
        product.M = g.K, product.N = g.C, product.K = tiles;
        product.transpose_b = true;
        product.lda = tiles, product.ldb = tiles, product.ldc = g.C;
        for (std::int64_t point = 0; point < kPoints; ++point)
          gemm(product, 1.0f, work.products.data() + point * g.K * tiles,
               work.transformed.data() + point * g.C * tiles, written ? 1.0f : 0.0f,
               partial + point * g.K * g.C);
        written = true;
      }
    }
    if (!written) std::fill(partial, partial + transformed_size, 0.0f);
#pragma omp barrier
    const std::size_t threads = static_cast<std::size_t>(omp_get_num_threads());
#pragma omp for schedule(static)
    for (std::int64_t k = 0; k < g.K; ++k)
      over_lanes(g.C, [&](std::int64_t c, auto lanes) {
        using V = decltype(lanes);
        V u[kPoints], filter[9];
        for (std::int64_t point = 0; point < kPoints; ++point) {
          const std::int64_t at = (point * g.K + k) * g.C + c;
          u[point] = load<V>(partials[0].get() + at);
          for (std::size_t other = 1; other < threads; ++other)
            u[point] += load<V>(partials[other].get() + at);
        }
        Tiling::filter_adjoint(u, filter);
        for (int e = 0; e < 9; ++e)
          scatter(grad_w + (k * g.C + c) * 9 + e, 9, filter[e]);
      });
  }
}

}  // namespace

bool conv2d_winograd_supports(const Conv2dGeometry& g) {
  return g.R == 3 && g.S == 3 && g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 &&
         g.dilation_w == 1 && g.pad_h <= 2 && g.pad_w <= 2;
}

void conv2d_forward_winograd(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                             float* y, const Conv2dEpilogue& epilogue) {
  assert(conv2d_winograd_supports(g));
  run_forward(g, x, w, g.C * 9, 9, false, bias, epilogue, y);
}

void conv2d_backward_input_winograd(const Conv2dGeometry& g, const float* grad_y, const float* w,
                                    float* grad_x) {
  assert(conv2d_winograd_supports(g));
  // Note [input gradient by Winograd]: grad_y [N, K, P, Q] is the input, grad_x [N, C, H, W] the output.
  Conv2dGeometry turned = g;
  turned.C = g.K, turned.H = g.P, turned.W = g.Q;
  turned.K = g.C, turned.P = g.H, turned.Q = g.W;
  turned.pad_h = 2 - g.pad_h, turned.pad_w = 2 - g.pad_w;
  run_forward(turned, grad_y, w, 9, g.C * 9, true, nullptr, Conv2dActivation::none, grad_x);
}

void conv2d_backward_weight_winograd(const Conv2dGeometry& g, const float* x, const float* grad_y,
                                     float* grad_w) {
  assert(conv2d_winograd_supports(g));
  if (g.K * g.C <= kLargestF4WeightFilters)
    weight_gradient<TilingF4>(g, x, grad_y, grad_w);
  else
    weight_gradient<TilingF2>(g, x, grad_y, grad_w);
}

}  // namespace dscope::kernels::cpu
