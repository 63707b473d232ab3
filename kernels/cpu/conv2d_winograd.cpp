// conv2d by Winograd's minimal filtering on the CPU (see kernels/conv2d.h): F(4×4, 3×3) for the forward and
// the input gradient where it pays, F(2×2, 3×3) otherwise and for the weight gradient.
//
// Note [Winograd F(2×2, 3×3)]: a 2×2 block of outputs of a 3×3 filter g reads a 4×4 input tile d, and
//   y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A          (⊙: element-wise product of two 4×4 matrices)
// with the constant matrices of transform_filter, transform_input and transform_output below. That is 16
// multiplications per tile and channel instead of 4·9 = 36, so 2.25 times less arithmetic; the transforms
// need only additions (and halvings, in G). Summed over the input channels, the 16 element-wise products
// of one tile become 16 independent matrix products over all tiles of a block:
//   M[ξ] (K × tiles) = U[ξ] (K × C) · V[ξ] (C × tiles),   ξ = 0..15,
// where U = G g Gᵀ (the transformed filters, once per call) and V = Bᵀ d B (the transformed tiles). They run
// on kernels::cpu::gemm with the tiles as the long dimension. Rounding differs from direct summation only by
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
// 95 → 66; but 512 on 8×8 33 → 46 / 105 → 114: there the blocks hold few tiles (2 × 2 per image) and each of
// the 36 GEMMs repacks its 512 × 512 filter matrix, so above kLargestF4Filters filter pairs F(2×2) stays.
//
// Note [tile layout]: tile t of a block numbers (image, tile row, tile column) in row-major order; V is
// stored [ξ][c][t] and M [ξ][k][t], so each GEMM reads and writes plain row-major matrices. A transform
// works on the same element of 16 (or 36) planes, so it runs over the tiles 8 at a time in one AVX register
// (the vector extension of GCC and Clang; scalar code where there is none), and the transforms are templates
// so that the same text serves the remainder one tile at a time. A tile's input rows are first copied, zero
// padded, into a row buffer, and its 4 (or 6) columns split from it into as many planes of raw tiles, so the
// arithmetic loop itself reads only unit-stride planes.
//
// Note [input gradient by Winograd]: with stride 1, grad_x is the correlation of grad_y with every filter
// turned by 180° and its two channel axes swapped, padded by 2 − pad; it runs through the same forward.
//
// Note [weight gradient by Winograd]: per tile the forward is y = Aᵀ (U ⊙ V) A, so the gradient of U is the
// sum over tiles of (A dy Aᵀ) ⊙ V: again 16 GEMMs, now with the tiles as their depth,
//   grad_U[ξ] (K × C) += M[ξ] (K × tiles) · V[ξ]ᵀ (tiles × C),   M = A dy Aᵀ,
// and since U = G g Gᵀ, grad_w = Gᵀ grad_U G, applied once at the end.
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
#include "kernels/gemm.h"

namespace dscope::kernels::cpu {
namespace {

// Eight floats in one register (AVX with -march=native). Arithmetic operators work lane by lane.
using Lanes = float __attribute__((vector_size(32)));
constexpr std::int64_t kLanes = 8;

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

// F(2×2, 3×3) (Note [Winograd F(2×2, 3×3)]), and below F(4×4, 3×3): the tilings as types, so that the
// forward's code serves both: kOutput × kOutput outputs per tile from kInput × kInput inputs, kPoints =
// kInput² transformed values, and the three transforms of one tile (the filter's, the input's and the
// output's).
struct TilingF2 {
  static constexpr std::int64_t kOutput = 2, kInput = 4, kPoints = 16;

  // u = G g Gᵀ, G = [[1,0,0], [½,½,½], [½,−½,½], [0,0,1]]; g is 3×3 and u 4×4, both row-major.
  template <typename V>
  static void filter(const V* g, V* u) {
    V t[12];  // G g, 4×3
    for (int j = 0; j < 3; ++j) {
      t[j] = g[j];
      t[3 + j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
      t[6 + j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
      t[9 + j] = g[6 + j];
    }
    for (int i = 0; i < 4; ++i) {
      u[4 * i] = t[3 * i];
      u[4 * i + 1] = 0.5f * (t[3 * i] + t[3 * i + 1] + t[3 * i + 2]);
      u[4 * i + 2] = 0.5f * (t[3 * i] - t[3 * i + 1] + t[3 * i + 2]);
      u[4 * i + 3] = t[3 * i + 2];
    }
  }

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

  // y = Aᵀ m A, Aᵀ = [[1,1,1,0], [0,1,−1,−1]]; m is 4×4 and y 2×2, both row-major.
  template <typename V>
  static void output(const V* m, V* y) {
    V f[8];  // Aᵀ m, 2×4
    for (int j = 0; j < 4; ++j) {
      f[j] = m[j] + m[4 + j] + m[8 + j];
      f[4 + j] = m[4 + j] - m[8 + j] - m[12 + j];
    }
    for (int i = 0; i < 2; ++i) {
      y[2 * i] = f[4 * i] + f[4 * i + 1] + f[4 * i + 2];
      y[2 * i + 1] = f[4 * i + 1] - f[4 * i + 2] - f[4 * i + 3];
    }
  }
};

// m = A dy Aᵀ, the adjoint of TilingF2::output (Note [weight gradient by Winograd]); dy is 2×2, m 4×4.
template <typename V>
void transform_output_adjoint(const V* dy, V* m) {
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

// g = Gᵀ u G, the adjoint of TilingF2::filter; u is 4×4, g 3×3.
template <typename V>
void transform_filter_adjoint(const V* u, V* g) {
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

// F(4×4, 3×3) runs the forward up to this many (input, output) channel pairs (Note [Winograd F(4×4, 3×3)]).
constexpr std::int64_t kLargestF4Filters = 256 * 256;

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
};

// Filters to transform before a team of threads pays (each is about 60 operations).
constexpr std::int64_t kMinParallelFilters = 4096;

// u[ξ][row][col] = G g Gᵀ for the filter g of every (row, col), which starts at w + row·row_stride +
// col·col_stride and is turned by 180° when `turn` (Note [input gradient by Winograd]).
template <typename Tiling>
void transform_filters(const float* w, std::int64_t rows, std::int64_t cols, std::int64_t row_stride,
                       std::int64_t col_stride, bool turn, float* u) {
#pragma omp parallel for schedule(static) if (rows * cols >= kMinParallelFilters)
  for (std::int64_t row = 0; row < rows; ++row)
    over_lanes(cols, [&](std::int64_t col, auto lanes) {
      using V = decltype(lanes);
      V g[9], t[Tiling::kPoints];
      for (int e = 0; e < 9; ++e)
        g[e] = gather<V>(w + row * row_stride + col * col_stride + (turn ? 8 - e : e), col_stride);
      Tiling::filter(g, t);
      for (std::int64_t point = 0; point < Tiling::kPoints; ++point)
        store(u + (point * rows + row) * cols + col, t[point]);
    });
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

// One thread's buffers, allocated once per call.
template <typename Tiling>
struct Workspace {
  // The padded input row that covers every tile of a row of tiles.
  static std::int64_t row_width(const TilePlan& plan) {
    return Tiling::kOutput * plan.tile_cols + Tiling::kInput - Tiling::kOutput;
  }
  explicit Workspace(const Conv2dGeometry& g, const TilePlan& plan)
      : raw(std::make_unique_for_overwrite<float[]>(Tiling::kPoints * plan.max_tiles())),
        transformed(std::make_unique_for_overwrite<float[]>(Tiling::kPoints * g.C * plan.max_tiles())),
        products(std::make_unique_for_overwrite<float[]>(Tiling::kPoints * g.K * plan.max_tiles())),
        outputs(
            std::make_unique_for_overwrite<float[]>(Tiling::kOutput * Tiling::kOutput * plan.max_tiles())),
        row(std::make_unique<float[]>(row_width(plan))),
        zeros(std::make_unique<float[]>(row_width(plan))) {}
  std::unique_ptr<float[]> raw;          // [kPoints][tiles]: the input values of each tile, one channel
  std::unique_ptr<float[]> transformed;  // V [kPoints][C][tiles]
  std::unique_ptr<float[]> products;     // M [kPoints][K][tiles]
  std::unique_ptr<float[]> outputs;      // [kOutput²][tiles]: the outputs of each tile, one output channel
  std::unique_ptr<float[]> row;          // one input row, zero padded to cover every tile
  std::unique_ptr<float[]> zeros;        // an input row above or below the image
};

// V[ξ][c][t] for every tile of the block (Note [tile layout]).
template <typename Tiling>
void transform_block_input(const Conv2dGeometry& g, const TilePlan& plan, const float* x,
                           const TileBlock& block, std::int64_t tiles, Workspace<Tiling>& work) {
  constexpr std::int64_t kOutput = Tiling::kOutput, kInput = Tiling::kInput;
  const std::int64_t row_width = Workspace<Tiling>::row_width(plan);
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
          const std::int64_t ih = kOutput * tile_row - g.pad_h + i;
          const float* row = work.zeros.get();
          if (ih >= 0 && ih < g.H) {
            const float* source = plane + ih * g.W;
            std::copy(source + (inside_begin - g.pad_w), source + (inside_end - g.pad_w),
                      work.row.get() + inside_begin);
            row = work.row.get();
          }
          // Tile column j reads input columns kOutput·j .. kOutput·j + kInput − 1 of the padded row.
          for (std::int64_t j_offset = 0; j_offset < kInput; ++j_offset) {
            float* raw = work.raw.get() + (kInput * i + j_offset) * plan.max_tiles() + first_tile;
            for (std::int64_t j = 0; j < plan.tile_cols; ++j)
              raw[j] = row[kOutput * j + j_offset];
          }
        }
    }
    float* transformed = work.transformed.get() + c * tiles;
    over_lanes(tiles, [&](std::int64_t t, auto lanes) {
      using V = decltype(lanes);
      V d[Tiling::kPoints], v[Tiling::kPoints];
      for (std::int64_t point = 0; point < Tiling::kPoints; ++point)
        d[point] = load<V>(work.raw.get() + point * plan.max_tiles() + t);
      Tiling::input(d, v);
      for (std::int64_t point = 0; point < Tiling::kPoints; ++point)
        store(transformed + point * g.C * tiles + t, v[point]);
    });
  }
}

// An output row of `count` values at offset `index` of y: + add, then epilogue.apply, eight values at a time.
// Applied value by value as the tiles are interleaved, the ReLU took a branch per value, mispredicted on
// about half of outputs of either sign.
void finish_row(float* out, std::int64_t count, float add, const Conv2dEpilogue& epilogue,
                std::int64_t index) {
  const float* residual = epilogue.residual != nullptr ? epilogue.residual + index : nullptr;
  const bool relu = epilogue.activation == Conv2dActivation::relu;
  over_lanes(count, [&](std::int64_t q, auto lanes) {
    using V = decltype(lanes);
    V value = load<V>(out + q) + add;
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
  const std::int64_t whole_tiles = g.Q / kOutput;
  for (std::int64_t k = 0; k < g.K; ++k) {
    const float* products = work.products.get() + k * tiles;
    over_lanes(tiles, [&](std::int64_t t, auto lanes) {
      using V = decltype(lanes);
      V m[Tiling::kPoints], out[kOutput * kOutput];
      for (std::int64_t point = 0; point < Tiling::kPoints; ++point)
        m[point] = load<V>(products + point * g.K * tiles + t);
      Tiling::output(m, out);
      for (std::int64_t i = 0; i < kOutput * kOutput; ++i)
        store(work.outputs.get() + i * plan.max_tiles() + t, out[i]);
    });
    const float add = bias != nullptr ? bias[k] : 0.0f;
    std::int64_t first_tile = 0;
    for (std::int64_t n = block.image_begin; n < block.image_end; ++n)
      for (std::int64_t tile_row = block.tile_row_begin; tile_row < block.tile_row_end;
           ++tile_row, first_tile += plan.tile_cols)
        for (std::int64_t i = 0; i < kOutput && kOutput * tile_row + i < g.P; ++i) {
          // Output row kOutput·tile_row + i interleaves the tiles' rows i: column kOutput·j + c of the
          // output is column c of tile j.
          const float* tile_rows = work.outputs.get() + (kOutput * i) * plan.max_tiles() + first_tile;
          const std::int64_t row = ((n * g.K + k) * g.P + kOutput * tile_row + i) * g.Q;
          float* out = y + row;
          for (std::int64_t j = 0; j < whole_tiles; ++j)
            for (std::int64_t c = 0; c < kOutput; ++c)
              out[kOutput * j + c] = tile_rows[c * plan.max_tiles() + j];
          for (std::int64_t column = kOutput * whole_tiles; column < g.Q; ++column)
            out[column] = tile_rows[(column % kOutput) * plan.max_tiles() + whole_tiles];
          finish_row(out, g.Q, add, epilogue, row);
        }
  }
}

// M[ξ][k][t] = A dy Aᵀ for every tile of the block, dy its 2×2 output gradients (zero past the output).
void transform_block_output_gradient(const Conv2dGeometry& g, const TilePlan& plan, const float* grad_y,
                                     const TileBlock& block, std::int64_t tiles, Workspace<TilingF2>& work) {
  constexpr std::int64_t kPoints = TilingF2::kPoints;
  const std::int64_t even_columns = g.Q / 2;
  for (std::int64_t k = 0; k < g.K; ++k) {
    std::int64_t first_tile = 0;
    for (std::int64_t n = block.image_begin; n < block.image_end; ++n)
      for (std::int64_t tile_row = block.tile_row_begin; tile_row < block.tile_row_end;
           ++tile_row, first_tile += plan.tile_cols)
        for (std::int64_t i = 0; i < 2; ++i) {
          // Output row 2·tile_row + i splits into the tiles' left (even) and right (odd) columns.
          float* left = work.outputs.get() + (2 * i) * plan.max_tiles() + first_tile;
          float* right = left + plan.max_tiles();
          if (2 * tile_row + i >= g.P) {
            std::fill(left, left + plan.tile_cols, 0.0f);
            std::fill(right, right + plan.tile_cols, 0.0f);
            continue;
          }
          const float* row = grad_y + ((n * g.K + k) * g.P + 2 * tile_row + i) * g.Q;
          for (std::int64_t j = 0; j < even_columns; ++j) {
            left[j] = row[2 * j];
            right[j] = row[2 * j + 1];
          }
          if (g.Q % 2 == 1) {
            left[even_columns] = row[g.Q - 1];
            right[even_columns] = 0.0f;
          }
        }
    float* products = work.products.get() + k * tiles;
    over_lanes(tiles, [&](std::int64_t t, auto lanes) {
      using V = decltype(lanes);
      V dy[4], m[kPoints];
      for (std::int64_t i = 0; i < 4; ++i)
        dy[i] = load<V>(work.outputs.get() + i * plan.max_tiles() + t);
      transform_output_adjoint(dy, m);
      for (std::int64_t point = 0; point < kPoints; ++point)
        store(products + point * g.K * tiles + t, m[point]);
    });
  }
}

// The forward pass on transformed filters u [16][K][C] (Note [Winograd F(2×2, 3×3)]).
template <typename Tiling>
void winograd_forward(const Conv2dGeometry& g, const float* x, const float* u, const float* bias,
                      const Conv2dEpilogue& epilogue, float* y) {
  constexpr std::int64_t kPoints = Tiling::kPoints;
  const TilePlan plan = plan_tiles<Tiling>(g);
  const std::int64_t blocks = block_count(g, plan);
#pragma omp parallel if (use_threads(g, blocks))
  {
    Workspace<Tiling> work(g, plan);
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t index = 0; index < blocks; ++index) {
      const TileBlock block = block_at(g, plan, index);
      const std::int64_t tiles = block_tiles(plan, block);
      transform_block_input(g, plan, x, block, tiles, work);
      GemmGeometry product;
      product.M = g.K, product.N = tiles, product.K = g.C;
      product.lda = g.C, product.ldb = tiles, product.ldc = tiles;
      for (std::int64_t point = 0; point < kPoints; ++point)
        gemm(product, 1.0f, u + point * g.K * g.C, work.transformed.get() + point * g.C * tiles, 0.0f,
             work.products.get() + point * g.K * tiles);
      transform_block_output(g, plan, bias, epilogue, block, tiles, work, y);
    }
  }
}

// The forward on filters w, transformed first: filter (row, col) of u starts at w + row·row_stride +
// col·col_stride and is turned by 180° when `turn` (Note [input gradient by Winograd]).
template <typename Tiling>
void transform_and_run_forward(const Conv2dGeometry& g, const float* x, const float* w,
                               std::int64_t row_stride, std::int64_t col_stride, bool turn, const float* bias,
                               const Conv2dEpilogue& epilogue, float* y) {
  std::vector<float> u(static_cast<std::size_t>(Tiling::kPoints * g.K * g.C));
  transform_filters<Tiling>(w, g.K, g.C, row_stride, col_stride, turn, u.data());
  winograd_forward<Tiling>(g, x, u.data(), bias, epilogue, y);
}

void run_forward(const Conv2dGeometry& g, const float* x, const float* w, std::int64_t row_stride,
                 std::int64_t col_stride, bool turn, const float* bias, const Conv2dEpilogue& epilogue,
                 float* y) {
  if (g.C * g.K <= kLargestF4Filters)
    transform_and_run_forward<TilingF4>(g, x, w, row_stride, col_stride, turn, bias, epilogue, y);
  else
    transform_and_run_forward<TilingF2>(g, x, w, row_stride, col_stride, turn, bias, epilogue, y);
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
  // Note [weight gradient by Winograd]; each thread sums its blocks into its own grad_U, then the partials
  // are added and transformed back, split over the output channels.
  constexpr std::int64_t kPoints = TilingF2::kPoints;
  const TilePlan plan = plan_tiles<TilingF2>(g);
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
      Workspace<TilingF2> work(g, plan);
#pragma omp for schedule(static) nowait
      for (std::int64_t index = 0; index < blocks; ++index) {
        const TileBlock block = block_at(g, plan, index);
        const std::int64_t tiles = block_tiles(plan, block);
        transform_block_input(g, plan, x, block, tiles, work);
        transform_block_output_gradient(g, plan, grad_y, block, tiles, work);
        GemmGeometry product;
        product.M = g.K, product.N = g.C, product.K = tiles;
        product.transpose_b = true;
        product.lda = tiles, product.ldb = tiles, product.ldc = g.C;
        for (std::int64_t point = 0; point < kPoints; ++point)
          gemm(product, 1.0f, work.products.get() + point * g.K * tiles,
               work.transformed.get() + point * g.C * tiles, written ? 1.0f : 0.0f,
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
        transform_filter_adjoint(u, filter);
        for (int e = 0; e < 9; ++e)
          scatter(grad_w + (k * g.C + c) * 9 + e, 9, filter[e]);
      });
  }
}

}  // namespace dscope::kernels::cpu
