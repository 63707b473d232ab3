// conv2d on the CPU: the im2col + GEMM variant, over blocks of output columns shared out to the threads, and
// the entry points that choose between it, Winograd (cpu/conv2d_winograd.cpp) and direct convolution
// (cpu/conv2d_direct.cpp), Note [variant choice].
// Contracts in kernels/conv2d.h.
//
// Note [column matrix]: for one image the convolution is a matrix product. Lay the input patches out as
// col[C·R·S, P·Q], where row (c,r,s), column (p,q) holds the input value that filter tap (c,r,s) meets at
// output position (p,q), or zero in the padding (im2col). Then
//   forward          y[K, PQ]          = w[K, CRS] · col
//   backward input   grad_col[CRS, PQ] = wᵀ · grad_y[K, PQ], folded back onto grad_x (col2im)
//   backward weight  grad_w[K, CRS]   += grad_y[K, PQ] · colᵀ
// Each GEMM has the output positions as its N (or, for the weight, its depth), so that y and grad_col come
// out as [channels, positions] slices of NCHW tensors with no transposition after. That is not Eigen's
// favourite shape for 64 filters: turned round, the same product runs up to twice as fast in bench_gemm and
// about 20% faster at this file's block size, and turning this variant round (im2row, then transposing y) is
// left to a measurement on the layers it serves: those Winograd does not (under 64 channels, the stem,
// strided and 1×1 convolutions). A 1×1 filter with stride 1 and no padding needs no im2col: the image itself,
// [C, H·W], is col.
//
// Note [column blocks]: the column matrix of a whole image can be large (64 channels, 3×3, 64×64: 9 MB), so
// it is built one block of columns at a time, in a workspace allocated once per call and per thread, and
// the GEMM reads the block while it is still in the cache. A block is some whole output rows of one image
// or, when an image has few output positions (8×8 = 64), several whole images side by side, because a GEMM
// with N = 64 runs far below Eigen's speed. A GEMM over several images reads or writes an [K, columns]
// matrix that is not a slice of the NKPQ tensor, so that matrix is copied in or out (K·columns floats against
// the GEMM's K·columns·CRS multiply-adds).
//
// Note [threads]: the threads share out blocks. For the forward, whose blocks write disjoint parts of y, they
// take blocks one at a time, so a thread slowed by another process leaves more blocks to the others, and
// even one image keeps every core busy. The input gradient's blocks of one image overlap in col2im, so there
// the threads take whole images (units) one at a time instead. The weight gradient is summed from one
// partial per thread, so each thread takes a fixed, contiguous share of the blocks: the partial sums, and so
// the rounding, are the same on every run with the same number of threads. Inside the parallel region each
// GEMM is single-threaded (Eigen does not thread inside one); a call with a single block or unit runs on one
// thread, and Eigen threads its GEMMs instead.
#include "kernels/conv2d.h"

#include <omp.h>

#include <algorithm>
#include <cassert>
#include <memory>
#include <vector>

#include "kernels/convert.h"
#include "kernels/gemm.h"

namespace dscope::kernels::cpu {
namespace {

// Note [block size]: a column block is written by im2col and read straight back by the GEMM, so it should
// fit a core's share of the cache; and each GEMM packs the whole weight matrix once, so a block should be
// wide enough to amortise that (512 filters of 512×3×3 are 9 MB). Measured on the ResNet shapes of
// bench_conv2d: about 4 MiB of columns, kept between 256 and 1024 columns, is within noise of the best size.
constexpr std::int64_t kBlockBytes = std::int64_t{4} << 20;
constexpr std::int64_t kMinBlockColumns = 256, kMaxBlockColumns = 1024;

// Note [variant choice], below.
constexpr std::int64_t kWinogradMinChannels = 16, kWinogradWeightGradientMinChannels = 32;
constexpr std::int64_t kDirectMaxChannels = 64;

// Note [small convolutions]: below about a million multiply-adds (tens of microseconds of work) a
// convolution runs on one thread. Waking a team costs more than it saves there, and far more when the
// machine is busy: the gradient checks of tiny convolutions took seconds instead of milliseconds.
constexpr std::int64_t kMinParallelMultiplyAdds = std::int64_t{1} << 20;

// Output rows [row_begin, row_end) of images [image_begin, image_end): either one image and some of its
// rows, or several whole images.
struct ColumnBlock {
  std::int64_t image_begin = 0, image_end = 0;
  std::int64_t row_begin = 0, row_end = 0;
};

std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

// The largest block: `images` whole images, or `rows` output rows of one image.
struct BlockShape {
  std::int64_t images = 1, rows = 1;
};

BlockShape block_shape(const Conv2dGeometry& g) {
  const std::int64_t column_bytes =
      static_cast<std::int64_t>(sizeof(float)) * std::max<std::int64_t>(g.C * g.R * g.S, 1);
  const std::int64_t target = std::clamp(kBlockBytes / column_bytes, kMinBlockColumns, kMaxBlockColumns);
  const std::int64_t image_columns = std::max<std::int64_t>(g.P * g.Q, 1);
  if (image_columns >= target) return {1, std::clamp<std::int64_t>(target / g.Q, 1, g.P)};
  // Several images per block, but not so many that a thread is left without a unit.
  const std::int64_t images_per_thread = ceil_div(std::max<std::int64_t>(g.N, 1), omp_get_max_threads());
  return {std::clamp<std::int64_t>(target / image_columns, 1, images_per_thread), g.P};
}

std::int64_t unit_count(const Conv2dGeometry& g, const BlockShape& shape) {
  return ceil_div(g.N, shape.images);
}

// Whether to open a parallel region over `pieces` blocks or units (Note [threads], Note [small
// convolutions]).
bool use_threads(const Conv2dGeometry& g, std::int64_t pieces) {
  return pieces > 1 && g.N * g.K * g.P * g.Q * g.C * g.R * g.S >= kMinParallelMultiplyAdds;
}

std::int64_t max_block_columns(const Conv2dGeometry& g, const BlockShape& shape) {
  return shape.images * shape.rows * g.Q;
}

std::int64_t block_columns(const Conv2dGeometry& g, const ColumnBlock& block) {
  return (block.image_end - block.image_begin) * (block.row_end - block.row_begin) * g.Q;
}

bool is_single_image(const ColumnBlock& block) {
  return block.image_end - block.image_begin == 1;
}

// 1×1 filter, stride 1, no padding: the input image is its own column matrix (Note [column matrix]).
bool is_pointwise(const Conv2dGeometry& g) {
  return g.R == 1 && g.S == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0;
}

// Whether some block needs a column matrix built: a pointwise filter over several-image blocks does.
bool needs_im2col(const Conv2dGeometry& g, const BlockShape& shape) {
  return !is_pointwise(g) || shape.images > 1;
}

// Blocks in all, numbered image by image and, within an image, row block by row block.
std::int64_t block_count(const Conv2dGeometry& g, const BlockShape& shape) {
  return shape.images > 1 ? ceil_div(g.N, shape.images) : g.N * ceil_div(g.P, shape.rows);
}

ColumnBlock block_at(const Conv2dGeometry& g, const BlockShape& shape, std::int64_t index) {
  if (shape.images > 1) {
    const std::int64_t first_image = index * shape.images;
    return {first_image, std::min(g.N, first_image + shape.images), 0, g.P};
  }
  const std::int64_t blocks_per_image = ceil_div(g.P, shape.rows);
  const std::int64_t image = index / blocks_per_image, row = (index % blocks_per_image) * shape.rows;
  return {image, image + 1, row, std::min(g.P, row + shape.rows)};
}

// Calls body(block) for the blocks of one unit (whole images, Note [threads]), in order.
template <typename Body>
void for_each_block_of_unit(const Conv2dGeometry& g, const BlockShape& shape, std::int64_t unit, Body body) {
  if (shape.images > 1) {
    body(block_at(g, shape, unit));
    return;
  }
  for (std::int64_t row = 0; row < g.P; row += shape.rows)
    body(ColumnBlock{unit, unit + 1, row, std::min(g.P, row + shape.rows)});
}

// Where filter column s meets one input row: output column q reads input column q·stride_w + offset, which
// lies inside the row for q in [q_begin, q_end) and in the padding elsewhere.
struct RowTap {
  std::int64_t offset = 0, q_begin = 0, q_end = 0;
};

RowTap row_tap(const Conv2dGeometry& g, std::int64_t s) {
  RowTap tap;
  tap.offset = s * g.dilation_w - g.pad_w;
  tap.q_begin = std::clamp<std::int64_t>(ceil_div(-tap.offset, g.stride_w), 0, g.Q);
  tap.q_end = std::clamp<std::int64_t>(ceil_div(g.W - tap.offset, g.stride_w), tap.q_begin, g.Q);
  return tap;
}

// out[q] = row[q·stride + tap.offset] for q in [tap.q_begin, tap.q_end). Strides 1 and 2, the ones ResNet
// uses, get loops with a constant stride, which the compiler vectorises; a stride known only at run time
// gathers one element at a time (a stride-2 layer spent a fifth of its forward time there).
void gather_row(const float* row, const RowTap& tap, std::int64_t stride, float* out) {
  if (stride == 1) {
    std::copy(row + tap.q_begin + tap.offset, row + tap.q_end + tap.offset, out + tap.q_begin);
  } else if (stride == 2) {
    for (std::int64_t q = tap.q_begin; q < tap.q_end; ++q)
      out[q] = row[2 * q + tap.offset];
  } else {
    for (std::int64_t q = tap.q_begin; q < tap.q_end; ++q)
      out[q] = row[q * stride + tap.offset];
  }
}

// row[q·stride + tap.offset] += in[q] for q in [tap.q_begin, tap.q_end): the adjoint of gather_row.
void scatter_add_row(const float* in, const RowTap& tap, std::int64_t stride, float* row) {
  if (stride == 1) {
    for (std::int64_t q = tap.q_begin; q < tap.q_end; ++q)
      row[q + tap.offset] += in[q];
  } else if (stride == 2) {
    for (std::int64_t q = tap.q_begin; q < tap.q_end; ++q)
      row[2 * q + tap.offset] += in[q];
  } else {
    for (std::int64_t q = tap.q_begin; q < tap.q_end; ++q)
      row[q * stride + tap.offset] += in[q];
  }
}

// Fills col[C·R·S, columns] with the block's patches (Note [column matrix]).
void im2col(const Conv2dGeometry& g, const float* x, const ColumnBlock& block, float* col) {
  for (std::int64_t c = 0; c < g.C; ++c)
    for (std::int64_t r = 0; r < g.R; ++r)
      for (std::int64_t s = 0; s < g.S; ++s) {
        const RowTap tap = row_tap(g, s);
        for (std::int64_t n = block.image_begin; n < block.image_end; ++n) {
          const float* plane = x + (n * g.C + c) * g.H * g.W;
          for (std::int64_t p = block.row_begin; p < block.row_end; ++p, col += g.Q) {
            const std::int64_t ih = p * g.stride_h - g.pad_h + r * g.dilation_h;
            if (ih < 0 || ih >= g.H) {
              std::fill(col, col + g.Q, 0.0f);
              continue;
            }
            std::fill(col, col + tap.q_begin, 0.0f);
            gather_row(plane + ih * g.W, tap, g.stride_w, col);
            std::fill(col + tap.q_end, col + g.Q, 0.0f);
          }
        }
      }
}

// Folds the block's column gradients back onto grad_x: the adjoint of im2col. A block that starts its images
// (row_begin = 0) first clears each of their channel planes, right before adding into it, so the clearing
// happens in cache; the image's later blocks add onto what the earlier ones left.
void col2im(const Conv2dGeometry& g, const float* col, const ColumnBlock& block, float* grad_x) {
  const std::int64_t plane_size = g.H * g.W;
  for (std::int64_t c = 0; c < g.C; ++c) {
    if (block.row_begin == 0) {
      for (std::int64_t n = block.image_begin; n < block.image_end; ++n) {
        float* plane = grad_x + (n * g.C + c) * plane_size;
        std::fill(plane, plane + plane_size, 0.0f);
      }
    }
    for (std::int64_t r = 0; r < g.R; ++r)
      for (std::int64_t s = 0; s < g.S; ++s) {
        const RowTap tap = row_tap(g, s);
        for (std::int64_t n = block.image_begin; n < block.image_end; ++n) {
          float* plane = grad_x + (n * g.C + c) * plane_size;
          for (std::int64_t p = block.row_begin; p < block.row_end; ++p, col += g.Q) {
            const std::int64_t ih = p * g.stride_h - g.pad_h + r * g.dilation_h;
            if (ih < 0 || ih >= g.H) continue;
            scatter_add_row(col, tap, g.stride_w, plane + ih * g.W);
          }
        }
      }
  }
}

// A row-major matrix somewhere in memory: element (i, j) at data[i * ld + j].
template <typename T>
struct MatrixView {
  T* data = nullptr;
  std::int64_t ld = 0;
};

// Where the forward GEMM of a block writes its [K, columns] result: straight into y for a one-image block,
// else into `buffer`, which finish_forward_block copies out (Note [column blocks]).
MatrixView<float> forward_output(const Conv2dGeometry& g, float* y, const ColumnBlock& block, float* buffer) {
  if (is_single_image(block))
    return {y + block.image_begin * g.K * g.P * g.Q + block.row_begin * g.Q, g.P * g.Q};
  return {buffer, block_columns(g, block)};
}

// Adds the bias to a block's forward result, applies the epilogue and, for a several-image block, copies
// it from the buffer into y.
void finish_forward_block(const Conv2dGeometry& g, const MatrixView<float>& result, const float* bias,
                          const Conv2dEpilogue& epilogue, const ColumnBlock& block, float* y) {
  const std::int64_t columns = block_columns(g, block), image_columns = g.P * g.Q;
  if (is_single_image(block)) {
    if (bias == nullptr && epilogue.changes_nothing()) return;
    const std::int64_t first = block.image_begin * g.K * image_columns + block.row_begin * g.Q;
    for (std::int64_t k = 0; k < g.K; ++k) {
      float* row = result.data + k * result.ld;
      const float add = bias != nullptr ? bias[k] : 0.0f;
      for (std::int64_t j = 0; j < columns; ++j)
        row[j] = epilogue.apply(row[j] + add, first + k * image_columns + j);
    }
    return;
  }
  for (std::int64_t n = block.image_begin; n < block.image_end; ++n)
    for (std::int64_t k = 0; k < g.K; ++k) {
      const float* source = result.data + k * result.ld + (n - block.image_begin) * image_columns;
      const std::int64_t first = (n * g.K + k) * image_columns;
      const float add = bias != nullptr ? bias[k] : 0.0f;
      for (std::int64_t j = 0; j < image_columns; ++j)
        y[first + j] = epilogue.apply(source[j] + add, first + j);
    }
}

// A block's [K, columns] slice of grad_y [N, K, P·Q]: a view for a one-image block, else copied into
// `buffer`.
MatrixView<const float> output_gradient(const Conv2dGeometry& g, const float* grad_y,
                                        const ColumnBlock& block, float* buffer) {
  const std::int64_t image_columns = g.P * g.Q, image_size = g.K * image_columns;
  if (is_single_image(block))
    return {grad_y + block.image_begin * image_size + block.row_begin * g.Q, image_columns};
  const std::int64_t columns = block_columns(g, block);
  for (std::int64_t n = block.image_begin; n < block.image_end; ++n)
    for (std::int64_t k = 0; k < g.K; ++k) {
      const float* source = grad_y + n * image_size + k * image_columns;
      std::copy(source, source + image_columns,
                buffer + k * columns + (n - block.image_begin) * image_columns);
    }
  return {buffer, columns};
}

// A block's column matrix: the input itself for a pointwise filter on one image, else im2col into `col`.
MatrixView<const float> input_columns(const Conv2dGeometry& g, const float* x, const ColumnBlock& block,
                                      float* col) {
  if (is_pointwise(g) && is_single_image(block))
    return {x + block.image_begin * g.C * g.H * g.W + block.row_begin * g.Q, g.H * g.W};
  im2col(g, x, block, col);
  return {col, block_columns(g, block)};
}

void assert_consistent(const Conv2dGeometry& g) {
  assert(g.stride_h > 0 && g.stride_w > 0 && g.dilation_h > 0 && g.dilation_w > 0);
  assert(g.pad_h >= 0 && g.pad_w >= 0);
  assert(g.P == conv2d_output_size(g.H, g.R, g.stride_h, g.pad_h, g.dilation_h));
  assert(g.Q == conv2d_output_size(g.W, g.S, g.stride_w, g.pad_w, g.dilation_w));
  (void)g;
}

}  // namespace

void conv2d_forward_im2col_gemm(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                                float* y, const Conv2dEpilogue& epilogue) {
  assert_consistent(g);
  const BlockShape shape = block_shape(g);
  const std::int64_t crs = g.C * g.R * g.S, max_columns = max_block_columns(g, shape),
                     blocks = block_count(g, shape);
#pragma omp parallel if (use_threads(g, blocks))
  {
    const auto col = std::make_unique_for_overwrite<float[]>(needs_im2col(g, shape) ? crs * max_columns : 0);
    const auto output = std::make_unique_for_overwrite<float[]>(shape.images > 1 ? g.K * max_columns : 0);
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t index = 0; index < blocks; ++index) {
      const ColumnBlock block = block_at(g, shape, index);
      const MatrixView<const float> columns = input_columns(g, x, block, col.get());
      const MatrixView<float> out = forward_output(g, y, block, output.get());
      GemmGeometry product;
      product.M = g.K, product.N = block_columns(g, block), product.K = crs;
      product.lda = crs, product.ldb = columns.ld, product.ldc = out.ld;
      gemm(product, 1.0f, w, columns.data, 0.0f, out.data);
      finish_forward_block(g, out, bias, epilogue, block, y);
    }
  }
}

void conv2d_backward_input_im2col_gemm(const Conv2dGeometry& g, const float* grad_y, const float* w,
                                       float* grad_x) {
  assert_consistent(g);
  const BlockShape shape = block_shape(g);
  const std::int64_t crs = g.C * g.R * g.S, max_columns = max_block_columns(g, shape),
                     units = unit_count(g, shape);
  const std::int64_t image_size = g.C * g.H * g.W;
#pragma omp parallel if (use_threads(g, units))
  {
    const auto col = std::make_unique_for_overwrite<float[]>(crs * max_columns);
    const auto gathered = std::make_unique_for_overwrite<float[]>(shape.images > 1 ? g.K * max_columns : 0);
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t unit = 0; unit < units; ++unit)
      for_each_block_of_unit(g, shape, unit, [&](const ColumnBlock& block) {
        const MatrixView<const float> grad_out = output_gradient(g, grad_y, block, gathered.get());
        GemmGeometry product;
        product.M = crs, product.N = block_columns(g, block), product.K = g.K;
        product.transpose_a = true;
        product.lda = crs, product.ldb = grad_out.ld;
        if (is_pointwise(g) && is_single_image(block)) {
          // The column gradient of a pointwise filter is the input gradient itself: written, not folded.
          product.ldc = g.H * g.W;
          gemm(product, 1.0f, w, grad_out.data, 0.0f,
               grad_x + block.image_begin * image_size + block.row_begin * g.Q);
          return;
        }
        product.ldc = product.N;
        gemm(product, 1.0f, w, grad_out.data, 0.0f, col.get());
        col2im(g, col.get(), block, grad_x);
      });
  }
}

void conv2d_backward_weight_im2col_gemm(const Conv2dGeometry& g, const float* x, const float* grad_y,
                                        float* grad_w) {
  assert_consistent(g);
  const BlockShape shape = block_shape(g);
  const std::int64_t crs = g.C * g.R * g.S, max_columns = max_block_columns(g, shape),
                     blocks = block_count(g, shape);
  const std::int64_t weight_size = g.K * crs;
  // Thread 0 sums into grad_w itself, every other thread into its own partial (Note [threads]).
  std::vector<std::unique_ptr<float[]>> partials(static_cast<std::size_t>(omp_get_max_threads()));
#pragma omp parallel if (use_threads(g, blocks))
  {
    const std::size_t thread = static_cast<std::size_t>(omp_get_thread_num());
    if (thread > 0) partials[thread] = std::make_unique_for_overwrite<float[]>(weight_size);
    float* partial = thread > 0 ? partials[thread].get() : grad_w;
    bool written = false;
    {
      const auto col =
          std::make_unique_for_overwrite<float[]>(needs_im2col(g, shape) ? crs * max_columns : 0);
      const auto gathered = std::make_unique_for_overwrite<float[]>(shape.images > 1 ? g.K * max_columns : 0);
#pragma omp for schedule(static) nowait
      for (std::int64_t index = 0; index < blocks; ++index) {
        const ColumnBlock block = block_at(g, shape, index);
        const MatrixView<const float> columns = input_columns(g, x, block, col.get());
        const MatrixView<const float> grad_out = output_gradient(g, grad_y, block, gathered.get());
        GemmGeometry product;
        product.M = g.K, product.N = crs, product.K = block_columns(g, block);
        product.transpose_b = true;
        product.lda = grad_out.ld, product.ldb = columns.ld, product.ldc = crs;
        gemm(product, 1.0f, grad_out.data, columns.data, written ? 1.0f : 0.0f, partial);
        written = true;
      }
    }
    if (!written) std::fill(partial, partial + weight_size, 0.0f);
#pragma omp barrier
    const std::size_t threads = static_cast<std::size_t>(omp_get_num_threads());
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < weight_size; ++i)
      for (std::size_t other = 1; other < threads; ++other)
        grad_w[i] += partials[other][i];
  }
}

// Note [variant choice]: Winograd does 2.25 (F(2×2)) or 4 (F(4×4)) times less arithmetic than direct
// convolution, but its GEMMs have depth C (forward) or K (input gradient) rather than 9·C, and its
// transforms cost as much again as the products at 64 channels, so it pays only with enough channels.
// Measured on the Zen 3 machine with F(2×2), batch 32, 3×3, padding 1, GFLOP/s im2col_gemm → winograd for
// forward / input gradient / weight gradient:
//   16 channels, 64×64:  70 → 64 / 86 → 66 / 70 → 51
//   32 channels, 64×64: 106 → 102 / 118 → 108 / 100 → 84
//   64 channels, 64×64: 126 → 166 / 133 → 149 / 135 → 158
//   128 channels, 32×32: 118 → 202 / 121 → 189 / 114 → 173
//   512 channels, 8×8:   124 → 225 / 122 → 216 / 111 → 195
// (Winograd's figures count the multiply-adds of direct convolution, as bench_conv2d does.)
//
// Direct convolution (cpu/conv2d_direct.cpp) reads the input in place instead of copying it nine times, which
// is what matters with few channels. Measured the same way at batch 64 on a ResNet-8's stride-1 layers,
// GFLOP/s im2col_gemm → direct (Winograd for 64 channels):
//   3 → 16 channels, 64×64:  57 → 67 / – / 46 → 56
//   16 channels, 64×64:  68 → 126 / 68 → 90-116 / 59 → 84
//   32 channels, 32×32:  87 → 110 / 64 → 104 / 72 → 91
//   64 channels, 16×16:  winograd 131 → 132 / 160 → 133 / 118 → 79
//   3 → 64 channels, 64×64 (batch 32):  71 → 57 / 59 → 42 / 60 → 60
// so direct convolution takes the stride-1 filters larger than 1×1 (a 1×1 filter is a plain GEMM already)
// with fewer than 64 channels on both sides, and Winograd keeps the layers from 64 channels. The rule holds
// on an AVX-512 Xeon too, where direct convolution runs 16 lanes wide (cpu/float_vector.h): 16 channels
// 88 → 214 / 102 → 200 / 99 → 113-167, 32 channels 103 → 231 / 129 → 206 / 103 → 106-165, and at 64 channels
// Winograd 172 against direct 174 / 172 against 182 / 133 against 110. With more
// filters than channels (the ResNet-18 stem) a direct tile's depth, 27 taps, is too short to pay for
// loading and storing its accumulators. With F(4×4) in all three passes (the AVX-512 Xeon, bench_conv2d,
// batch 64, 3 runs, ms, winograd against direct): 32 channels on 32×32 5.7-6.8 against 5.5-10.7 / 5.7-7.8
// against 5.9-8.0 / 6.7-9.0 against 6.3-8.6, no better; 16 channels on 64×64 8.7-10.9 against 6.7-6.9 in
// the forward; so the threshold stays at 64 channels.
//
// Strided layers: on the AVX-512 Xeon, ResNet-8's 16 → 32 and 32 → 64 stride-2 layers run their forward
// by direct convolution (cpu/conv2d_direct.cpp, Note [strided rows]) faster than by im2col + GEMM:
// bench_conv2d, 7 interleaved repetitions, medians 4.55 → 3.58 ms and 4.17 → 3.34 ms (earlier runs on the
// same noisy machine: 1.1-1.4× and 0.93-1.4×); the ResNet-8 inference pass ran 8% faster (bench_training,
// 8 alternating runs, median of the paired ratios 0.92). Their weight gradients measured no faster, nor
// did the 1×1 stride-2 shortcuts' forward (inference paired ratio 0.97 with them against 0.92 without),
// and the other strided layers were not measured (the 3-channel 7×7 stem, 64 channels and up). The input
// gradient of those two layers, split into stride-1 correlations by the residues of its rows and columns
// (cpu/conv2d_direct.cpp, Note [strided input gradient by phases]), beats im2col + GEMM too: bench_conv2d,
// 7 interleaved repetitions, medians 6.05 → 3.6-4.2 ms (16 → 32) and 4.75 → 4.2-4.3 ms (32 → 64), while
// the 1×1 shortcuts' ran slower (1.17 → 1.52 and 0.92 → 1.41 ms). By then the weight gradient's tile had
// changed (Note [weight gradient tile] in cpu/conv2d_direct.cpp), and it too ran faster by direct
// convolution in the ResNet-8 training step: DSCOPE_CPU_PROFILE, 6 alternating runs, medians of the paired
// ratios 0.79 (16 → 32, 7.7 → 5.9 ms) and 0.95 (32 → 64). So all three passes take direct convolution for
// strided filters larger than 1×1 with 16 to 63 channels and at most 64 filters.
//
// More filters than that came with the quick build's network (ResNet-8 at width 1.5, whose 48 → 96 stride-2
// layer had gone to im2col + GEMM). In its training step (bench_training resnet8_quick, DSCOPE_CPU_PROFILE,
// 6 alternating runs, medians of the paired ratios direct / im2col): forward 0.67 (10.6 → 6.7 ms), input
// gradient 0.70 (11.1 → 7.4 ms), but weight gradient 1.14 (alone, in a loop over cold buffers, it had
// measured 0.79; the training step is what counts). So the forward and input gradient of strided layers with
// 16 to 63 channels take direct convolution whatever the number of filters, and the weight gradient only up
// to 64 filters.
//
// Once direct convolution had tiles of two output rows for rows of one or two vectors (cpu/conv2d_direct.cpp,
// Note [two-row tiles]), it overtook Winograd on ResNet-8's 64 → 64 layer on 16 × 16 in two passes of the
// three: inference and training steps alternating 4 times, DSCOPE_CPU_PROFILE, medians of the paired
// ratios direct / Winograd 0.85 for the forward (5.9 → 5.0 ms) and 0.93 for the input gradient, but 1.03
// for the weight gradient, which stays with Winograd. So with AVX-512 the forward and input gradient of
// 64 → 64 layers whose rows are one vector go to direct convolution; wider rows and more channels (ResNet-18)
// were not measured and keep Winograd. (Superseded by the faster Winograd below.)
//
// The 1×1 stride-2 shortcuts had stayed with im2col + GEMM (their forward by direct convolution measured
// 1.39 and 1.77 times slower on a 2-core Zen 5, AVX-512): with a 1×1 filter an output is 16 or 32
// multiply-adds deep, and the row copies took every input row and both column phases. Copying only the rows
// and the phase the filter reads (cpu/conv2d_direct.cpp, Note [pointwise strided rows]) turned that
// around: bench_training, DSCOPE_CPU_PROFILE, 8 and 4 alternating runs, medians of the paired ratios
// direct / im2col, ResNet-8's 16 → 32 and 32 → 64 shortcuts 0.86 and 0.88 in inference, 0.89 and 0.88 in
// the training step's forward; their gradients stay with im2col + GEMM. So the forward of a strided 1×1
// filter with 16 to 63 channels takes direct convolution.
//
// Winograd's transforms had cost more than its products at 16 and 32 channels because they copied: each
// input row into a padded buffer, into phase planes, into planes of raw tiles, and back. Done in registers
// straight from the input rows and into the output rows (cpu/conv2d_winograd.cpp, Note [transforms in
// registers], with Note [point stride]), the forward of ResNet-8's 16 → 16 layer on 64 × 64 ran 7.8 → 3.7
// ms (bench_conv2d, 2 threads of a 2-core Zen 5) and Winograd overtook direct convolution from 16 channels:
// bench_conv2d, batch 64, 3 interleaved repetitions, ms Winograd against direct, forward / input gradient /
// weight gradient:
//   16 channels, 64×64:  3.70 against 4.01 / 3.60 against 4.04 / 4.62 against 4.39
//   32 channels, 32×32:  2.95 against 3.53 / 2.98 against 3.39 / 2.83 against 4.01
//   64 channels, 16×16:  2.78 against 3.35 / 2.68 against 3.28 / 2.99 against 4.29
// In whole steps (bench_training, DSCOPE_CPU_PROFILE, medians of the paired ratios Winograd / before, the
// weight gradient of 16 → 16 left to direct convolution): ResNet-8 inference, 6 runs, forwards 0.87 (16 →
// 16), 0.89 (32 → 32), 0.92 (64 → 64, which had been direct on its short rows), the pass 0.92; training
// step, 8 runs, forwards 0.91 / 0.96 / 0.93, input gradients 0.88 / 0.92 / 0.90, the 32 → 32 weight
// gradient 0.78, the step 0.96; the 16 → 16 weight gradient by Winograd had measured 1.16. So Winograd takes
// every 3×3 stride-1 layer with at least 16 channels each way, its weight gradient from 32; direct
// convolution keeps the stride-1 layers below that (the 3-channel stem, the 16 → 16 weight gradient), the
// strided ones and the strided 1×1 forwards as above, all with fewer than 64 channels.
namespace {

constexpr std::int64_t kStridedDirectMinChannels = 16;

bool is_strided(const Conv2dGeometry& g) {
  return g.stride_h > 1 || g.stride_w > 1;
}

}  // namespace

bool conv2d_uses_winograd(const Conv2dGeometry& g, Conv2dPass pass) {
  const std::int64_t min_channels =
      pass == Conv2dPass::weight_gradient ? kWinogradWeightGradientMinChannels : kWinogradMinChannels;
  return conv2d_winograd_supports(g) && g.C >= min_channels && g.K >= min_channels;
}

bool conv2d_uses_direct(const Conv2dGeometry& g, Conv2dPass pass) {
  if (!conv2d_direct_supports(g) || conv2d_uses_winograd(g, pass)) return false;
  if (g.R * g.S == 1)
    return pass == Conv2dPass::forward && is_strided(g) && g.C >= kStridedDirectMinChannels &&
           g.C < kDirectMaxChannels;
  if (g.C >= kDirectMaxChannels) return false;
  if (is_strided(g))
    return g.C >= kStridedDirectMinChannels &&
           (g.K <= kDirectMaxChannels || pass != Conv2dPass::weight_gradient);
  return g.K < kDirectMaxChannels;
}

void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y,
                    const Conv2dEpilogue& epilogue) {
  if (conv2d_uses_winograd(g, Conv2dPass::forward))
    return conv2d_forward_winograd(g, x, w, bias, y, epilogue);
  if (conv2d_uses_direct(g, Conv2dPass::forward)) return conv2d_forward_direct(g, x, w, bias, y, epilogue);
  conv2d_forward_im2col_gemm(g, x, w, bias, y, epilogue);
}

void conv2d_backward_input(const Conv2dGeometry& g, const float* grad_y, const float* w, float* grad_x) {
  if (conv2d_uses_winograd(g, Conv2dPass::input_gradient))
    return conv2d_backward_input_winograd(g, grad_y, w, grad_x);
  if (conv2d_uses_direct(g, Conv2dPass::input_gradient))
    return conv2d_backward_input_direct(g, grad_y, w, grad_x);
  conv2d_backward_input_im2col_gemm(g, grad_y, w, grad_x);
}

void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* grad_y, float* grad_w) {
  if (conv2d_uses_winograd(g, Conv2dPass::weight_gradient))
    return conv2d_backward_weight_winograd(g, x, grad_y, grad_w);
  if (conv2d_uses_direct(g, Conv2dPass::weight_gradient))
    return conv2d_backward_weight_direct(g, x, grad_y, grad_w);
  conv2d_backward_weight_im2col_gemm(g, x, grad_y, grad_w);
}

// ---- bfloat16 activations: widened, the float entry points, rounded ----

void conv2d_forward(const Conv2dGeometry& g, const BFloat16* x, const float* w, const float* bias,
                    BFloat16* y) {
  const std::vector<float> x_values = widened(x, g.N * g.C * g.H * g.W);
  std::vector<float> y_values(static_cast<std::size_t>(g.N * g.K * g.P * g.Q));
  conv2d_forward(g, x_values.data(), w, bias, y_values.data());
  float_to_bfloat16(g.N * g.K * g.P * g.Q, y_values.data(), y);
}

void conv2d_backward_input(const Conv2dGeometry& g, const BFloat16* grad_y, const float* w,
                           BFloat16* grad_x) {
  const std::vector<float> grad_y_values = widened(grad_y, g.N * g.K * g.P * g.Q);
  std::vector<float> grad_x_values(static_cast<std::size_t>(g.N * g.C * g.H * g.W));
  conv2d_backward_input(g, grad_y_values.data(), w, grad_x_values.data());
  float_to_bfloat16(g.N * g.C * g.H * g.W, grad_x_values.data(), grad_x);
}

void conv2d_backward_weight(const Conv2dGeometry& g, const BFloat16* x, const BFloat16* grad_y,
                            float* grad_w) {
  conv2d_backward_weight(g, widened(x, g.N * g.C * g.H * g.W).data(),
                         widened(grad_y, g.N * g.K * g.P * g.Q).data(), grad_w);
}

}  // namespace dscope::kernels::cpu
