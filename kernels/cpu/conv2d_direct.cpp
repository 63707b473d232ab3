// conv2d on the CPU by direct convolution, for filters without dilation (see kernels/conv2d.h): the variant
// for layers with few channels, where im2col + GEMM spends as long copying as multiplying.
//
// Note [why direct]: with 16 channels, im2col copies each input value 9 times to build a column matrix
// that the GEMM then reads once per 16 filters, and Eigen's micro-kernel, made for 24 rows, runs a
// 16-filter product at about a third of the machine's peak. A direct convolution reads the input where it
// lies: with stride 1, the values that filter tap (c, r, s) meets along an output row are a contiguous run
// of input row ih = p − pad_h + r, starting at column q − pad_w + s. So an unaligned vector load of that
// row *is* a row of the column matrix, and nothing is copied but one zero-padded copy of the input rows.
// With a stride the runs are strided; splitting each padded row into stride-many phases makes them
// contiguous again (Note [strided rows]). Each output row then needs two input rows copied for half the
// arithmetic of a stride-1 row, so the copies weigh more: on Zen 3 (AVX2) it measured no better than
// im2col + GEMM. On an AVX-512 Xeon, with the stride-2 split done by vector shuffles and the row layout
// worked out once per call (RowCopy), all three passes of ResNet-8's two strided layers beat im2col + GEMM
// (kernels/cpu/conv2d.cpp, Note [variant choice]). The input gradient of a strided convolution scatters
// each output gradient onto a stride-spaced grid; split by the residues of its rows and columns it is
// σ_h·σ_w correlations of stride 1 again (Note [strided input gradient by phases]).
//
// Note [register tile]: the innermost routine (tile) computes Filters output channels × Vectors·L output
// columns of one output row (L = 8 lanes with AVX2, 16 with AVX-512; cpu/float_vector.h), held in
// Filters·Vectors vector registers for the whole depth C·R·S. At each tap it loads Vectors runs of L input
// values and, for each filter, broadcasts one weight and issues Vectors fused multiply-adds. Zen 3 (and an
// AVX-512 Xeon) retires two FMAs a cycle with a latency of four, so at least 8 accumulators are needed. With
// AVX2's 16 registers the two shapes used hold 12 (6 × 2 and 4 × 3 vectors), plus the input runs and one
// broadcast; AVX-512's 32 registers also fit 4 × 4, which suits 16 filters on rows of 64 (one tile of
// filters, one of columns). The weights are packed beforehand so the broadcasts read them in order:
// packed[tile of filters][c][r][s][filter in tile], zero past the last filter. A tile of columns past the
// output's width computes on zero padding and stores only its valid columns. With AVX-512, rows of one or
// two vectors take tiles of two output rows (Note [two-row tiles]).
//
// Note [input gradient by direct convolution]: with stride 1, grad_x is the correlation of grad_y with
// every filter turned by 180° and its two channel axes swapped, padded by R − 1 − pad_h and S − 1 − pad_w
// (as in cpu/conv2d_winograd.cpp); the packing does the turning, and the same routine runs.
//
// Note [threads]: work items are (image, block of output rows: Note [rows per item], and for the weight
// gradient Note [weight gradient rows]); each copies the input rows its block reads, zero padded, into a
// buffer of its own, so the inner loop never tests a bound. The forward and the input gradient hand items to
// the threads one at a time: items write disjoint parts of the output, so the result does not depend on the
// number of threads. The weight gradient sums over every item, so the items are cut into a fixed number of
// contiguous chunks, each summed on its own and the chunks' sums added in a fixed order at the end (Note
// [weight gradient chunks]).
#include <omp.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cpu/float_vector.h"

namespace dscope::kernels::cpu {

#if DSCOPE_FLOAT_VECTOR
namespace {

using simd::Floats;
constexpr std::int64_t kLanes = simd::kLanes;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

// Note [rows per item]: an item of the forward or the input gradient copies the σ_h·(rows − 1) + R input
// rows its output rows read, one short run per channel and row, from memory the layer before wrote. Blocks
// of 8 output rows copied 10 rows for 8 (with 3 × 3 filters), in runs a quarter of a 64-column plane long;
// blocks of 32 copy 34 for 32 in runs four times as long. In the ResNet-8 training step (DSCOPE_CPU_PROFILE,
// 8 alternating runs each, medians of the paired ratios), 16 rows against 8: 0.84 to 0.96 on every
// forward and input gradient that runs by direct convolution, the step 1.06 times as fast; 32 against 16:
// 0.92 to 0.97 again; 64 against 32 (whole 64 × 64 images): 1.02 to 1.11, worse. An item is never taller
// than the output, and with few images and short outputs blocks are halved until every thread has
// kItemsPerThread of them, so that a single image still keeps the threads busy.
constexpr std::int64_t kRowsPerItem = 32, kItemsPerThread = 4;

// The work items of the forward and the input gradient over `images` images of `output_rows` rows: blocks
// of `rows_per_block` rows (Note [rows per item]), item i being block i % blocks_per_image of image
// i / blocks_per_image.
struct RowBlocks {
  RowBlocks(std::int64_t images, std::int64_t output_rows) : rows(output_rows) {
    rows_per_block = std::min(kRowsPerItem, rows);
    const std::int64_t wanted = kItemsPerThread * omp_get_max_threads();
    while (rows_per_block > 1 && images * ceil_div(rows, rows_per_block) < wanted)
      rows_per_block = ceil_div(rows_per_block, 2);
    blocks_per_image = ceil_div(rows, rows_per_block);
    items = images * blocks_per_image;
  }

  std::int64_t image(std::int64_t item) const { return item / blocks_per_image; }
  std::int64_t first_row(std::int64_t item) const { return item % blocks_per_image * rows_per_block; }
  std::int64_t end_row(std::int64_t item) const { return std::min(first_row(item) + rows_per_block, rows); }

  std::int64_t rows, rows_per_block, blocks_per_image, items;
};

// Zeroed floats starting on a vector boundary, so that a vector read at a multiple of kLanes never straddles
// two cache lines (with AVX-512 a vector is a whole 64-byte line, and a straddling read costs two).
struct FreeFloats {
  void operator()(float* data) const { std::free(data); }
};
using AlignedFloats = std::unique_ptr<float[], FreeFloats>;

AlignedFloats aligned_zeros(std::int64_t count) {
  const std::int64_t rounded = ceil_div(count, kLanes) * kLanes;
  AlignedFloats buffer(static_cast<float*>(
      std::aligned_alloc(kLanes * sizeof(float), static_cast<std::size_t>(rounded) * sizeof(float))));
  if (!buffer) throw std::bad_alloc();
  std::fill(buffer.get(), buffer.get() + rounded, 0.0f);
  return buffer;
}

// One correlation with stride 1: out[n, k, p, q] = bias[k] + Σ_{c,r,s} in[n, c, p − pad_h + r, q − pad_w + s]
// · weight(k, c, r, s), zero outside the input. The forward is one directly; the input gradient is one with
// turned filters (Note [input gradient by direct convolution]).
struct Correlation {
  std::int64_t N = 0, C = 0, H = 0, W = 0;  // input
  std::int64_t K = 0, R = 0, S = 0;         // filters
  std::int64_t P = 0, Q = 0;                // output
  std::int64_t pad_h = 0, pad_w = 0;
  std::int64_t stride_h = 1, stride_w = 1;
  // Where the input's rows lie: row ih of a channel starts ih·row_pitch floats into the channel's plane,
  // planes `plane` floats apart; 0 means W and H·W (Note [pointwise strided rows]).
  std::int64_t row_pitch = 0, plane = 0;
};

// Note [strided rows]: with stride σ along a row, output column q meets padded input column σ·q + s at
// filter column s, so along a row of outputs the tap reads every σ-th column. The row buffers hold each
// padded input row split into σ phases, phase φ holding padded columns φ, φ + σ, φ + 2σ, ... side by side;
// tap s then reads phase s mod σ from index q + ⌊s / σ⌋ on, a contiguous run again, and the tiles load it
// with the same unaligned vector loads as with stride 1 (where the one phase is the padded row itself).
// Down the rows, output row p reads input rows σ_h·p − pad_h + r, so an item of output rows copies
// σ_h·(rows − 1) + R input rows and output row p of the item starts σ_h·p rows into them.

// Columns of one phase of a padded input row: every output column tile, rounded up to whole vectors, reads
// ⌊(S − 1) / σ⌋ more; rounded up to whole vectors again so that every phase starts on a vector boundary (see
// aligned_zeros).
std::int64_t phase_width(const Correlation& c) {
  return ceil_div(ceil_div(c.Q, kLanes) * kLanes + (c.S - 1) / c.stride_w, kLanes) * kLanes;
}

// Columns of a padded input row in a row buffer: its σ phases (Note [strided rows]).
std::int64_t padded_width(const Correlation& c) {
  return c.stride_w * phase_width(c);
}

// Note [pointwise strided rows]: a 1×1 filter without padding reads only every σ_h-th input row and, along
// a row, only phase 0 of its σ_w phases. Its forward correlates as if the input had only those rows: H
// becomes P, the stride down the rows 1, and the row pitch σ_h·W (Correlation::row_pitch); and a phase that
// no filter column reads is not copied (plan_row_copy). Copying every row and both phases had made direct
// convolution 1.39 and 1.77 times slower than im2col + GEMM on ResNet-8's 1×1 stride-2 shortcuts; with
// only the rows the filter reads, 0.86 and 0.94; with only the phase too, 0.86 and 0.88 (kernels/cpu/
// conv2d.cpp, Note [variant choice]).

// Input rows that `output_rows` consecutive output rows read (Note [strided rows]).
std::int64_t input_rows(const Correlation& c, std::int64_t output_rows) {
  return c.stride_h * (output_rows - 1) + c.R;
}

// Where, in a padded row, the run of filter column s starts for output column 0 (Note [strided rows]):
// tap_offsets[s] for s < S, and for kMaxTapsPastS more, which the weight gradient's last chunk of filter
// columns may read without using.
constexpr std::int64_t kMaxTapsPastS = 2;
std::vector<std::int64_t> tap_offsets(const Correlation& c) {
  std::vector<std::int64_t> offsets(static_cast<std::size_t>(c.S + kMaxTapsPastS));
  const std::int64_t phase = phase_width(c);
  for (std::size_t s = 0; s < offsets.size(); ++s) {
    const auto tap = static_cast<std::int64_t>(s);
    offsets[s] = tap % c.stride_w * phase + tap / c.stride_w;
  }
  return offsets;
}

// How a tile finds the run of filter column s: with stride 1 it starts at s itself, a constant the compiler
// folds into the loads' addresses (looked up in a table instead, ResNet-8's stride-1 layers measured 5-25%
// slower); with a stride, at tap_offsets(c)[s].
struct UnitTaps {
  std::int64_t operator[](std::int64_t s) const { return s; }
};
struct PhaseTaps {
  const std::int64_t* offsets;
  std::int64_t operator[](std::int64_t s) const { return offsets[s]; }
};

// Calls body(taps) with the tap layout of c's rows; `offsets` is tap_offsets(c).
template <typename Body>
void with_taps(const Correlation& c, const std::vector<std::int64_t>& offsets, Body body) {
  if (c.stride_w == 1) return body(UnitTaps{});
  body(PhaseTaps{offsets.data()});
}

// Note [row buffers]: the work items copy rows of a plane into buffers of their own, one short row at a time
// (a 64-wide row is 256 bytes), and the zero padding around the rows is written only once: the buffers come
// from aligned_zeros, and every item writes the same columns of them, so the columns outside stay zero. Perf
// on a ResNet-8 training step: copy_padded_rows' own time, which was mostly those fills, fell from 1.0% to
// 0.4%. The copies stay with memmove: an inline vector copy measured slower, its stores, one column off the
// buffer's vector boundary, each straddling two cache lines.

// Where copy_row puts one input row in a row buffer (Note [strided rows]): for each residue of the input
// column modulo σ, the columns first, first + σ, ... (count of them) go to consecutive columns from `to`,
// in the phase that residue falls in. Worked out once per call, as the divisions cost more than copying a
// short row. The columns written depend on the geometry only (Note [row buffers]). A phase that no filter
// column reads (with S < σ: phase 1 of a 1×1 filter with stride 2) is not copied.
struct RowRun {
  std::int64_t first = 0, to = 0, count = 0;
  bool read = true;
};
struct RowCopy {
  std::int64_t stride = 1;
  std::vector<RowRun> runs;
  // Stride 2: the first `vectors`·L columns of both runs are split by vector shuffles, 2·L input columns
  // at a time, the even ones to `even_to` and the odd ones to `odd_to` (where those are read).
  std::int64_t vectors = 0, even_to = 0, odd_to = 0;
  bool even_read = true, odd_read = true;
};

RowCopy plan_row_copy(const Correlation& c) {
  RowCopy plan;
  plan.stride = c.stride_w;
  const std::int64_t phase = phase_width(c);
  for (std::int64_t first = 0; first < std::min(c.stride_w, c.W); ++first) {
    // Input columns first, first + σ, ... are padded columns first + pad_w + σ·i: one phase, consecutive.
    const std::int64_t padded = first + c.pad_w, index = padded / c.stride_w;
    const std::int64_t count =
        std::clamp(std::min(ceil_div(c.W - first, c.stride_w), phase - index), std::int64_t{0}, c.W);
    // Filter column s reads phase s mod σ (Note [strided rows]).
    const bool read = padded % c.stride_w < c.S;
    plan.runs.push_back({first, padded % c.stride_w * phase + index, count, read});
  }
  if (c.stride_w == 2 && plan.runs.size() == 2) {
    plan.even_to = plan.runs[0].to;
    plan.odd_to = plan.runs[1].to;
    plan.even_read = plan.runs[0].read;
    plan.odd_read = plan.runs[1].read;
    plan.vectors = std::min(plan.runs[0].count, plan.runs[1].count) / kLanes;
  }
  return plan;
}

// One input row (or null for a row of the padding) into a row buffer, as `plan` says.
void copy_row(const RowCopy& plan, const float* source, float* out) {
  if (source == nullptr) {
    for (const RowRun& run : plan.runs)
      std::fill(out + run.to, out + run.to + run.count, 0.0f);
    return;
  }
  if (plan.stride == 1) {
    const RowRun& run = plan.runs.front();
    std::copy(source, source + run.count, out + run.to);
    return;
  }
  for (std::int64_t v = 0; v < plan.vectors; ++v) {
    Floats even, odd;
    simd::deinterleave(source + 2 * v * kLanes, even, odd);
    if (plan.even_read) simd::store(out + plan.even_to + v * kLanes, even);
    if (plan.odd_read) simd::store(out + plan.odd_to + v * kLanes, odd);
  }
  for (const RowRun& run : plan.runs)
    for (std::int64_t i = plan.vectors * kLanes; run.read && i < run.count; ++i)
      out[run.to + i] = source[run.first + i * plan.stride];
}

// The input rows that output rows [p_begin, p_end) read, for every channel of image n, zero padded and split
// into phases: buffer[c][row][column] with `rows_per_channel` rows per channel (at least input_rows of the
// item's). `buffer` comes from aligned_zeros and is written by this function only (Note [row buffers]).
void copy_padded_rows(const Correlation& c, const RowCopy& plan, const float* in, std::int64_t n,
                      std::int64_t p_begin, std::int64_t p_end, std::int64_t rows_per_channel,
                      float* buffer) {
  const std::int64_t width = padded_width(c), rows = input_rows(c, p_end - p_begin);
  const std::int64_t pitch = c.row_pitch != 0 ? c.row_pitch : c.W, plane = c.plane != 0 ? c.plane : c.H * c.W;
  for (std::int64_t channel = 0; channel < c.C; ++channel)
    for (std::int64_t row = 0; row < rows; ++row) {
      const std::int64_t ih = c.stride_h * p_begin + row - c.pad_h;
      const bool padding = ih < 0 || ih >= c.H;
      copy_row(plan, padding ? nullptr : in + (n * c.C + channel) * plane + ih * pitch,
               buffer + (channel * rows_per_channel + row) * width);
    }
}

// Note [fixed filter sizes]: a tile's loops over the filter's rows and columns run R·S times per channel.
// With R and S known only at run time, GCC kept the loop over s (unrolled twice, with a remainder test and
// its counters shuffled between registers at every tap) around 2 input loads, 4 broadcasts and 8 FMAs. With
// them as template arguments, a channel's R·S taps are one straight run of loads and FMAs at constant
// offsets. The sizes direct convolution meets are given their own tiles (3 × 3, and the 2 × 2, 2 × 1, 1 × 2
// and 1 × 1 sub-filters of its stride-2 input gradient, Note [strided input gradient by phases]); any other
// size reads c.R and c.S. bench_conv2d, alternating runs, medians of the paired ratios fixed / run-time:
// forward 0.83-0.93 and input gradient 0.74-0.92 on ResNet-8's five 3 × 3 layers; ResNet-8 inference 0.86,
// its training step 0.96 (bench_training, 6 runs).
constexpr int kAnySize = 0;

// Calls body(std::integral_constant<int, R>{}, std::integral_constant<int, S>{}) with c's filter size, or
// kAnySize for both where that size has no tile of its own (Note [fixed filter sizes]).
template <typename Body>
void with_filter_size(const Correlation& c, const Body& body) {
  using std::integral_constant;
  if (c.R == 3 && c.S == 3) return body(integral_constant<int, 3>{}, integral_constant<int, 3>{});
  if (c.R == 2 && c.S == 2) return body(integral_constant<int, 2>{}, integral_constant<int, 2>{});
  if (c.R == 2 && c.S == 1) return body(integral_constant<int, 2>{}, integral_constant<int, 1>{});
  if (c.R == 1 && c.S == 2) return body(integral_constant<int, 1>{}, integral_constant<int, 2>{});
  if (c.R == 1 && c.S == 1) return body(integral_constant<int, 1>{}, integral_constant<int, 1>{});
  body(integral_constant<int, kAnySize>{}, integral_constant<int, kAnySize>{});
}

// Note [streaming stores]: a plain store to a line that is not in the cache first reads the line from memory
// (to merge the bytes it does not write), so an output written by plain stores crosses the memory bus twice,
// and on a loaded machine a tile waits at its stores for those reads. A streaming (non-temporal) store
// writes whole lines without reading them, but leaves nothing in the cache for the next layer to read. An
// output of several megabytes is out of the caches by the time that layer reads it anyway, so tiles stream
// outputs of at least kStreamingMinBytes. Measured on a 2-core AMD EPYC (Zen 5, AVX-512) in ResNet-8 at
// batch 64 (outputs of 4 to 16 MiB; bench_training, DSCOPE_CPU_PROFILE, 6 alternating runs, medians of
// the paired ratios streaming / plain), while the machine ran a third slower than at its best: inference
// forwards 0.72 (the 3-channel stem), 0.90 to 0.97 (the other 3 × 3 layers but 64 → 64, 0.99), the pass
// 0.93; training step 0.96, with the stem's forward 0.69, the other forwards and input gradients 0.85 to
// 0.92 (the strided input gradients 0.98 and 0.99, their phases not streamed), and the batch norm
// statistics that read the stem's output 1.01. With the machine at its best the pass measured 0.97 and the
// forward of 16 → 16 1.02 in the training step. The strided input gradient's tiles write scratch rows that
// are read back at once (Note [strided input gradient by phases]) and never stream. (The threshold,
// simd::kStreamingMinBytes, serves the Winograd forward's outputs too.)
bool streams_output(const Correlation& c) {
  return c.N * c.K * c.P * c.Q * static_cast<std::int64_t>(sizeof(float)) >= simd::kStreamingMinBytes;
}

// How a tile stores its outputs: clamped at zero (`relu`), and with streaming stores where a vector lies on
// a vector boundary (`streaming`, Note [streaming stores]).
struct Stores {
  bool relu = false, streaming = false;
};

// Note [register tile]: Filters × Vectors·L outputs of row `out_row` (at filter 0 of the tile, column 0 of
// the tile, channel stride `out_channel_stride`), from padded rows `rows` (at channel 0, the output row's
// first tap row, the tile's first column), filter column s reading from `taps[s]` on (Note [strided rows]).
// Stores `filters` ≤ Filters channels and `columns` ≤ Vectors·L columns, each plus the value at the same
// place of `residual_row` (laid out as out_row) when that is not null, stored as `stores` says.
// FilterR × FilterS is c's filter size, or kAnySize (Note [fixed filter sizes]).
template <int Filters, int Rows, int Vectors, int FilterR, int FilterS, typename Taps>
void tile(const Correlation& c, const float* rows, std::int64_t row_stride, std::int64_t channel_stride,
          Taps taps, const float* packed, const float* bias, Stores stores, const float* residual_row,
          float* out_row, std::int64_t out_row_stride, std::int64_t out_channel_stride, std::int64_t filters,
          std::int64_t columns) {
  const std::int64_t R = FilterR == kAnySize ? c.R : FilterR, S = FilterS == kAnySize ? c.S : FilterS;
  const std::int64_t input_row_step = c.stride_h * row_stride;
  // Every loop over f and v is unrolled, so that `sum` is indexed by constants only and lives in registers.
  Floats sum[Filters][Rows][Vectors];
#pragma GCC unroll 8
  for (int f = 0; f < Filters; ++f)
#pragma GCC unroll 2
    for (int j = 0; j < Rows; ++j)
#pragma GCC unroll 4
      for (int v = 0; v < Vectors; ++v)
        sum[f][j][v] = simd::splat(bias != nullptr && f < filters ? bias[f] : 0.0f);
  for (std::int64_t channel = 0; channel < c.C; ++channel)
#pragma GCC unroll 3
    for (std::int64_t r = 0; r < R; ++r) {
      const float* row = rows + channel * channel_stride + r * row_stride;
#pragma GCC unroll 3
      for (std::int64_t s = 0; s < S; ++s, packed += Filters) {
        Floats input[Rows][Vectors];
#pragma GCC unroll 2
        for (int j = 0; j < Rows; ++j)
#pragma GCC unroll 4
          for (int v = 0; v < Vectors; ++v)
            input[j][v] = simd::load(row + j * input_row_step + taps[s] + v * kLanes);
#pragma GCC unroll 8
        for (int f = 0; f < Filters; ++f) {
          const Floats weight = simd::splat(packed[f]);
#pragma GCC unroll 2
          for (int j = 0; j < Rows; ++j)
#pragma GCC unroll 4
            for (int v = 0; v < Vectors; ++v)
              sum[f][j][v] = simd::multiply_add(weight, input[j][v], sum[f][j][v]);
        }
      }
    }
#pragma GCC unroll 8
  for (int f = 0; f < Filters; ++f)
#pragma GCC unroll 2
    for (int j = 0; j < Rows; ++j)
#pragma GCC unroll 4
      for (int v = 0; v < Vectors; ++v) {
        const std::int64_t valid = columns - v * kLanes;
        if (f >= filters || valid <= 0) continue;
        const std::int64_t offset = f * out_channel_stride + j * out_row_stride + v * kLanes;
        float lanes[kLanes] = {};  // a partial vector's residual in, and its result out
        Floats value = sum[f][j][v];
        if (residual_row != nullptr) {
          const float* residual = residual_row + offset;
          if (valid < kLanes) residual = std::copy(residual, residual + valid, lanes) - valid;
          value = simd::add(value, simd::load(residual));
        }
        if (stores.relu) value = simd::relu(value);
        if (valid >= kLanes) {
          if (stores.streaming && simd::is_vector_aligned(out_row + offset))
            simd::store_streaming(out_row + offset, value);
          else
            simd::store(out_row + offset, value);
        } else {
          simd::store(lanes, value);
          std::copy(lanes, lanes + valid, out_row + offset);
        }
      }
}

// The tile of Filters filters with Vectors vectors or fewer, for the last columns of a row.
template <int Filters, int Rows, int Vectors, typename Taps>
void tile_up_to(std::int64_t vectors, const Correlation& c, const float* rows, std::int64_t row_stride,
                std::int64_t channel_stride, Taps taps, const float* packed, const float* bias, Stores stores,
                const float* residual_row, float* out_row, std::int64_t out_row_stride,
                std::int64_t out_channel_stride, std::int64_t filters, std::int64_t columns) {
  if constexpr (Vectors > 1)
    if (vectors < Vectors)
      return tile_up_to<Filters, Rows, Vectors - 1, Taps>(
          vectors, c, rows, row_stride, channel_stride, taps, packed, bias, stores, residual_row, out_row,
          out_row_stride, out_channel_stride, filters, columns);
  with_filter_size(c, [&](auto filter_r, auto filter_s) {
    tile<Filters, Rows, Vectors, decltype(filter_r)::value, decltype(filter_s)::value, Taps>(
        c, rows, row_stride, channel_stride, taps, packed, bias, stores, residual_row, out_row,
        out_row_stride, out_channel_stride, filters, columns);
  });
}

// packed[tile][c][r][s][f] = weight(tile·Filters + f, c, r, s), zero past K (Note [register tile]).
template <typename Weight>
std::unique_ptr<float[]> pack_weights(const Correlation& c, std::int64_t filters_per_tile, Weight weight) {
  const std::int64_t tiles = ceil_div(c.K, filters_per_tile), taps = c.C * c.R * c.S;
  auto packed = std::make_unique<float[]>(tiles * taps * filters_per_tile);
  for (std::int64_t t = 0; t < tiles; ++t)
    for (std::int64_t channel = 0; channel < c.C; ++channel)
      for (std::int64_t r = 0; r < c.R; ++r)
        for (std::int64_t s = 0; s < c.S; ++s)
          for (std::int64_t f = 0; f < filters_per_tile; ++f) {
            const std::int64_t k = t * filters_per_tile + f;
            const std::int64_t tap = (channel * c.R + r) * c.S + s;
            packed[(t * taps + tap) * filters_per_tile + f] = k < c.K ? weight(k, channel, r, s) : 0.0f;
          }
  return packed;
}

// The correlation into `out`, each output plus `residual`'s (of out's shape, or null) and clamped with
// `relu` as it is stored (streamed when large, Note [streaming stores]).
template <int Filters, int Rows, int Vectors, typename Weight>
void correlate(const Correlation& c, const float* in, Weight weight, const float* bias, bool relu,
               const float* residual, float* out) {
  const std::unique_ptr<float[]> packed = pack_weights(c, Filters, weight);
  const std::int64_t taps = c.C * c.R * c.S, filter_tiles = ceil_div(c.K, Filters);
  const RowBlocks blocks(c.N, c.P);
  const std::int64_t width = padded_width(c), rows_per_channel = input_rows(c, blocks.rows_per_block);
  const std::vector<std::int64_t> offsets = tap_offsets(c);
  const RowCopy row_copy = plan_row_copy(c);
  const Stores stores{relu, streams_output(c)};
  constexpr std::int64_t kColumns = Vectors * kLanes;
  with_taps(c, offsets, [&](auto taps_at) {
#pragma omp parallel if (blocks.items > 1)
    {
      const AlignedFloats buffer = aligned_zeros(c.C * rows_per_channel * width);
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t item = 0; item < blocks.items; ++item) {
        const std::int64_t n = blocks.image(item), p_begin = blocks.first_row(item),
                           p_end = blocks.end_row(item);
        copy_padded_rows(c, row_copy, in, n, p_begin, p_end, rows_per_channel, buffer.get());
        for (std::int64_t p = p_begin; p < p_end; p += Rows)
          for (std::int64_t q = 0; q < c.Q; q += kColumns) {
            const std::int64_t columns = std::min(kColumns, c.Q - q);
            const float* rows = buffer.get() + c.stride_h * (p - p_begin) * width + q;
            for (std::int64_t t = 0; t < filter_tiles; ++t) {
              const std::int64_t k = t * Filters;
              const std::int64_t offset = ((n * c.K + k) * c.P + p) * c.Q + q;
              const auto run = [&](auto rows_in_tile) {
                tile_up_to<Filters, decltype(rows_in_tile)::value, Vectors>(
                    ceil_div(columns, kLanes), c, rows, width, rows_per_channel * width, taps_at,
                    packed.get() + t * taps * Filters, bias != nullptr ? bias + k : nullptr, stores,
                    residual != nullptr ? residual + offset : nullptr, out + offset, c.Q, c.P * c.Q,
                    std::min<std::int64_t>(Filters, c.K - k), columns);
              };
              if (p + Rows <= p_end)
                run(std::integral_constant<int, Rows>{});
              else
                run(std::integral_constant<int, 1>{});
            }
          }
        if (stores.streaming) simd::finish_streaming_stores();
      }
    }
  });
}

// Issue slots one output row costs with tiles of `filters` × `vectors`·L: every tile of filters, times the
// FMAs of each column tile, at least 8 per tap even when a narrow last tile holds fewer accumulators, since
// 8 independent FMAs are what hides their latency (Note [register tile]).
std::int64_t row_cost(const Correlation& c, std::int64_t filters, std::int64_t vectors) {
  std::int64_t per_filter_tile = 0;
  for (std::int64_t left = ceil_div(c.Q, kLanes); left > 0; left -= vectors)
    per_filter_tile += std::max<std::int64_t>(filters * std::min(left, vectors), 8);
  return ceil_div(c.K, filters) * per_filter_tile;
}

// Note [two-row tiles]: on rows of one or two vectors (ResNet-8's 16 × 16 and 32 × 32 outputs), a tile of one
// output row holds Filters × Vectors accumulators for Vectors input loads and Filters broadcasts per tap:
// 4 × 2 was 8 FMAs for 6 loads, two of them unaligned and so split across cache lines, which kept the FMA
// units of an AVX-512 Xeon half idle. A tile of two output rows shares each broadcast between them: 8 filters
// × 2 rows × 1 vector and 4 × 2 × 2 hold 16 accumulators, for 10 loads (8 × 2 × 1) or 8 (4 × 2 × 2) per 16
// FMAs. bench_conv2d, 4 alternating runs, medians of the paired ratios against the one-row tiles of Note
// [fixed filter sizes]: forward 0.81 (32 → 32), 0.80 (32 → 64 stride 2), 0.74 (64 → 64 on 16 × 16); the
// stride-1 input gradients 0.82 and 0.79. Wider still measured worse: 12 × 2 × 1 and 6 × 2 × 2 (24
// accumulators) ran 1.8 to 2 times slower on 64 filters, and 8 × 1 × 2 (one row) gave back the gain on
// 32-column rows. On a 2-core Zen 5 (AVX-512), rows of four vectors (ResNet-8's 64 × 64 layers) gained from
// 4 × 2 × 2 too, against the 4 × 4 one-row tile they had taken (bench_training, DSCOPE_CPU_PROFILE, 6 to 8
// alternating runs, medians of the paired ratios): inference forward 0.965 (16 → 16) and 0.91 (the
// 3-channel stem), the pass 0.98; training forward 0.95 and input gradient 0.96 (16 → 16), stem forward
// 0.92; the quick build's 24 → 24 layer 0.997 to 1.014 and its 3 → 24 stem 0.91 to 0.97. A work item's odd
// last row, if any, takes a one-row tile.
template <int Filters, int Vectors, int Rows = 1>
struct TileShape {
  static constexpr int filters = Filters, vectors = Vectors, rows = Rows;
};

// Calls body(TileShape<F, V, rows>{}) with the tile that wastes least on how K and Q divide (with AVX2, 16
// filters and 64 columns suit 4 × 3 vectors, 32 filters and 32 columns 6 × 2). With AVX-512, rows of one,
// two or four vectors take two-row tiles (Note [two-row tiles]), and other rows 4 × 4 where it costs no
// more than the others: on a tie its 16 accumulators beat 6 × 2's 12 (4 loads and 4 broadcasts per 16 FMAs
// against 2 and 6 per 12). The quick build's 24 → 24 layer on 64 × 64 was such a tie (96 slots per row
// either way) before its rows went to 4 × 2 × 2: 4 × 4 against 6 × 2, 8 alternating runs in one process,
// medians 0.98 (forward) and 0.95 (input gradient); in its training step 0.98 and 0.95.
template <typename Body>
void with_tile_shape(const Correlation& c, Body body) {
  const std::int64_t cost_6x2 = row_cost(c, 6, 2), cost_4x3 = row_cost(c, 4, 3);
  if constexpr (simd::kRegisters >= 32) {
    const std::int64_t vectors = ceil_div(c.Q, kLanes);  // Note [two-row tiles]
    if (vectors == 1) return body(TileShape<8, 1, 2>{});
    if (vectors == 2 || vectors == 4) return body(TileShape<4, 2, 2>{});
    if (row_cost(c, 4, 4) <= std::min(cost_6x2, cost_4x3)) return body(TileShape<4, 4>{});
  }
  if (cost_6x2 < cost_4x3) return body(TileShape<6, 2>{});
  body(TileShape<4, 3>{});
}

template <typename Weight>
void correlate_any(const Correlation& c, const float* in, Weight weight, const float* bias, bool relu,
                   const float* residual, float* out) {
  with_tile_shape(c, [&](auto shape) {
    using Shape = decltype(shape);
    correlate<Shape::filters, Shape::rows, Shape::vectors>(c, in, weight, bias, relu, residual, out);
  });
}

// Note [strided input gradient by phases]: along one axis, with stride σ and padding pad, grad_x[h] = Σ_r
// w[r] · grad_y[(h + pad − r) / σ] over the taps r for which the division is exact. Split h by its residue,
// h = σ·i + a: the taps that reach phase a are those with r ≡ a + pad (mod σ), r = r₀ + σ·j, and they read
// grad_y[i + d − j], d = (a + pad − r₀) / σ. So each phase of grad_x is a stride-1 correlation of grad_y
// with the taps of its residue, turned (as in Note [input gradient by direct convolution]) and padded by
// taps − 1 − d, and the same register tile computes it. The σ_h·σ_w phases hold the filter's R·S taps
// between them, so the arithmetic is the forward's; for 3×3, stride 2, padding 1, even rows take filter row
// 1 alone and odd rows filter rows 0 and 2, and likewise for columns. One zero-padded copy of grad_y's rows
// serves every phase: it is padded by the largest of their paddings, and a phase with less starts that much
// further into it. A phase's rows are every σ_h-th row of grad_x and its columns every σ_w-th, so the tile
// writes each column phase of an output row to a scratch row, and the σ_w of them are interleaved into
// grad_x (by vector shuffles for σ_w = 2). A phase that no tap reaches (with a 1×1 filter and stride 2,
// three of the four) is zero.
//
// Note [phase tiles]: a phase's correlation is shallow (with 3×3 filters and stride 2, 1, 2 or 4 taps per
// channel against the forward's 9), so each tile's fixed costs, setting up and storing its accumulators,
// weigh more than in the forward. With AVX-512 the phases take tiles of 8 filters × 2 vectors, 16
// accumulators, where the forward's choice gives ResNet-8's strided layers 4 × 2 (8 accumulators): 8
// alternating runs of bench_conv2d, medians of the paired ratios 0.72 (16 → 32 channels from 64×64) and 0.79
// (32 → 64 from 32×32), and 4 × 4 was slower than 8 × 2 on both. Phases of one vector (the 32 → 64 layer's
// 16 columns) left 8 × 2 at 8 × 1, so they take two rows of a row phase per tile (8 × 2 rows × 1 vector, as
// Note [two-row tiles]): paired ratios 0.97 (8 runs, 2 threads) and 0.89 (4 runs, 1 thread); on the 16 → 32
// layer's 32-column phases, 4 × 2 rows × 2 vectors measured 1.05 against 8 × 2 and was not taken. AVX2's 16
// registers do not hold 16 accumulators besides the inputs, so there the forward's choice stands.

// One axis's phase a: filter taps first_tap + σ·j for j < taps, the padding of its correlation, and how many
// rows (or columns) of grad_x it holds.
struct AxisPhase {
  std::int64_t first_tap = 0, taps = 0, pad = 0, size = 0;
};

std::vector<AxisPhase> axis_phases(std::int64_t extent, std::int64_t filter, std::int64_t pad,
                                   std::int64_t stride) {
  std::vector<AxisPhase> phases(static_cast<std::size_t>(stride));
  for (std::int64_t a = 0; a < stride; ++a) {
    AxisPhase& phase = phases[static_cast<std::size_t>(a)];
    phase.first_tap = (a + pad) % stride;
    phase.taps = phase.first_tap < filter ? (filter - 1 - phase.first_tap) / stride + 1 : 0;
    phase.pad = phase.taps - 1 - (a + pad - phase.first_tap) / stride;
    phase.size = a < extent ? ceil_div(extent - a, stride) : 0;
  }
  return phases;
}

// Whether every phase that taps reach has a padding of at least zero, which the row copies need. A phase
// needs a negative one when its first tap reads past the output gradient row of the same index: 3×3 with
// stride 3 and padding 2 is such a case, and runs im2col + GEMM.
bool phases_supported(const std::vector<AxisPhase>& phases) {
  return std::all_of(phases.begin(), phases.end(),
                     [](const AxisPhase& phase) { return phase.taps == 0 || phase.pad >= 0; });
}

std::int64_t largest_pad(const std::vector<AxisPhase>& phases) {
  std::int64_t pad = 0;
  for (const AxisPhase& phase : phases)
    if (phase.taps > 0) pad = std::max(pad, phase.pad);
  return pad;
}

// How many padded rows (or columns) one output row of any phase reads, from its first in the shared copy.
std::int64_t tap_span(const std::vector<AxisPhase>& phases) {
  const std::int64_t pad = largest_pad(phases);
  std::int64_t span = 1;
  for (const AxisPhase& phase : phases)
    if (phase.taps > 0) span = std::max(span, pad - phase.pad + phase.taps);
  return span;
}

std::int64_t largest_size(const std::vector<AxisPhase>& phases) {
  std::int64_t size = 0;
  for (const AxisPhase& phase : phases)
    size = std::max(size, phase.size);
  return size;
}

// One output row of grad_x from its σ column phases, phases[b][j] going to column σ·j + b.
void merge_column_phases(const float* const* phases, std::int64_t stride, std::int64_t width, float* out) {
  std::int64_t column = 0;
  if (stride == 2)
    for (; column + 2 * kLanes <= width; column += 2 * kLanes)
      simd::interleave(simd::load(phases[0] + column / 2), simd::load(phases[1] + column / 2), out + column);
  for (; column < width; ++column)
    out[column] = phases[column % stride][column / stride];
}

// The input gradient of a strided convolution (Note [strided input gradient by phases]), with tiles of
// Filters × Vectors.
template <int Filters, int Rows, int Vectors>
void correlate_phases(const Conv2dGeometry& g, const float* grad_y, const float* w, float* grad_x) {
  const std::vector<AxisPhase> row_phases = axis_phases(g.H, g.R, g.pad_h, g.stride_h);
  const std::vector<AxisPhase> column_phases = axis_phases(g.W, g.S, g.pad_w, g.stride_w);
  // The shared copy of grad_y's rows: grad_y is the input of these correlations and C of them its channels.
  Correlation source{g.N,
                     g.K,
                     g.P,
                     g.Q,
                     g.C,
                     tap_span(row_phases),
                     tap_span(column_phases),
                     largest_size(row_phases),
                     largest_size(column_phases),
                     largest_pad(row_phases),
                     largest_pad(column_phases)};
  const RowBlocks blocks(g.N, source.P);
  const std::int64_t width = padded_width(source),
                     rows_per_channel = input_rows(source, blocks.rows_per_block);
  const RowCopy row_copy = plan_row_copy(source);
  constexpr std::int64_t kColumns = Vectors * kLanes;
  const std::int64_t scratch_width = ceil_div(source.Q, kColumns) * kColumns;

  // Each phase's correlation (its taps turned) and packed weights, phase (a, b) at a·σ_w + b.
  std::vector<Correlation> phase_correlations;
  std::vector<std::unique_ptr<float[]>> packed;
  for (const AxisPhase& rows : row_phases)
    for (const AxisPhase& columns : column_phases) {
      Correlation phase = source;
      phase.R = rows.taps, phase.S = columns.taps;
      packed.push_back(pack_weights(
          phase, Filters, [&](std::int64_t channel, std::int64_t k, std::int64_t j, std::int64_t l) {
            const std::int64_t r = rows.first_tap + g.stride_h * (rows.taps - 1 - j);
            const std::int64_t s = columns.first_tap + g.stride_w * (columns.taps - 1 - l);
            return w[((k * g.C + channel) * g.R + r) * g.S + s];
          }));
      phase_correlations.push_back(phase);
    }

  const std::int64_t filter_tiles = ceil_div(g.C, Filters);
#pragma omp parallel if (blocks.items > 1)
  {
    const AlignedFloats buffer = aligned_zeros(source.C * rows_per_channel * width);
    // scratch[b][j][f][column]: column phase b of tile row j, filter f. Column phases that no tap reaches
    // are never written and stay zero.
    const AlignedFloats scratch = aligned_zeros(g.stride_w * Rows * Filters * scratch_width);
    std::vector<const float*> scratch_rows(static_cast<std::size_t>(g.stride_w));
    // Rows i .. i + TileRows − 1 of row phase a, from the item's rows starting at i_begin, of image n.
    const auto phase_rows = [&](auto tile_rows, std::int64_t n, std::int64_t i_begin, std::int64_t i,
                                std::int64_t a) {
      constexpr int TileRows = decltype(tile_rows)::value;
      const AxisPhase& rows = row_phases[static_cast<std::size_t>(a)];
      const std::int64_t h = g.stride_h * i + a;
      for (std::int64_t t = 0; t < filter_tiles; ++t) {
        const std::int64_t k = t * Filters, filters = std::min<std::int64_t>(Filters, g.C - k);
        float* out = grad_x + ((n * g.C + k) * g.H + h) * g.W;
        if (rows.taps == 0) {
          for (std::int64_t j = 0; j < TileRows; ++j)
            for (std::int64_t f = 0; f < filters; ++f)
              std::fill_n(out + f * g.H * g.W + j * g.stride_h * g.W, g.W, 0.0f);
          continue;
        }
        for (std::int64_t b = 0; b < g.stride_w; ++b) {
          const AxisPhase& columns = column_phases[static_cast<std::size_t>(b)];
          if (columns.taps == 0) continue;
          const std::size_t phase = static_cast<std::size_t>(a * g.stride_w + b);
          const Correlation& c = phase_correlations[phase];
          const float* first_row =
              buffer.get() + (i - i_begin + source.pad_h - rows.pad) * width + source.pad_w - columns.pad;
          float* scratch_phase = scratch.get() + b * Rows * Filters * scratch_width;
          for (std::int64_t q = 0; q < columns.size; q += kColumns) {
            const std::int64_t count = std::min(kColumns, columns.size - q);
            tile_up_to<Filters, TileRows, Vectors>(
                ceil_div(count, kLanes), c, first_row + q, width, rows_per_channel * width, UnitTaps{},
                packed[phase].get() + t * c.C * c.R * c.S * Filters, nullptr, Stores{}, nullptr,
                scratch_phase + q, Filters * scratch_width, scratch_width, filters, count);
          }
        }
        for (std::int64_t j = 0; j < TileRows; ++j)
          for (std::int64_t f = 0; f < filters; ++f) {
            for (std::int64_t b = 0; b < g.stride_w; ++b)
              scratch_rows[static_cast<std::size_t>(b)] =
                  scratch.get() + ((b * Rows + j) * Filters + f) * scratch_width;
            merge_column_phases(scratch_rows.data(), g.stride_w, g.W,
                                out + f * g.H * g.W + j * g.stride_h * g.W);
          }
      }
    };
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t item = 0; item < blocks.items; ++item) {
      const std::int64_t n = blocks.image(item), i_begin = blocks.first_row(item),
                         i_end = blocks.end_row(item);
      copy_padded_rows(source, row_copy, grad_y, n, i_begin, i_end, rows_per_channel, buffer.get());
      for (std::int64_t i = i_begin; i < i_end; i += Rows)
        for (std::int64_t a = 0; a < g.stride_h; ++a) {
          // Row phases may hold different numbers of rows; the item's last rows of one may be too few.
          const std::int64_t phase_end = std::min(i_end, row_phases[static_cast<std::size_t>(a)].size);
          for (std::int64_t row = i; row < std::min(i + Rows, phase_end);) {
            if (row + Rows <= phase_end && row == i) {
              phase_rows(std::integral_constant<int, Rows>{}, n, i_begin, row, a);
              row += Rows;
            } else {
              phase_rows(std::integral_constant<int, 1>{}, n, i_begin, row, a);
              ++row;
            }
          }
        }
    }
  }
}

// Note [weight gradient tile]: grad_w[k, c, r, s] = Σ_{n,p,q} grad_y[n, k, p, q] · x_padded[n, c, p + r, q +
// s]. For one channel c and filter row r, kGradientFilters filters × kGradientTaps filter columns are summed
// at once, each as L partial sums (one per lane of q) in a register: per L output columns the tile loads the
// 3 input runs, then for each filter its output-gradient run, and issues 3 fused multiply-adds per filter.
// With AVX2, 4 filters: 12 accumulators + 3 runs + 1 gradient are the 16 registers (3 filters leave room to
// spare but measured 15-25% slower: 16 filters make 6 tiles of 3, one of them a third full). With AVX-512's
// 32 registers, 8 filters (24 accumulators) measured 5-10% faster than 4 on an AVX-512 Xeon, once the
// buffers were aligned: unaligned, the 64-byte gradient runs straddled cache lines and the tile ran at
// 100 GFLOP/s instead of 165. The lane sums go to a per-thread [k][c][r][s][lane] buffer after each work
// item, and are added across lanes and threads in a fixed order at the end.
// Each gradient run is loaded once and kept in a register for its 3 FMAs (simd::in_register): GCC folded
// the load into each of them instead, 27 loads to 24 FMAs with AVX-512, which made the tile wait on loads.
// Held once, 16-channel and 32-channel weight gradients measured 13% and 6% faster (bench_conv2d, 5
// alternating runs against the build before, medians 7.32 → 6.38 and 7.49 → 7.03 ms).
constexpr int kGradientFilters = simd::kRegisters >= 32 ? 8 : 4, kGradientTaps = 3;
// Note [weight gradient rows]: a gradient_tile call ends by adding its Filters × Taps vector sums into the
// thread's lane buffer, which for a 32- or 64-channel layer is larger than L1. With items of 8 rows (as the
// forward's were then), a 16-column layer (one vector per row) ran only 8 steps per call between those
// additions. Items of at least kGradientSteps row vectors (all 16 rows there, 32 on 32 columns) measured, in
// 10 alternating runs of bench_conv2d, 15% and 10% faster by the median on ResNet-8's 64→64 and 32→32
// layers, and the same on its 64-column layer, which already had 32 steps; so an item has at least
// kGradientMinRows rows and kGradientSteps row vectors.
constexpr std::int64_t kGradientSteps = 64, kGradientMinRows = 8;
// Note [weight gradient images]: an image with fewer than kGradientSteps row vectors (16 × 16 outputs: 16
// with AVX-512) is too short an item on its own, so an item then takes several whole images, each copied
// into its own slot of the item's buffers, and gradient_tile runs over all of them between two lane-sum
// updates. With that and the tile walking down the rows innermost (gradient_tile), bench_conv2d, 6
// alternating runs, medians of the paired ratios: 0.66 on ResNet-8's 64 → 64 layer (16 × 16), 0.86 on its
// 32 → 64 stride-2 layer, 0.79 on 32 → 32; in the training step (DSCOPE_CPU_PROFILE, 4 runs) 0.83 to 0.90 on
// its four direct weight gradients. Other sizes of item measured worse: 128 steps (the 8 filters' gradient
// rows, 64 KiB, no longer fit L1) 1.23 to 1.44; 32 steps 0.85 on the stride-2 layer but 1.10 on 16 → 16.
// Note [weight gradient chunks]: the items are cut into kGradientChunks contiguous chunks (fewer when there
// are fewer items), handed to the threads one at a time; each chunk's first item stores its lane sums and the
// later ones add to them, the chunk's lanes are then added into its own [K][C·R·S] sums, and the chunks' sums
// are added in order at the end. So the result does not depend on the number of threads or on which thread
// took which chunk, and a thread slowed by another process leaves chunks to the others. With a fixed share
// of the items per thread (schedule(static)), the first to finish had waited for the other: ResNet-8's
// weight gradients gained 1.68-1.84× from a second thread where the forward gained 1.85-1.93×.
constexpr std::int64_t kGradientChunks = 8;

// Output-gradient rows [p_begin, p_end) of image n for every filter, widened with zeros to `width` (whole
// vectors): buffer[k][row][column], `rows_per_filter` rows per filter. `buffer` comes from aligned_zeros and
// is written by this function only, columns [0, Q) (Note [row buffers]).
void copy_gradient_rows(const Correlation& c, const float* grad_y, std::int64_t n, std::int64_t p_begin,
                        std::int64_t p_end, std::int64_t width, std::int64_t rows_per_filter, float* buffer) {
  for (std::int64_t k = 0; k < c.K; ++k)
    for (std::int64_t p = p_begin; p < p_end; ++p)
      std::copy_n(grad_y + ((n * c.K + k) * c.P + p) * c.Q, c.Q,
                  buffer + (k * rows_per_filter + p - p_begin) * width);
}

// The shape of a weight-gradient work item's buffers: `images` images of `rows` output rows of `vectors`
// vectors each (Note [weight gradient images]).
struct GradientItem {
  std::int64_t images = 1, rows = 0, vectors = 0;
  std::int64_t input_image_stride = 0, input_row_stride = 0, grad_image_stride = 0, grad_width = 0;
};

// Note [weight gradient tile]: adds the lane sums of an item's positions to lanes[f][t][L] for
// f < Filters, t < taps, or with `accumulate` false stores them there. `grad` is the buffer at the tile's
// first filter, image 0 and row 0, `input` the padded rows at the channel and filter row r of image 0, output
// row p of image i reading from input + i·input_image_stride + p·input_row_stride, the tile's filter column
// t from tap_layout[first_tap + t] on (Note [strided rows]).
template <int Filters, int Taps, typename TapLayout>
void gradient_tile(const GradientItem& item, const float* grad, std::int64_t grad_filter_stride,
                   const float* input, TapLayout tap_layout, std::int64_t first_tap, std::int64_t taps,
                   float* lanes, std::int64_t lanes_filter_stride, bool accumulate) {
  Floats sum[Filters][Taps];
#pragma GCC unroll 8
  for (int f = 0; f < Filters; ++f)
#pragma GCC unroll 4
    for (int t = 0; t < Taps; ++t)
      sum[f][t] = simd::splat(0.0f);
  // Down the rows innermost: both operands then move by a fixed stride at each step. With the vectors of a
  // row innermost, a 16-column row's one vector left GCC recomputing the Filters + Taps pointers at every
  // step, a third of the tile's instructions.
  for (std::int64_t image = 0; image < item.images; ++image)
    for (std::int64_t v = 0; v < item.vectors; ++v) {
      const float* in_column = input + image * item.input_image_stride + v * kLanes;
      const float* gradient_column = grad + image * item.grad_image_stride + v * kLanes;
      for (std::int64_t row = 0; row < item.rows; ++row) {
        const float* in = in_column + row * item.input_row_stride;
        const float* gradient_run = gradient_column + row * item.grad_width;
        Floats run[Taps];
#pragma GCC unroll 4
        for (int t = 0; t < Taps; ++t)
          run[t] = simd::load(in + tap_layout[first_tap + t]);
#pragma GCC unroll 8
        for (int f = 0; f < Filters; ++f) {
          const Floats gradient = simd::in_register(simd::load(gradient_run + f * grad_filter_stride));
#pragma GCC unroll 4
          for (int t = 0; t < Taps; ++t)
            sum[f][t] = simd::multiply_add(gradient, run[t], sum[f][t]);
        }
      }
    }
#pragma GCC unroll 8
  for (int f = 0; f < Filters; ++f)
#pragma GCC unroll 4
    for (int t = 0; t < Taps; ++t) {
      if (t >= taps) continue;
      float* out = lanes + f * lanes_filter_stride + t * kLanes;
      simd::store(out, accumulate ? simd::add(simd::load(out), sum[f][t]) : sum[f][t]);
    }
}

void correlation_weight_gradient(const Correlation& c, const float* x, const float* grad_y, float* grad_w) {
  constexpr std::int64_t kFilters = kGradientFilters;
  const std::int64_t filter_tiles = ceil_div(c.K, kFilters), taps = c.C * c.R * c.S;
  const std::int64_t vectors = ceil_div(c.Q, kLanes), grad_width = vectors * kLanes;
  // Items of at least kGradientSteps row vectors (Note [weight gradient rows]), of several whole images
  // where one has fewer (Note [weight gradient images]).
  const std::int64_t rows_per_item =
      std::min(c.P, std::max(kGradientMinRows, ceil_div(kGradientSteps, vectors)));
  const std::int64_t images_per_item =
      rows_per_item < c.P ? 1 : std::clamp(ceil_div(kGradientSteps, c.P * vectors), std::int64_t{1}, c.N);
  const std::int64_t input_width = padded_width(c), rows_per_image = input_rows(c, rows_per_item);
  const std::int64_t rows_per_channel = images_per_item * rows_per_image;
  const std::vector<std::int64_t> offsets = tap_offsets(c);
  const RowCopy row_copy = plan_row_copy(c);
  static_assert(kGradientTaps - 1 <= kMaxTapsPastS);
  const std::int64_t row_blocks = ceil_div(c.P, rows_per_item), image_groups = ceil_div(c.N, images_per_item);
  const std::int64_t items = image_groups * row_blocks, grad_rows = images_per_item * rows_per_item;
  const std::int64_t lanes_size = filter_tiles * kFilters * taps * kLanes;
  const std::int64_t chunks = std::min(items, kGradientChunks), weights = c.K * taps;
  std::vector<float> chunk_sums(static_cast<std::size_t>(chunks * weights));
  with_taps(c, offsets, [&](auto taps_at) {
#pragma omp parallel if (items > 1)
    {
      // Every lane is stored by a chunk's first item before any is read (Note [weight gradient chunks]).
      const AlignedFloats lanes = aligned_zeros(lanes_size);
      // A row of slack: the last chunk of a filter row may read past its taps (up to kMaxTapsPastS).
      const AlignedFloats input = aligned_zeros((c.C * rows_per_channel + 1) * input_width);
      // Filters past K stay zero, so a partial filter tile adds nothing for them.
      const AlignedFloats grad = aligned_zeros(filter_tiles * kFilters * grad_rows * grad_width);
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
        const std::int64_t first_item = chunk * items / chunks, end_item = (chunk + 1) * items / chunks;
        for (std::int64_t item = first_item; item < end_item; ++item) {
          const std::int64_t n_begin = item / row_blocks * images_per_item;
          const std::int64_t p_begin = item % row_blocks * rows_per_item;
          const std::int64_t p_end = std::min(p_begin + rows_per_item, c.P);
          const GradientItem shape{std::min(images_per_item, c.N - n_begin),
                                   p_end - p_begin,
                                   vectors,
                                   rows_per_image * input_width,
                                   c.stride_h * input_width,
                                   rows_per_item * grad_width,
                                   grad_width};
          for (std::int64_t image = 0; image < shape.images; ++image) {
            copy_padded_rows(c, row_copy, x, n_begin + image, p_begin, p_end, rows_per_channel,
                             input.get() + image * shape.input_image_stride);
            copy_gradient_rows(c, grad_y, n_begin + image, p_begin, p_end, grad_width, grad_rows,
                               grad.get() + image * shape.grad_image_stride);
          }
          for (std::int64_t t = 0; t < filter_tiles; ++t)
            for (std::int64_t channel = 0; channel < c.C; ++channel)
              for (std::int64_t r = 0; r < c.R; ++r)
                for (std::int64_t s = 0; s < c.S; s += kGradientTaps) {
                  const std::int64_t tap = (channel * c.R + r) * c.S + s;
                  gradient_tile<kGradientFilters, kGradientTaps>(
                      shape, grad.get() + t * kFilters * grad_rows * grad_width, grad_rows * grad_width,
                      input.get() + (channel * rows_per_channel + r) * input_width, taps_at, s,
                      std::min<std::int64_t>(kGradientTaps, c.S - s),
                      lanes.get() + (t * kFilters * taps + tap) * kLanes, taps * kLanes, item != first_item);
                }
        }
        float* sums = chunk_sums.data() + chunk * weights;
        for (std::int64_t weight = 0; weight < weights; ++weight) {
          float total = 0.0f;
          for (std::int64_t lane = 0; lane < kLanes; ++lane)
            total += lanes[weight * kLanes + lane];
          sums[weight] = total;
        }
      }
    }
  });
  for (std::int64_t weight = 0; weight < weights; ++weight) {
    float total = 0.0f;
    for (std::int64_t chunk = 0; chunk < chunks; ++chunk)
      total += chunk_sums[static_cast<std::size_t>(chunk * weights + weight)];
    grad_w[weight] = total;
  }
}

}  // namespace

bool conv2d_direct_supports(const Conv2dGeometry& g) {
  return g.dilation_h == 1 && g.dilation_w == 1 && g.pad_h < g.R && g.pad_w < g.S;
}

void conv2d_forward_direct(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                           float* y, const Conv2dEpilogue& epilogue) {
  assert(conv2d_direct_supports(g));
  Correlation c{g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.P, g.Q, g.pad_h, g.pad_w, g.stride_h, g.stride_w};
  if (g.R == 1 && g.pad_h == 0 && g.stride_h > 1) {  // Note [pointwise strided rows]
    c.row_pitch = g.stride_h * g.W, c.plane = g.H * g.W;
    c.H = g.P, c.stride_h = 1;
  }
  correlate_any(
      c, x,
      [&](std::int64_t k, std::int64_t channel, std::int64_t r, std::int64_t s) {
        return w[((k * g.C + channel) * g.R + r) * g.S + s];
      },
      bias, epilogue.activation == Conv2dActivation::relu, epilogue.residual, y);
}

void conv2d_backward_input_direct(const Conv2dGeometry& g, const float* grad_y, const float* w,
                                  float* grad_x) {
  assert(conv2d_direct_supports(g));
  if (g.stride_h != 1 || g.stride_w != 1) {
    const std::vector<AxisPhase> row_phases = axis_phases(g.H, g.R, g.pad_h, g.stride_h);
    const std::vector<AxisPhase> column_phases = axis_phases(g.W, g.S, g.pad_w, g.stride_w);
    if (!phases_supported(row_phases) || !phases_supported(column_phases))
      return conv2d_backward_input_im2col_gemm(g, grad_y, w, grad_x);
    // For AVX2's tile choice: C outputs on rows as wide as the widest phase.
    [[maybe_unused]] const Correlation widest{
        g.N, g.K, g.P, g.Q, g.C, 1, 1, largest_size(row_phases), largest_size(column_phases)};
    if constexpr (simd::kRegisters >= 32) {
      // Note [phase tiles]
      if (largest_size(column_phases) <= kLanes) return correlate_phases<8, 2, 1>(g, grad_y, w, grad_x);
      correlate_phases<8, 1, 2>(g, grad_y, w, grad_x);
    } else {
      with_tile_shape(widest, [&](auto shape) {
        using Shape = decltype(shape);
        correlate_phases<Shape::filters, 1, Shape::vectors>(g, grad_y, w, grad_x);
      });
    }
    return;
  }
  // Input grad_y [N, K, P, Q], output grad_x [N, C, H, W] (Note [input gradient by direct convolution]).
  const Correlation c{g.N, g.K, g.P, g.Q, g.C, g.R, g.S, g.H, g.W, g.R - 1 - g.pad_h, g.S - 1 - g.pad_w};
  correlate_any(
      c, grad_y,
      [&](std::int64_t channel, std::int64_t k, std::int64_t r, std::int64_t s) {
        return w[((k * g.C + channel) * g.R + (g.R - 1 - r)) * g.S + (g.S - 1 - s)];
      },
      nullptr, false, nullptr, grad_x);
}

void conv2d_backward_weight_direct(const Conv2dGeometry& g, const float* x, const float* grad_y,
                                   float* grad_w) {
  assert(conv2d_direct_supports(g));
  const Correlation c{g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.P, g.Q, g.pad_h, g.pad_w, g.stride_h, g.stride_w};
  correlation_weight_gradient(c, x, grad_y, grad_w);
}

#else  // neither AVX-512 nor AVX2 + FMA: the variant does not exist, and conv2d_direct_supports says so.

bool conv2d_direct_supports(const Conv2dGeometry&) {
  return false;
}

void conv2d_forward_direct(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                           float* y, const Conv2dEpilogue& epilogue) {
  conv2d_forward_im2col_gemm(g, x, w, bias, y, epilogue);
}

void conv2d_backward_input_direct(const Conv2dGeometry& g, const float* grad_y, const float* w,
                                  float* grad_x) {
  conv2d_backward_input_im2col_gemm(g, grad_y, w, grad_x);
}

void conv2d_backward_weight_direct(const Conv2dGeometry& g, const float* x, const float* grad_y,
                                   float* grad_w) {
  conv2d_backward_weight_im2col_gemm(g, x, grad_y, grad_w);
}

#endif

}  // namespace dscope::kernels::cpu
