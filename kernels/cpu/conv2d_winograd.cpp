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
// element of 16 (or 36) planes, so it runs over the tiles a vector at a time (16 with AVX-512; one tile at a
// time where there are no vectors), reading the input rows and writing the output rows in place (Note
// [transforms in registers]); the transforms are templates so that the same text serves vectors of tiles
// and the filters (in the vector extension of GCC and Clang, which transform_filters runs over).
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

  // out = Bᵀ d, Bᵀ = [[1,0,−1,0], [0,1,1,0], [0,−1,1,0], [0,1,0,−1]]; d has 4 values, read from `in` at
  // stride `in_stride`, and out is written at stride `out_stride` (as the F(4×4) functions below).
  template <typename V>
  static void input_points(const V* in, std::int64_t in_stride, V* out, std::int64_t out_stride) {
    const V d0 = in[0], d1 = in[in_stride], d2 = in[2 * in_stride], d3 = in[3 * in_stride];
    out[0] = d0 - d2;
    out[out_stride] = d1 + d2;
    out[2 * out_stride] = d2 - d1;
    out[3 * out_stride] = d1 - d3;
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

  // out = Bᵀ d for 6 values d (input_points_f4).
  template <typename V>
  static void input_points(const V* in, std::int64_t in_stride, V* out, std::int64_t out_stride) {
    input_points_f4(in, in_stride, out, out_stride);
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
// channels gained most), and 16 MiB or more was slower. So an image with twice that many tiles or more is cut
// into blocks of tile rows. Smaller images had been grouped up to the same 2 MiB; once the transforms ran in
// registers (Note [transforms in registers]) one image per block, or as few as make kImageGroupTiles tiles,
// was faster: bench_training, DSCOPE_CPU_PROFILE, 6 and 4 alternating runs on a 2-core Zen 5 (1 MiB of L2
// per core), medians of the paired ratios, forwards of ResNet-8 inference 0.80 (32 → 32 on 32 × 32, 3 images
// a block → 1), 0.90 (64 → 64 on 16 × 16, 7 → 4), of ResNet-18 0.83 (128 → 128 on 32 × 32, 2 → 1), 0.90
// (256 → 256 on 16 × 16, 8 → 4), 0.99 (512 → 512 on 8 × 8, 32 → 16). Cutting ResNet-18's 64 × 64 images
// into blocks of 4 tile rows rather than 8 measured 1.09, and ResNet-8's 16 → 16 layer into 8 rather than
// whole images 1.18.
constexpr std::int64_t kWorkspaceBytes = std::int64_t{2} << 20;
constexpr std::int64_t kMinBlockTiles = 128, kMaxBlockTiles = 1024, kImageGroupTiles = 64;

template <typename Tiling>
TilePlan plan_tiles(const Conv2dGeometry& g) {
  TilePlan plan;
  plan.tile_rows = ceil_div(g.P, Tiling::kOutput), plan.tile_cols = ceil_div(g.Q, Tiling::kOutput);
  const std::int64_t tile_bytes = Tiling::kPoints * (g.C + g.K) * static_cast<std::int64_t>(sizeof(float));
  const std::int64_t target = std::clamp(kWorkspaceBytes / tile_bytes, kMinBlockTiles, kMaxBlockTiles);
  const std::int64_t image_tiles = plan.tile_rows * plan.tile_cols;
  if (image_tiles >= 2 * target) {
    plan.rows = std::clamp<std::int64_t>(target / plan.tile_cols, 1, plan.tile_rows);
  } else {
    // Images whole, grouped when small, but not so many that a thread is left without a block.
    const std::int64_t images_per_thread = ceil_div(std::max<std::int64_t>(g.N, 1), omp_get_max_threads());
    plan.images = std::clamp<std::int64_t>(ceil_div(kImageGroupTiles, image_tiles), 1, images_per_thread);
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

// Note [transforms in registers]: tile column j of a row of tiles reads input columns kOutput·j + o, o <
// kInput, of its kInput input rows (counted from the padding on the left), and a transform works on the same
// element of every tile, so it runs over kChunk successive tiles of a tile row at a time, one tile per vector
// lane. The input transform Bᵀ d B is taken in two steps, each on unit-stride data:
//   1. down the columns: Bᵀ applied to the tile row's kInput input rows, a vector of successive input columns
//      at a time, gives kInput rows of partial transforms (the workspace's `columns`, zero where the tiles
//      read padding);
//   2. along each of those rows: the values at offset o of kChunk successive tiles lie kOutput apart, so
//      kOutput vectors of the row split into kOutput phases by vector shuffles (phase p holding columns
//      kOutput·l + p, simd::deinterleave) give offsets o < kOutput, and offsets kOutput and kOutput + 1 are
//      phases 0 and 1 moved down one lane, with the next tile's value shifted in (simd::shift_in). B applied
//      to those kInput vectors gives kInput of the tiles' kPoints transformed values, stored straight into V.
// Writing outputs is the reverse: the output transform of kChunk tiles gives, for each of their kOutput
// output rows, kOutput phases, which vector shuffles interleave (simd::interleave) into kOutput vectors of
// successive output columns; the bias and the epilogue are applied to those and they are stored. The tiles
// past the end of a row of tiles and the columns past the output are masked off (simd::load_first,
// simd::store_lanes). This replaced copying each input row into a zero-padded buffer, splitting it into
// phase planes, copying each offset's run into a plane of raw tiles and reading those back for the transform
// (and the same passes in reverse for the outputs): ResNet-8's 16 → 16 forward on 64 × 64 had spent about
// two thirds of its time in those copies, and ran 7.8 → 3.7 ms (bench_conv2d, batch 64, 2 threads of a
// 2-core Zen 5; with Note [point stride]). The helpers below are always inlined: they take and return
// arrays of vectors, which a call passes through memory.
#if DSCOPE_FLOAT_VECTOR
using Chunk = simd::Floats;
constexpr std::int64_t kChunk = simd::kLanes;
#else
using Chunk = float;
constexpr std::int64_t kChunk = 1;
#endif

// Lanes [0, count) of a chunk from `from`, the others zero; reads nothing past from[count − 1].
[[gnu::always_inline]] inline Chunk load_chunk(const float* from, std::int64_t count) {
#if DSCOPE_FLOAT_VECTOR
  return count == kChunk ? simd::load(from) : simd::load_first(from, count);
#else
  return count > 0 ? *from : 0.0f;
#endif
}

// Lane l = row[begin + l] where 0 ≤ begin + l < length, zero elsewhere; reads only row[0..length). begin is
// −pad_w at the least, so with vectors it is above −kChunk.
[[gnu::always_inline]] inline Chunk load_columns(const float* row, std::int64_t begin, std::int64_t length) {
  if (begin >= 0) return begin < length ? load_chunk(row + begin, std::min(kChunk, length - begin)) : Chunk{};
#if DSCOPE_FLOAT_VECTOR
  return simd::shift_up(load_chunk(row, std::min(kChunk + begin, length)), -begin);
#else
  return 0.0f;  // one lane, left of the row: padding
#endif
}

// Lanes [first, end) of `value` to to[first..end); writes nothing else.
[[gnu::always_inline]] inline void store_chunk(float* to, const Chunk& value, std::int64_t first,
                                               std::int64_t end) {
#if DSCOPE_FLOAT_VECTOR
  if (first == 0 && end == kChunk) {
    simd::store(to, value);
  } else {
    simd::store_lanes(to, value, first, end);
  }
#else
  if (first < end) *to = value;
#endif
}

[[gnu::always_inline]] inline Chunk relu(const Chunk& value) {
#if DSCOPE_FLOAT_VECTOR
  return simd::relu(value);
#else
  return value > 0.0f ? value : 0.0f;  // NaN too becomes 0, as `activated` says
#endif
}

// The kOutput·kChunk values of row[0..kOutput) (kChunk each) split into their kOutput phases: lane l of
// phases[p] is value kOutput·l + p (Note [transforms in registers]).
template <std::int64_t kOutput>
[[gnu::always_inline]] inline void split_phases(const Chunk* row, Chunk* phases) {
  static_assert(kOutput == 2 || kOutput == 4);
#if DSCOPE_FLOAT_VECTOR
  if constexpr (kOutput == 2) {
    simd::deinterleave(row[0], row[1], phases[0], phases[1]);
  } else {
    // Values 2l and 2l + 1, then each of those by two again: 4l and 4l + 2, 4l + 1 and 4l + 3.
    Chunk even_low, odd_low, even_high, odd_high;
    simd::deinterleave(row[0], row[1], even_low, odd_low);
    simd::deinterleave(row[2], row[3], even_high, odd_high);
    simd::deinterleave(even_low, even_high, phases[0], phases[2]);
    simd::deinterleave(odd_low, odd_high, phases[1], phases[3]);
  }
#else
  for (std::int64_t p = 0; p < kOutput; ++p)
    phases[p] = row[p];
#endif
}

// The reverse of split_phases<4> (the forward, which alone writes outputs, runs F(4×4)).
[[gnu::always_inline]] inline void merge_four_phases(const Chunk* phases, Chunk* row) {
#if DSCOPE_FLOAT_VECTOR
  Chunk even_low, even_high, odd_low, odd_high;
  simd::interleave(phases[0], phases[2], even_low, even_high);
  simd::interleave(phases[1], phases[3], odd_low, odd_high);
  simd::interleave(even_low, odd_low, row[0], row[1]);
  simd::interleave(even_high, odd_high, row[2], row[3]);
#else
  for (std::int64_t p = 0; p < 4; ++p)
    row[p] = phases[p];
#endif
}

// The values of kChunk successive tiles at each offset o < kInput of a row they read, which starts at `row`
// with the first tile's first column: lane l of d[o] is row[kOutput·l + o] (Note [transforms in registers]).
// Reads row[0 .. kOutput·(kChunk + 1)).
template <typename Tiling>
[[gnu::always_inline]] inline void tile_values(const float* row, Chunk* d) {
  constexpr std::int64_t kOutput = Tiling::kOutput, kInput = Tiling::kInput;
  Chunk values[kOutput];
  for (std::int64_t v = 0; v < kOutput; ++v)
    values[v] = load_chunk(row + v * kChunk, kChunk);
  split_phases<kOutput>(values, d);
  for (std::int64_t o = kOutput; o < kInput; ++o) {
#if DSCOPE_FLOAT_VECTOR
    d[o] = simd::shift_in(d[o - kOutput], simd::splat(row[kOutput * kChunk + o - kOutput]));
#else
    d[o] = row[o];
#endif
  }
}

// How transform_block_input lays out each V[ξ] (C × tiles): row-major, for the weight gradient's GEMM, or in
// the packed GEMM's layout of B (cpu/gemm_packed.h), which the forward's products read without a copy.
enum class Layout { row_major, packed };

// Note [point stride]: the transforms read or write the same tiles of all kPoints matrices V[ξ] (or M[ξ]) in
// turn. Matrices a whole number of 4 KiB apart (16 channels × 256 tiles is 16 KiB) put all those lines in
// one set of the L1 cache, which holds 12 (48 KiB in 64 sets of 64-byte lines), so most of them came from
// L2: two thirds of the output transform's time went to loading M. A line of padding after each matrix
// spreads them over kPoints sets.
constexpr std::int64_t kPointPadding = 16;  // floats

// Floats from V[ξ] to V[ξ + 1], and from M[ξ] to M[ξ + 1], for a block of `tiles` tiles.
std::int64_t transformed_stride(const Conv2dGeometry& g, std::int64_t tiles, Layout layout) {
  return (layout == Layout::packed ? packed::b_size(g.C, tiles) : g.C * tiles) + kPointPadding;
}
std::int64_t products_stride(const Conv2dGeometry& g, std::int64_t tiles) {
  return g.K * tiles + kPointPadding;
}

// One thread's buffers. They are kept between calls (workspace() below), as fresh pages would be faulted in,
// and zeroed, on every call.
template <typename Tiling>
struct Workspace {
  // Sizes the buffers for a call on g in blocks of `plan`.
  void prepare(const Conv2dGeometry& g, const TilePlan& plan) {
    resize(transformed, Tiling::kPoints * transformed_stride(g, plan.max_tiles(), Layout::packed));
    // The output transform reads a whole chunk of tiles, up to kChunk − 1 past the last one.
    resize(products, Tiling::kPoints * products_stride(g, plan.max_tiles()) + kChunk);
    // Written a chunk at a time up to the padding past the input's last column; read up to a chunk of tiles
    // and one more tile past the last tile. What is never written stays zero: padding too.
    column_length =
        std::max(round_up(g.pad_w + g.W, kChunk), Tiling::kOutput * (round_up(plan.tile_cols, kChunk) + 1));
    columns.assign(static_cast<std::size_t>(Tiling::kInput * column_length), 0.0f);
  }
  static void resize(std::vector<float>& buffer, std::int64_t size) {
    buffer.resize(static_cast<std::size_t>(size));
  }

  std::vector<float> transformed;  // V [kPoints][C][tiles], in either Layout
  std::vector<float> products;     // M [kPoints][K][tiles]
  std::int64_t column_length = 0;  // floats per row of `columns`
  std::vector<float> columns;      // [kInput][column_length]: Bᵀ down one tile row's input rows
};

// The calling thread's workspace, prepared for g and plan. The values its buffers hold past what a call
// writes (the padding of the packed operands' last panels, the slack after the last product) are left
// from earlier calls; they reach only results that are never written out.
template <typename Tiling>
Workspace<Tiling>& workspace(const Conv2dGeometry& g, const TilePlan& plan) {
  thread_local Workspace<Tiling> work;
  work.prepare(g, plan);
  return work;
}

// A chunk of successive tiles continues at most once into the next panel of the packed layout.
static_assert(packed::kTileColumns >= kChunk);

// Tiles [t, t + count) of row c of one V[ξ] (C × tiles, from `matrix`, in `layout`) from lanes [0, count)
// of `values`. In the packed layout the run continues in the next panel past a multiple of kTileColumns.
[[gnu::always_inline]] inline void store_tiles(float* matrix, Layout layout, std::int64_t C,
                                               std::int64_t tiles, std::int64_t c, std::int64_t t,
                                               std::int64_t count, const Chunk& values) {
  if (layout == Layout::row_major) return store_chunk(matrix + c * tiles + t, values, 0, count);
  const std::int64_t in_panel = std::min(count, packed::kTileColumns - t % packed::kTileColumns);
  store_chunk(matrix + packed::b_index(c, t, C), values, 0, in_panel);
  if (in_panel < count)
    store_chunk(matrix + packed::b_index(c, t + in_panel, C) - in_panel, values, in_panel, count);
}

// Step 1 of Note [transforms in registers]: Bᵀ down the columns of the kInput input rows that tile row
// `tile_row` of `plane` reads (rows outside the image are zeros), input column w to columns[i][pad_w + w].
// The chunks are stored where step 2 loads them, on multiples of kChunk: a load that straddles two recent
// stores waits for both to reach the cache instead of taking their values as they leave the core (store
// forwarding), and with stores offset by pad_w every load of step 2 straddled two.
template <typename Tiling>
void transform_columns(const Conv2dGeometry& g, const float* plane, std::int64_t tile_row,
                       std::int64_t column_length, float* columns) {
  constexpr std::int64_t kInput = Tiling::kInput;
  const float* rows[kInput];
  for (std::int64_t i = 0; i < kInput; ++i) {
    const std::int64_t ih = Tiling::kOutput * tile_row - g.pad_h + i;
    rows[i] = ih >= 0 && ih < g.H ? plane + ih * g.W : nullptr;
  }
  for (std::int64_t at = 0; at < g.pad_w + g.W; at += kChunk) {
    Chunk d[kInput], e[kInput];
    for (std::int64_t i = 0; i < kInput; ++i)
      d[i] = rows[i] != nullptr ? load_columns(rows[i], at - g.pad_w, g.W) : Chunk{};
    Tiling::input_points(d, 1, e, 1);
    for (std::int64_t i = 0; i < kInput; ++i)
      store_chunk(columns + i * column_length + at, e[i], 0, kChunk);
  }
}

// V[ξ][c][t] for every tile of the block (Note [tile layout]), in `layout` (Note [transforms in registers]).
template <typename Tiling>
void transform_block_input(const Conv2dGeometry& g, const TilePlan& plan, const float* x,
                           const TileBlock& block, std::int64_t tiles, Layout layout,
                           Workspace<Tiling>& work) {
  constexpr std::int64_t kOutput = Tiling::kOutput, kInput = Tiling::kInput;
  const std::int64_t point_stride = transformed_stride(g, tiles, layout);
  for (std::int64_t c = 0; c < g.C; ++c) {
    std::int64_t first_tile = 0;
    for (std::int64_t n = block.image_begin; n < block.image_end; ++n)
      for (std::int64_t tile_row = block.tile_row_begin; tile_row < block.tile_row_end;
           ++tile_row, first_tile += plan.tile_cols) {
        transform_columns<Tiling>(g, x + (n * g.C + c) * g.H * g.W, tile_row, work.column_length,
                                  work.columns.data());
        for (std::int64_t i = 0; i < kInput; ++i)
          for (std::int64_t j = 0; j < plan.tile_cols; j += kChunk) {
            Chunk d[kInput], v[kInput];
            tile_values<Tiling>(work.columns.data() + i * work.column_length + kOutput * j, d);
            Tiling::input_points(d, 1, v, 1);
            const std::int64_t count = std::min(kChunk, plan.tile_cols - j);
            for (std::int64_t o = 0; o < kInput; ++o)
              store_tiles(work.transformed.data() + (kInput * i + o) * point_stride, layout, g.C, tiles, c,
                          first_tile + j, count, v[o]);
          }
      }
  }
}

// `columns` output values from `index` of y, from the kOutput phases of one output row of kChunk tiles: +
// add, then the epilogue (Note [transforms in registers]); whole vectors on a vector boundary by streaming
// stores when `streaming` (cpu/conv2d_direct.cpp, Note [streaming stores]; only with vectors).
[[gnu::always_inline]] inline void finish_output_row(const Chunk* phases, std::int64_t columns, float add,
                                                     const Conv2dEpilogue& epilogue,
                                                     [[maybe_unused]] bool streaming, std::int64_t index,
                                                     float* y) {
  Chunk row[4];
  merge_four_phases(phases, row);
  for (std::int64_t v = 0; v < 4 && v * kChunk < columns; ++v) {
    const std::int64_t at = index + v * kChunk, count = std::min(kChunk, columns - v * kChunk);
    Chunk value = row[v] + add;
    if (epilogue.residual != nullptr) value += load_chunk(epilogue.residual + at, count);
    if (epilogue.activation == Conv2dActivation::relu) value = relu(value);
#if DSCOPE_FLOAT_VECTOR
    if (streaming && count == kChunk && simd::is_vector_aligned(y + at)) {
      simd::store_streaming(y + at, value);
      continue;
    }
#endif
    store_chunk(y + at, value, 0, count);
  }
}

// y for every tile of the block from M (Note [tile layout]), plus the bias, then the epilogue.
template <typename Tiling>
void transform_block_output(const Conv2dGeometry& g, const TilePlan& plan, const float* bias,
                            const Conv2dEpilogue& epilogue, const TileBlock& block, std::int64_t tiles,
                            Workspace<Tiling>& work, float* y) {
  constexpr std::int64_t kOutput = Tiling::kOutput;
  static_assert(kOutput == 4);
  const bool streaming =
      g.N * g.K * g.P * g.Q * static_cast<std::int64_t>(sizeof(float)) >= simd::kStreamingMinBytes;
  for (std::int64_t k = 0; k < g.K; ++k) {
    const float* products = work.products.data() + k * tiles;
    const std::int64_t point_stride = products_stride(g, tiles);
    const float add = bias != nullptr ? bias[k] : 0.0f;
    std::int64_t first_tile = 0;
    for (std::int64_t n = block.image_begin; n < block.image_end; ++n)
      for (std::int64_t tile_row = block.tile_row_begin; tile_row < block.tile_row_end;
           ++tile_row, first_tile += plan.tile_cols)
        for (std::int64_t j = 0; j < plan.tile_cols; j += kChunk) {
          Chunk m[Tiling::kPoints], out[kOutput * kOutput];
          for (std::int64_t point = 0; point < Tiling::kPoints; ++point)
            m[point] = load_chunk(products + point * point_stride + first_tile + j, kChunk);
          Tiling::output(m, out);
          // Output row kOutput·tile_row + i, from column kOutput·j: row i of each tile.
          const std::int64_t columns = std::min(kOutput * kChunk, g.Q - kOutput * j);
          for (std::int64_t i = 0; i < kOutput && kOutput * tile_row + i < g.P; ++i)
            finish_output_row(out + kOutput * i, columns, add, epilogue, streaming,
                              ((n * g.K + k) * g.P + kOutput * tile_row + i) * g.Q + kOutput * j, y);
        }
  }
#if DSCOPE_FLOAT_VECTOR
  if (streaming) simd::finish_streaming_stores();
#endif
}

// M[ξ][k][t] = A dy Aᵀ for every tile of the block, dy its kOutput × kOutput output gradients (zero past
// the output): row i of kChunk tiles is the split of kOutput vectors of output row kOutput·tile_row + i
// (Note [transforms in registers]).
template <typename Tiling>
void transform_block_output_gradient(const Conv2dGeometry& g, const TilePlan& plan, const float* grad_y,
                                     const TileBlock& block, std::int64_t tiles, Workspace<Tiling>& work) {
  constexpr std::int64_t kOutput = Tiling::kOutput, kPoints = Tiling::kPoints;
  for (std::int64_t k = 0; k < g.K; ++k) {
    float* products = work.products.data() + k * tiles;
    const std::int64_t point_stride = products_stride(g, tiles);
    std::int64_t first_tile = 0;
    for (std::int64_t n = block.image_begin; n < block.image_end; ++n)
      for (std::int64_t tile_row = block.tile_row_begin; tile_row < block.tile_row_end;
           ++tile_row, first_tile += plan.tile_cols)
        for (std::int64_t j = 0; j < plan.tile_cols; j += kChunk) {
          const std::int64_t columns = std::min(kOutput * kChunk, g.Q - kOutput * j);
          Chunk dy[kOutput * kOutput], m[kPoints];
          for (std::int64_t i = 0; i < kOutput; ++i) {
            const std::int64_t p = kOutput * tile_row + i;
            Chunk row[kOutput] = {};
            if (p < g.P) {
              const float* from = grad_y + ((n * g.K + k) * g.P + p) * g.Q + kOutput * j;
              for (std::int64_t v = 0; v < kOutput && v * kChunk < columns; ++v)
                row[v] = load_chunk(from + v * kChunk, std::min(kChunk, columns - v * kChunk));
            }
            split_phases<kOutput>(row, dy + kOutput * i);
          }
          Tiling::output_adjoint(dy, m);
          const std::int64_t count = std::min(kChunk, plan.tile_cols - j);
          for (std::int64_t point = 0; point < kPoints; ++point)
            store_chunk(products + point * point_stride + first_tile + j, m[point], 0, count);
        }
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
                     work.transformed.data() + point * transformed_stride(g, tiles, Layout::packed), 0.0f,
                     work.products.data() + point * products_stride(g, tiles), tiles);
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
          gemm(product, 1.0f, work.products.data() + point * products_stride(g, tiles),
               work.transformed.data() + point * transformed_stride(g, tiles, Layout::row_major),
               written ? 1.0f : 0.0f, partial + point * g.K * g.C);
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
