// The three passes of a 3×3, stride-1 convolution by Winograd's F(4×4, 3×3) on the GPU, in the FP32 math
// mode: the arithmetic and the plans, apart from the launches (conv2d_winograd.cu) so that a test can run
// them on the host, without a GPU, against the reference convolution (tests/cuda/test_conv_winograd.cu).
//
// Per 4×4 tile of outputs, which reads a 6×6 tile d of the input, the forward pass is
//   y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A
// (the matrices of kernels/cpu/conv2d_winograd.cpp, Lavin and Gray's points 0, ±1, ±2, ∞): 36 products per
// tile and channel pair where the direct sum takes 16 · 9 = 144. Summed over the channels (or tiles), the
// element-wise products of the 36 transformed points ξ become 36 matrix products, which run as one product on
// the shared tiled kernel (implicit_gemm.cuh) split in parts: its reduction index is (ξ, ·), and each part
// is a run of one point's reduction, so the partial products the kernel writes, one per part, are the 36
// products themselves (or their pieces). Then a last kernel transforms them back.
//   forward          M[ξ] (K × tiles) = U[ξ] (K × C) · V[ξ] (C × tiles),   U = G g Gᵀ, V = Bᵀ d B;
//                    y = Aᵀ M A per tile (transform_filter, transform_input_tile, forward_products,
//                    output_tile);
//   input gradient   with stride 1, grad_x is the forward of grad_y with every filter turned by 180° and its
//                    two channel axes swapped, padded by 2 − pad (Note [input gradient by Winograd] in the
//                    CPU's file): the same steps, transform_filter reading the weights turned;
//   weight gradient  M[ξ] (K × C) = U[ξ] (K × tiles) · V[ξ]ᵀ (tiles × C),   U = A dy Aᵀ, V = Bᵀ d B;
//                    grad_w = Gᵀ M G (transform_gradient_tile, transform_input_tile,
//                    weight_gradient_products, filter_gradient), the tiles split in chunks to fill the GPU.
// (cuDNN's FP32 weight gradient runs faster than the GPU's FP32 peak allows a direct product, so it too
// saves multiplications somehow.) The price is memory: the transformed tiles hold 36 values per tile for
// each channel (2.25 times the tensors they come from), and rounding: the coefficients (4, 5, 8, 1/24) add
// error to the sums (the CPU's F(4×4) measures 1.5e-5 to 4e-5 of the outputs' spread,
// kernels/cpu/conv2d_winograd.cpp); FP32 training tolerates far more. Only the FP32 math mode takes this
// path: the tensor-core modes already round their operands to 10 or 8 bits, and the transforms would add to
// that.
//
// Included only by .cu files.
#pragma once

#include <climits>
#include <cstdint>

#include "kernels/conv2d.h"
#include "kernels/cuda/implicit_gemm.cuh"

namespace dscope::kernels::cuda::winograd {

constexpr int kOutputTile = 4, kInputTile = 6, kPoints = kInputTile * kInputTile;

// The tiles of a pass, and how its product splits.
struct Plan {
  int N, C, H, W, K, P, Q, pad_h, pad_w;  // the pass's own geometry (for the input gradient, the turned one)
  int tile_rows, tile_cols, tiles;        // per image, per image, in all
  int depth;          // transformed tiles per channel in memory: tiles, rounded up in the weight gradient
  int splits, chunk;  // the weight gradient's reduction: each point's `depth` tiles in `splits` chunks
  int tile_m;         // the shared kernel's rows per block (64 or 128)
};

// Rows per block of the shared kernel: 64 where the filters fit (as run_implicit_gemm chooses).
inline int tile_rows_for(int K) {
  return K <= 64 ? 64 : 128;
}

inline std::int64_t tiles_of(const Conv2dGeometry& g) {
  return g.N * ((g.P + kOutputTile - 1) / kOutputTile) * ((g.Q + kOutputTile - 1) / kOutputTile);
}

// The tiles of g, unsplit (the forward's plan).
inline Plan plan_tiles(const Conv2dGeometry& g) {
  Plan plan;
  plan.N = static_cast<int>(g.N), plan.C = static_cast<int>(g.C), plan.H = static_cast<int>(g.H);
  plan.W = static_cast<int>(g.W), plan.K = static_cast<int>(g.K), plan.P = static_cast<int>(g.P);
  plan.Q = static_cast<int>(g.Q), plan.pad_h = static_cast<int>(g.pad_h),
  plan.pad_w = static_cast<int>(g.pad_w);
  plan.tile_rows = (plan.P + kOutputTile - 1) / kOutputTile;
  plan.tile_cols = (plan.Q + kOutputTile - 1) / kOutputTile;
  plan.tiles = plan.N * plan.tile_rows * plan.tile_cols;
  plan.depth = plan.tiles, plan.splits = 1, plan.chunk = plan.tiles;
  plan.tile_m = tile_rows_for(plan.K);
  return plan;
}

// The weight gradient's plan: the tiles split so that there are enough blocks for about two per
// multiprocessor, each chunk at least kMinimumChunk tiles (shorter ones spend more on the parts than they
// save) and a whole number of the kernel's slices.
inline Plan plan_weight_gradient(const Conv2dGeometry& g, int multiprocessors) {
  constexpr int kMinimumChunk = 256;
  Plan plan = plan_tiles(g);
  const long long blocks_per_split = static_cast<long long>(kPoints) *
                                     ((plan.K + plan.tile_m - 1) / plan.tile_m) *
                                     ((plan.C + implicit_gemm::kTileN - 1) / implicit_gemm::kTileN);
  long long splits = (2LL * multiprocessors + blocks_per_split - 1) / blocks_per_split;
  if (splits > plan.tiles / kMinimumChunk) splits = plan.tiles / kMinimumChunk;
  if (splits < 1) splits = 1;
  const int slice = implicit_gemm::kSliceK;
  long long chunk = (plan.tiles + splits - 1) / splits;
  chunk = (chunk + slice - 1) / slice * slice;
  plan.splits = static_cast<int>((plan.tiles + chunk - 1) / chunk);
  plan.chunk = static_cast<int>(chunk);
  plan.depth = plan.splits * plan.chunk;
  return plan;
}

// The geometry whose forward pass is g's input gradient (Note [input gradient by Winograd]): grad_y as the
// input, the channel counts swapped, the padding 2 − pad.
inline Conv2dGeometry input_gradient_geometry(const Conv2dGeometry& g) {
  Conv2dGeometry turned = g;
  turned.C = g.K, turned.K = g.C, turned.H = g.P, turned.W = g.Q, turned.P = g.H, turned.Q = g.W;
  turned.pad_h = 2 - g.pad_h, turned.pad_w = 2 - g.pad_w;
  return turned;
}

// ---- Where it runs ----------------------------------------------------------------------------------------
// Scratch memory for one call is capped at kMaxTransformedBytes (past that, the direct product, which needs
// none, runs instead), and every index of the transformed tensors must be within the kernels' 32 bits.
constexpr std::int64_t kMaxTransformedBytes = std::int64_t{2} << 30;

inline bool transformed_fit(std::int64_t largest, std::int64_t total) {
  return largest <= INT_MAX && total * static_cast<std::int64_t>(sizeof(float)) <= kMaxTransformedBytes;
}

// 3×3 filters, stride 1, no dilation, and something to compute.
inline bool shape_fits(const Conv2dGeometry& g) {
  return g.R == 3 && g.S == 3 && g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 &&
         g.dilation_w == 1 && g.N >= 1 && g.C >= 1 && g.K >= 1 && g.P >= 1 && g.Q >= 1;
}

// The forward pass of g: V (36 · C · tiles), the products (36 · K · tiles), U (36 · K · C).
inline bool forward_fits(const Conv2dGeometry& g) {
  if (!shape_fits(g)) return false;
  const std::int64_t tiles = tiles_of(g), widest = g.C > g.K ? g.C : g.K;
  return transformed_fit(kPoints * widest * tiles, kPoints * ((g.C + g.K) * tiles + g.K * g.C));
}

// The input gradient of g, as the forward of input_gradient_geometry(g) (padding at most 2).
inline bool input_gradient_fits(const Conv2dGeometry& g) {
  return g.pad_h <= 2 && g.pad_w <= 2 && shape_fits(g) && forward_fits(input_gradient_geometry(g));
}

// The weight gradient of g: U (36 · K · depth) and V (36 · C · depth); depth is tiles rounded up to whole
// slices in each split, and far fewer than 64 splits are ever chosen.
inline bool weight_gradient_fits(const Conv2dGeometry& g) {
  if (!shape_fits(g)) return false;
  const std::int64_t depth = tiles_of(g) + 64 * implicit_gemm::kSliceK, widest = g.C > g.K ? g.C : g.K;
  return transformed_fit(kPoints * widest * depth, kPoints * (g.C + g.K) * depth);
}

// Whether it pays, by counting the shared kernel's work (not yet measured on a GPU): per 4×4 tile and
// channel pair the direct product does 144 multiply-adds, this way 36 over padded tiles, which the products'
// 128-column blocks (over channels in the weight gradient) and 64-row ones (over filters) fill only from 64
// channels: at 32 the weight gradient's blocks are three quarters padding and do the direct product's work
// again, and the stem's 3 channels would take three times as long. Hence 64 channels and filters, both.
constexpr std::int64_t kMinChannels = 64;
inline bool pays(const Conv2dGeometry& g) {
  return g.C >= kMinChannels && g.K >= kMinChannels;
}

// ---- The transforms, one dimension at a time --------------------------------------------------------------
// v = Bᵀ d, Bᵀ = [[4,0,−5,0,1,0], [0,−4,−4,1,1,0], [0,4,−4,−1,1,0], [0,−2,−1,2,1,0], [0,2,−1,−2,1,0],
// [0,4,0,−5,0,1]]; d is 6 values `stride` apart, v 6 values `stride` apart.
__host__ __device__ inline void input_points(const float* d, float* v, int stride) {
  const float d0 = d[0], d1 = d[stride], d2 = d[2 * stride], d3 = d[3 * stride], d4 = d[4 * stride],
              d5 = d[5 * stride];
  v[0] = 4.0f * d0 - 5.0f * d2 + d4;
  v[stride] = -4.0f * (d1 + d2) + d3 + d4;
  v[2 * stride] = 4.0f * (d1 - d2) - d3 + d4;
  v[3 * stride] = 2.0f * (d3 - d1) - d2 + d4;
  v[4 * stride] = 2.0f * (d1 - d3) - d2 + d4;
  v[5 * stride] = 4.0f * d1 - 5.0f * d3 + d5;
}

// u = A y, A = (Aᵀ)ᵀ with Aᵀ = [[1,1,1,1,1,0], [0,1,−1,2,−2,0], [0,1,1,4,4,0], [0,1,−1,8,−8,1]]: the adjoint
// of the forward's output transform; y is 4 values, u 6, each `stride` apart.
__host__ __device__ inline void gradient_points(const float* y, float* u, int stride) {
  const float y0 = y[0], y1 = y[stride], y2 = y[2 * stride], y3 = y[3 * stride];
  const float even = y0 + y2, odd = y1 + y3, even_4 = y0 + 4.0f * y2, odd_8 = 2.0f * y1 + 8.0f * y3;
  u[0] = y0;
  u[stride] = even + odd;
  u[2 * stride] = even - odd;
  u[3 * stride] = even_4 + odd_8;
  u[4 * stride] = even_4 - odd_8;
  u[5 * stride] = y3;
}

// g = Gᵀ m, G = [[¼,0,0], [−⅙,−⅙,−⅙], [−⅙,⅙,−⅙], [1/24,1/12,⅙], [1/24,−1/12,⅙], [0,0,1]]: the adjoint of the
// forward's filter transform; m is 6 values, g 3, each `stride` apart.
__host__ __device__ inline void filter_taps(const float* m, float* g, int stride) {
  const float m0 = m[0], m1 = m[stride], m2 = m[2 * stride], m3 = m[3 * stride], m4 = m[4 * stride],
              m5 = m[5 * stride];
  const float sum_12 = m1 + m2, sum_34 = m3 + m4;
  g[0] = 0.25f * m0 - sum_12 / 6.0f + sum_34 / 24.0f;
  g[stride] = (m2 - m1) / 6.0f + (m3 - m4) / 12.0f;
  g[2 * stride] = (sum_34 - sum_12) / 6.0f + m5;
}

// u = G g (the forward's filter transform); g is 3 values, u 6, each `stride` apart.
__host__ __device__ inline void filter_points(const float* g, float* u, int stride) {
  const float g0 = g[0], g1 = g[stride], g2 = g[2 * stride];
  const float outer = g0 + g2, outer_24 = g0 / 24.0f + g2 / 6.0f;
  u[0] = 0.25f * g0;
  u[stride] = -(outer + g1) / 6.0f;
  u[2 * stride] = (g1 - outer) / 6.0f;
  u[3 * stride] = outer_24 + g1 / 12.0f;
  u[4 * stride] = outer_24 - g1 / 12.0f;
  u[5 * stride] = g2;
}

// y = Aᵀ m (the forward's output transform); m is 6 values, y 4, each `stride` apart.
__host__ __device__ inline void output_values(const float* m, float* y, int stride) {
  const float m0 = m[0], m1 = m[stride], m2 = m[2 * stride], m3 = m[3 * stride], m4 = m[4 * stride],
              m5 = m[5 * stride];
  const float sum_12 = m1 + m2, difference_12 = m1 - m2, sum_34 = m3 + m4, difference_34 = m3 - m4;
  y[0] = m0 + sum_12 + sum_34;
  y[stride] = difference_12 + 2.0f * difference_34;
  y[2 * stride] = sum_12 + 4.0f * sum_34;
  y[3 * stride] = difference_12 + 8.0f * difference_34 + m5;
}

// ---- The input's tiles, for every pass ------------------------------------------------------------------
// Tile t's image and top-left output position.
struct TileOrigin {
  int n, p0, q0;
};
__host__ __device__ inline TileOrigin tile_origin(const Plan& plan, int t) {
  const int per_image = plan.tile_rows * plan.tile_cols, n = t / per_image, in_image = t % per_image;
  return {n, (in_image / plan.tile_cols) * kOutputTile, (in_image % plan.tile_cols) * kOutputTile};
}

// V[ξ][c][t] = (Bᵀ d B)[ξ] for tile t of channel c, d = x[n, c, p0 − pad_h + i, q0 − pad_w + j] (zero
// outside the image), i, j < 6; zero for t ≥ tiles.
__host__ __device__ inline void transform_input_tile(const Plan& plan, const float* x, int c, int t,
                                                     float* transformed) {
  float d[kPoints] = {};
  if (t < plan.tiles) {
    const TileOrigin o = tile_origin(plan, t);
    const float* plane = x + (static_cast<std::int64_t>(o.n) * plan.C + c) * plan.H * plan.W;
    for (int i = 0; i < kInputTile; ++i) {
      const int h = o.p0 - plan.pad_h + i;
      if (h < 0 || h >= plan.H) continue;
      for (int j = 0; j < kInputTile; ++j) {
        const int w = o.q0 - plan.pad_w + j;
        if (w >= 0 && w < plan.W) d[i * kInputTile + j] = plane[h * plan.W + w];
      }
    }
  }
  float columns[kPoints], v[kPoints];
  for (int j = 0; j < kInputTile; ++j)
    input_points(d + j, columns + j, kInputTile);  // Bᵀ d: down each column
  for (int i = 0; i < kInputTile; ++i)
    input_points(columns + i * kInputTile, v + i * kInputTile, 1);  // (Bᵀ d) B: along each row
  const std::int64_t point_stride = static_cast<std::int64_t>(plan.C) * plan.depth;
  float* out = transformed + static_cast<std::int64_t>(c) * plan.depth + t;
  for (int xi = 0; xi < kPoints; ++xi)
    out[xi * point_stride] = v[xi];
}

// U[ξ][k][t] = (A dy Aᵀ)[ξ] for tile t of filter k, dy = grad_y[n, k, p0 + i, q0 + j] (zero past the
// output's edge), i, j < 4; zero for t ≥ tiles.
__host__ __device__ inline void transform_gradient_tile(const Plan& plan, const float* grad_y, int k, int t,
                                                        float* transformed) {
  constexpr int kOut = kOutputTile;
  float dy[kOut * kOut] = {};
  if (t < plan.tiles) {
    const TileOrigin o = tile_origin(plan, t);
    const float* plane = grad_y + (static_cast<std::int64_t>(o.n) * plan.K + k) * plan.P * plan.Q;
    for (int i = 0; i < kOut && o.p0 + i < plan.P; ++i)
      for (int j = 0; j < kOut && o.q0 + j < plan.Q; ++j)
        dy[i * kOut + j] = plane[(o.p0 + i) * plan.Q + o.q0 + j];
  }
  float columns[kInputTile * kOut], u[kPoints];
  for (int j = 0; j < kOut; ++j)
    gradient_points(dy + j, columns + j, kOut);  // A dy: down each column, 6 rows of 4
  for (int i = 0; i < kInputTile; ++i)
    gradient_points(columns + i * kOut, u + i * kInputTile, 1);  // (A dy) Aᵀ: along each row
  const std::int64_t point_stride = static_cast<std::int64_t>(plan.K) * plan.depth;
  float* out = transformed + static_cast<std::int64_t>(k) * plan.depth + t;
  for (int xi = 0; xi < kPoints; ++xi)
    out[xi * point_stride] = u[xi];
}

// ---- The weight gradient's products ----------------------------------------------------------------------
// M = filters (lines of U), N = channels (lines of V), reduction (ξ, t) over 36 · depth. The product always
// runs split at least once per point, so the kernel writes every block's part to the workspace, part
// z = ξ · splits + s at [z][k][c]; store() is never called.
struct PointProducts {
  int M, N, K;
  implicit_gemm::Gather a, b;
  __host__ __device__ void store(int, int, float) const {}
};

// A transformed operand laid out [ξ][line][i] as a Gather of `lines` lines and depth 36 · `depth`: line l's
// point ξ and index i (a tile of the weight gradient's U and V, a channel of the forward's filters) at
// ξ · lines · depth + l · depth + i.
inline implicit_gemm::Gather transformed_operand(const float* data, int lines, int depth) {
  implicit_gemm::Gather g;
  g.data = data;
  g.line.outer_stride = depth;
  g.depth.inner_extent = FastDivmod(depth), g.depth.inner_stride = 1, g.depth.outer_stride = lines * depth;
  g.contiguous_in_depth = true;
  g.four_in_a_row = depth % 4 == 0 && aligned_16(data);
  return g;
}

inline PointProducts weight_gradient_products(const Plan& plan, const float* transformed_gradient,
                                              const float* transformed_input) {
  PointProducts ops;
  ops.M = plan.K, ops.N = plan.C, ops.K = kPoints * plan.depth;
  ops.a = transformed_operand(transformed_gradient, plan.K, plan.depth);
  ops.b = transformed_operand(transformed_input, plan.C, plan.depth);
  return ops;
}

// ---- The filter gradient ---------------------------------------------------------------------------------
// grad_w[k, c, ·, ·] = Gᵀ M G, M[ξ] = Σ_s products[ξ · splits + s][k][c], the parts added in order.
__host__ __device__ inline void filter_gradient(const Plan& plan, const float* products, int k, int c,
                                                float* grad_w) {
  const std::int64_t part_stride = static_cast<std::int64_t>(plan.K) * plan.C;
  const float* parts = products + static_cast<std::int64_t>(k) * plan.C + c;
  // Splits outermost, so that the loop over the points unrolls and m stays in registers.
  float m[kPoints] = {};
  for (int s = 0; s < plan.splits; ++s)
    for (int xi = 0; xi < kPoints; ++xi)
      m[xi] += parts[(static_cast<std::int64_t>(xi) * plan.splits + s) * part_stride];
  float columns[3 * kInputTile], taps[9];
  for (int j = 0; j < kInputTile; ++j)
    filter_taps(m + j, columns + j, kInputTile);  // Gᵀ M: down each column, 3 rows of 6
  for (int i = 0; i < 3; ++i)
    filter_taps(columns + i * kInputTile, taps + 3 * i, 1);  // (Gᵀ M) G: along each row
  float* out = grad_w + (static_cast<std::int64_t>(k) * plan.C + c) * 9;
  for (int rs = 0; rs < 9; ++rs)
    out[rs] = taps[rs];
}

// ---- The forward's filters, products and outputs ---------------------------------------------------------
// U[ξ][k][c] = (G g Gᵀ)[ξ] for filter k, channel c: g = w[k, c] (w is [K, C, 3, 3]), or, turned (the input
// gradient: w is then the original [C, K, 3, 3] of the plan's letters), g[r][s] = w[c, k, 2 − r, 2 − s].
__host__ __device__ inline void transform_filter(const Plan& plan, const float* w, bool turned, int k, int c,
                                                 float* transformed) {
  float g[9];
  const float* taps =
      w +
      (turned ? static_cast<std::int64_t>(c) * plan.K + k : static_cast<std::int64_t>(k) * plan.C + c) * 9;
  for (int rs = 0; rs < 9; ++rs)
    g[rs] = taps[turned ? 8 - rs : rs];  // (2 − r)·3 + (2 − s) = 8 − (r·3 + s)
  float columns[kInputTile * 3], u[kPoints];
  for (int j = 0; j < 3; ++j)
    filter_points(g + j, columns + j, 3);  // G g: down each column, 6 rows of 3
  for (int i = 0; i < kInputTile; ++i)
    filter_points(columns + i * 3, u + i * kInputTile, 1);  // (G g) Gᵀ: along each row
  const std::int64_t point_stride = static_cast<std::int64_t>(plan.K) * plan.C;
  float* out = transformed + static_cast<std::int64_t>(k) * plan.C + c;
  for (int xi = 0; xi < kPoints; ++xi)
    out[xi * point_stride] = u[xi];
}

// The forward's products: M = filters (lines of U), N = tiles (lines of V), reduction (ξ, c) over 36 · C,
// in 36 parts of C, one per point: part ξ is M[ξ], at [ξ][k][t]. store() is never called.
inline PointProducts forward_products(const Plan& plan, const float* transformed_filters,
                                      const float* transformed_input) {
  PointProducts ops;
  ops.M = plan.K, ops.N = plan.tiles, ops.K = kPoints * plan.C;
  // U[ξ][k][c]: K lines of depth 36 · C, laid out as the weight gradient's transformed tiles are.
  ops.a = transformed_operand(transformed_filters, plan.K, plan.C);
  // V[ξ][c][t]: line t at t, (ξ, c) at ξ · C · depth + c · depth; the lines run along memory.
  ops.b.data = transformed_input, ops.b.line.outer_stride = 1;
  ops.b.depth.inner_extent = FastDivmod(plan.C), ops.b.depth.inner_stride = plan.depth;
  ops.b.depth.outer_stride = plan.C * plan.depth;
  ops.b.contiguous_in_depth = false;
  return ops;
}

// y[n, k, p0 + i, q0 + j] = (Aᵀ M A)[i][j] (+ bias[k]) for tile t of filter k, within the output.
__host__ __device__ inline void output_tile(const Plan& plan, const float* products, const float* bias, int k,
                                            int t, float* y) {
  const std::int64_t point_stride = static_cast<std::int64_t>(plan.K) * plan.tiles;
  const float* parts = products + static_cast<std::int64_t>(k) * plan.tiles + t;
  float m[kPoints];
  for (int xi = 0; xi < kPoints; ++xi)
    m[xi] = parts[xi * point_stride];
  constexpr int kOut = kOutputTile;
  float columns[kOut * kInputTile], values[kOut * kOut];
  for (int j = 0; j < kInputTile; ++j)
    output_values(m + j, columns + j, kInputTile);  // Aᵀ M: down each column, 4 rows of 6
  for (int i = 0; i < kOut; ++i)
    output_values(columns + i * kInputTile, values + i * kOut, 1);  // (Aᵀ M) A: along each row
  const TileOrigin o = tile_origin(plan, t);
  const float offset = bias != nullptr ? bias[k] : 0.0f;
  float* plane = y + (static_cast<std::int64_t>(o.n) * plan.K + k) * plan.P * plan.Q;
  for (int i = 0; i < kOut && o.p0 + i < plan.P; ++i)
    for (int j = 0; j < kOut && o.q0 + j < plan.Q; ++j)
      plane[(o.p0 + i) * plan.Q + o.q0 + j] = values[i * kOut + j] + offset;
}

// The passes on the current stream (conv2d_winograd.cu), where the matching *_fits(g) holds.
void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y);
void conv2d_backward_input(const Conv2dGeometry& g, const float* grad_y, const float* w, float* grad_x);
void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* grad_y, float* grad_w);

}  // namespace dscope::kernels::cuda::winograd
