// The tiled matrix product every GEMM and convolution pass of the CUDA backend runs on.
//
// A pass is described by an Operands struct: the product's extents M × N with reduction length K, the two
// operands as Gathers (below), and where result (m, n) goes:
//   struct Operands {
//     int M, N, K;
//     Gather a, b;                                           // a: M lines of depth K; b: N lines of depth K
//     __host__ __device__ void store(int m, int n, float sum) const;  // once per m < M, n < N
//   };
// (store and the Gathers' arithmetic run on the host too: tests/cuda/test_conv_operands.cu checks them
// there.)
//
// A Gather says where element (line, k) of an operand lives, as the sum of a part that depends on the line
// only and a part that depends on k only. Each part comes from an Axis: the index is split in mixed radix
// into (outer, middle, inner), and gives a memory offset, a row and a column, each linear in the three.
// The element is at data[line part + k part], and exists only where the two rows add up to a row in
// [0, rows) and the two columns to a column in [0, cols); elsewhere it reads as zero. For a convolution's
// input, a line is an output position (image, p, q) and k a filter tap (channel, r, s): the row is
// p·stride − pad + r·dilation, and the padding is exactly where it falls outside the image. So the im2col
// matrix exists only as the tile being worked on in shared memory ("implicit GEMM"). A plain matrix has one
// row and one column, both 0.
//
// The kernel, for one block's 128 × 128 (or 64 × 128) tile of results:
//   - the reduction is walked 32 at a time; the slices of A and B are copied into shared memory with
//     cp.async (the copy engine fills the padding with zeros itself), three slices in flight, so the loads
//     of the next slices overlap the products of this one;
//   - each of the 256 threads owns a few lines of each operand for the whole walk, so the line part of
//     their addresses is worked out once; the k part costs two multiply-shift divisions (FastDivmod) per
//     k per slice. Where four neighbouring k are neighbours in memory (a weight row, a gradient plane,
//     a pixel's channels in a channels-last copy), they travel as one 16-byte copy: a quarter of the
//     copies and of the address arithmetic;
//   - TF32: slices are stored line by line, 32 values of k and 4 floats of padding per line (144 bytes),
//     so that eight lines start in eight different groups of 4 banks. mma.sync m16n8k8 on the tensor cores,
//     each of 8 warps owning a 64 × 32 (or 32 × 32) block of results; ldmatrix reads a whole 16 × 8
//     fragment of A, or two 8 × 8 of B, in one instruction (the fragments are 8 × 4 blocks of 32-bit
//     values, which ldmatrix moves as 8 × 8 blocks of 16-bit ones); operands are rounded to TF32 as they
//     come out of shared memory;
//   - BF16: the same slices (still float in shared memory); mma.sync m16n8k16 with bf16 operands, each
//     thread reading its pairs of neighbouring k as float2 and rounding them to a bf16 pair as they come
//     out of shared memory; float accumulators, so only the operands lose precision;
//   - exact FP32: slices are stored k by k, and each thread computes an 8 × 8 (or 4 × 8) block of results
//     with FMAs from float4 reads of 4 neighbouring rows and columns.
// When the tiles alone cannot fill the GPU (a weight gradient: 64 × 576 results from a reduction over half a
// million positions), the reduction is split across blocks ("split-K"): each writes its partial product to
// a workspace and a last kernel adds the partials in a fixed order and stores them, so the result does not
// depend on scheduling.
//
// Included only by .cu files.
#pragma once

#include <cstdint>
#include <mutex>

#include "kernels/cuda/fast_divmod.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/settings.h"

namespace dscope::kernels::cuda {

namespace implicit_gemm {

constexpr int kTileN = 128, kSliceK = 32, kStages = 3, kThreads = 256;
constexpr int kLd = kSliceK + 4;      // floats per line of a slice in shared memory (see the bank note)
constexpr int kOutside = -(1 << 30);  // a row or column that fails every bounds check, even added to another

// Where one index of an Axis lands: a memory offset, and the row and column that the bounds check uses.
struct Coordinate {
  int offset, row, col;
};

// An index split as ((outer · middle extent) + middle) · inner extent + inner.
struct Axis {
  FastDivmod inner_extent, middle_extent;
  int outer_stride = 0, middle_stride = 0, inner_stride = 0, offset = 0;
  int row_outer = 0, row_middle = 0,
      row_start = 0;  // row = outer · row_outer + middle · row_middle + row_start
  int col_middle = 0, col_inner = 0,
      col_start = 0;  // col = middle · col_middle + inner · col_inner + col_start

  __host__ __device__ Coordinate at(int index) const {
    int rest, inner, outer, middle;
    inner_extent.divmod(index, rest, inner);
    middle_extent.divmod(rest, outer, middle);
    return {outer * outer_stride + middle * middle_stride + inner * inner_stride + offset,
            outer * row_outer + middle * row_middle + row_start,
            middle * col_middle + inner * col_inner + col_start};
  }
};

struct Gather {
  const float* data;
  Axis line, depth;
  int rows = 1, cols = 1;
  // Which way neighbouring addresses run: along k (a weight row, a gradient plane walked by position) or
  // along the lines (output positions of the input image). The copy loops put neighbouring threads there.
  bool contiguous_in_depth = true;
  // Set only where it holds: every four k from a multiple of 4 are neighbours in memory, 16-byte aligned,
  // all present or all absent (no bounds, or four channels of one pixel of a channels-last tensor), and K is
  // a multiple of 4. Then they travel in one 16-byte copy.
  bool four_in_a_row = false;

  // Whether the element at data[at_line.offset + at_k.offset] exists (else it reads as zero).
  __host__ __device__ bool present(const Coordinate& at_line, const Coordinate& at_k) const {
    return static_cast<unsigned>(at_line.row + at_k.row) < static_cast<unsigned>(rows) &&
           static_cast<unsigned>(at_line.col + at_k.col) < static_cast<unsigned>(cols);
  }
};

// A plain matrix with `stride` elements between lines (k contiguous), or between k (lines contiguous), of
// depth K.
inline Gather matrix(const float* data, int stride, bool contiguous_in_depth, int K) {
  Gather g;
  g.data = data;
  (contiguous_in_depth ? g.line : g.depth).outer_stride = stride;
  (contiguous_in_depth ? g.depth : g.line).outer_stride = 1;
  g.contiguous_in_depth = contiguous_in_depth;
  g.four_in_a_row = contiguous_in_depth && stride % 4 == 0 && K % 4 == 0 && aligned_16(data);
  return g;
}

// ---- Shared-memory layout ----------------------------------------------------------------------------
// A slice of an operand with kLines lines sits in shared memory either line by line (kLineMajor: kLd floats
// per line, the tensor cores' layout) or k by k (kLines + 8 floats per k, the CUDA cores' layout: a thread's
// 4 neighbouring rows or columns are one float4, and the 8 floats of padding spread the copies over the
// banks).
template <int kLines, bool kLineMajor>
__host__ __device__ constexpr int slice_floats() {
  return kLineMajor ? kLines * kLd : kSliceK * (kLines + 8);
}
template <bool kLineMajor>
__host__ __device__ constexpr int slice_index(int line, int kk, int lines) {
  return kLineMajor ? line * kLd + kk : kk * (lines + 8) + line;
}
template <int kTileM, bool kLineMajor>
__host__ __device__ constexpr int stage_floats() {
  return slice_floats<kTileM, kLineMajor>() + slice_floats<kTileN, kLineMajor>();
}
template <int kTileM, bool kLineMajor>
__host__ __device__ constexpr int shared_bytes() {
  return kStages * stage_floats<kTileM, kLineMajor>() * static_cast<int>(sizeof(float));
}

// ---- Copies into shared memory -------------------------------------------------------------------------
// With a source size of 0 nothing is read and the bytes are zero-filled: the address of an absent element
// (in the padding, past the last line) is passed as it comes and never touched.
__device__ inline void copy_async(float* shared, const float* global, bool present) {
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(address), "l"(global),
               "r"(present ? 4 : 0));
}
__device__ inline void copy_async_16(float* shared, const float* global, bool present) {
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(address), "l"(global),
               "r"(present ? 16 : 0));
}
__device__ inline void commit_copies() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int kPending>
__device__ inline void wait_copies() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

// One thread's share of copying slices of an operand with kLines lines: kLines / 32 lines (32 apart), and
// 4 values of k (8 apart), or one run of 4 neighbouring k in a single 16-byte copy when the Gather says
// it may (four_in_a_row, line-major layout only). A warp copies 4 lines at 8 neighbouring k when the
// addresses run along k, else 8 neighbouring lines at 4 k (line-major) or 32 lines at one k (k-major):
// runs of 32 bytes or more, and few lanes to a bank.
template <int kLines, bool kLineMajor>
class SliceCopier {
 public:
  static constexpr int kLinesPerThread = kLines / 32;

  __device__ SliceCopier(const Gather& g, int lines, int first_line)
      : in_fours_(kLineMajor && g.four_in_a_row) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (g.contiguous_in_depth)
      line_base_ = lane / 8 + 4 * warp, k_base_ = in_fours_ ? 4 * (lane % 8) : lane % 8;
    else if (kLineMajor)
      line_base_ = lane % 8 + 8 * (warp % 4), k_base_ = lane / 8 + 4 * (warp / 4);
    else
      line_base_ = lane, k_base_ = warp;
#pragma unroll
    for (int j = 0; j < kLinesPerThread; ++j) {
      const int line = first_line + line_base_ + 32 * j;
      line_[j] = line < lines ? g.line.at(line) : Coordinate{0, kOutside, kOutside};
    }
  }

  // Slice [k0, k0 + kSliceK) ∩ [·, k_end) into `tile`, zeros where nothing is there.
  __device__ void copy(const Gather& g, float* tile, int k0, int k_end) const {
    if (in_fours_) {
      // Four k from a multiple of 4 are neighbours in memory, all present or all absent (four_in_a_row).
      const int k = k0 + k_base_;
      const Coordinate d = k < k_end ? g.depth.at(k) : Coordinate{0, kOutside, kOutside};
#pragma unroll
      for (int j = 0; j < kLinesPerThread; ++j) {
        copy_async_16(&tile[slice_index<kLineMajor>(line_base_ + 32 * j, k_base_, kLines)],
                      g.data + (line_[j].offset + d.offset), g.present(line_[j], d));
      }
      return;
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int kk = k_base_ + 8 * i, k = k0 + kk;
      const Coordinate d = k < k_end ? g.depth.at(k) : Coordinate{0, kOutside, kOutside};
#pragma unroll
      for (int j = 0; j < kLinesPerThread; ++j) {
        copy_async(&tile[slice_index<kLineMajor>(line_base_ + 32 * j, kk, kLines)],
                   g.data + (line_[j].offset + d.offset), g.present(line_[j], d));
      }
    }
  }

 private:
  Coordinate line_[kLinesPerThread];
  int line_base_, k_base_;
  bool in_fours_;
};

// Result (m, n): stored, or written to this block's slice of the split-K workspace.
template <typename Operands>
__device__ void put(const Operands& ops, float* partials, int m, int n, float sum) {
  if (m >= ops.M || n >= ops.N) return;
  if (partials == nullptr)
    ops.store(m, n, sum);
  else
    partials[(static_cast<std::int64_t>(blockIdx.z) * ops.M + m) * ops.N + n] = sum;
}

// ---- TF32 on the tensor cores ----------------------------------------------------------------------------
// The tensor cores read a TF32 operand from the top 19 bits of a float and ignore the other 13. Adding half
// of the last kept bit first rounds to nearest, ties away from zero, as cvt.rna.tf32.f32 does, in one
// integer add (a carry out of the mantissa moves to the next power of two, as rounding up should; a NaN
// whose payload lies only in the 13 ignored bits reads as infinity, as it would without the add).
__device__ inline unsigned to_tf32(unsigned bits) {
  return bits + 0x1000u;
}

// Four 8 × 8 blocks of 16-bit values (here 8 × 4 of 32-bit ones) from shared memory: lanes 8i to 8i + 7
// give the addresses of block i's rows, and lane l receives element (l / 4, l % 4) of each block.
__device__ inline void load_blocks(const float* row, unsigned (&blocks)[4]) {
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(blocks[0]), "=r"(blocks[1]), "=r"(blocks[2]), "=r"(blocks[3])
               : "r"(address));
}

// Warps in a 2 × 4 grid, each owning (kTileM / 2) × 32 results as m16n8 accumulator fragments: with
// g = lane / 4 and t = lane % 4, a fragment's four floats are results (g, 2t), (g, 2t + 1), (g + 8, 2t),
// (g + 8, 2t + 1), for mma.m16n8k8 with .tf32 and mma.m16n8k16 with .bf16 alike.
template <int kTileM>
struct MmaAccumulators {
  static constexpr bool kLineMajor = true;
  static constexpr int kWarpRows = kTileM / 2, kFragmentsM = kWarpRows / 16, kFragmentsN = 4;
  float sum[kFragmentsM][kFragmentsN][4] = {};

  template <typename Operands>
  __device__ void store(const Operands& ops, float* partials, int m0, int n0) const {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
    for (int i = 0; i < kFragmentsM; ++i)
#pragma unroll
      for (int j = 0; j < kFragmentsN; ++j) {
        const int m = m0 + (warp / 4) * kWarpRows + 16 * i + g, n = n0 + (warp % 4) * 32 + 8 * j + 2 * t;
        put(ops, partials, m, n, sum[i][j][0]);
        put(ops, partials, m, n + 1, sum[i][j][1]);
        put(ops, partials, m + 8, n, sum[i][j][2]);
        put(ops, partials, m + 8, n + 1, sum[i][j][3]);
      }
  }
};

// The operand layouts of mma.m16n8k8 with .tf32: A holds (g, t), (g + 8, t), (g, t + 4), (g + 8, t + 4);
// B holds (k t, n g), (k t + 4, n g). Each is one 8 × 4 block per register, which is how load_blocks
// delivers them.
template <int kTileM>
struct TensorCoreTile : MmaAccumulators<kTileM> {
  using Base = MmaAccumulators<kTileM>;
  using Base::kFragmentsM, Base::kFragmentsN, Base::kWarpRows, Base::sum;

  __device__ void multiply(const float* a_tile, const float* b_tile) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    // A's blocks in register order: rows 0-7 and 8-15 at k 0-3, then the same at k 4-7. B's: for the
    // fragment pair (j, j + 1), k 0-3 and 4-7 of fragment j's 8 columns, then of fragment j + 1's.
    const float* a_row =
        a_tile + ((warp / 4) * kWarpRows + lane % 8 + 8 * (lane / 8 % 2)) * kLd + 4 * (lane / 16);
    const float* b_row = b_tile + ((warp % 4) * 32 + lane % 8 + 8 * (lane / 16)) * kLd + 4 * (lane / 8 % 2);
#pragma unroll
    for (int kk = 0; kk < kSliceK; kk += 8) {
      // B's fragments for the whole step, then A's one at a time: fewer registers held than all at once.
      unsigned b[kFragmentsN][2];
#pragma unroll
      for (int j = 0; j < kFragmentsN; j += 2) {
        unsigned blocks[4];
        load_blocks(b_row + 8 * j * kLd + kk, blocks);
        b[j][0] = to_tf32(blocks[0]), b[j][1] = to_tf32(blocks[1]);
        b[j + 1][0] = to_tf32(blocks[2]), b[j + 1][1] = to_tf32(blocks[3]);
      }
#pragma unroll
      for (int i = 0; i < kFragmentsM; ++i) {
        unsigned a[4];
        load_blocks(a_row + 16 * i * kLd + kk, a);
#pragma unroll
        for (int r = 0; r < 4; ++r)
          a[r] = to_tf32(a[r]);
#pragma unroll
        for (int j = 0; j < kFragmentsN; ++j)
          asm volatile(
              "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
              "{%0,%1,%2,%3};\n"
              : "+f"(sum[i][j][0]), "+f"(sum[i][j][1]), "+f"(sum[i][j][2]), "+f"(sum[i][j][3])
              : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[j][0]), "r"(b[j][1]));
      }
    }
  }
};

// ---- BF16 on the tensor cores ----------------------------------------------------------------------------
// Two floats rounded to nearest even as bf16 (8-bit mantissa) and packed into one register, pair.x (the
// element of lower k) in the low half, as mma expects; cvt puts its first source in the high half.
__device__ inline unsigned to_bf16_pair(float2 pair) {
  unsigned packed;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(packed) : "f"(pair.y), "f"(pair.x));
  return packed;
}
__device__ inline unsigned bf16_pair_at(const float* at) {
  return to_bf16_pair(*reinterpret_cast<const float2*>(at));
}

// The operand layouts of mma.m16n8k16 with .bf16 (g = lane / 4, t = lane % 4), each register a pair of
// neighbouring k: A holds rows g, g + 8, g, g + 8 at k 2t, 2t, 2t + 8, 2t + 8; B holds column g at k 2t and
// 2t + 8. In the line-major slices a pair is two neighbouring floats, read as one float2 (lines of kLd = 36
// floats keep it 8-byte aligned; a half-warp's reads meet two to a bank).
template <int kTileM>
struct Bf16TensorCoreTile : MmaAccumulators<kTileM> {
  using Base = MmaAccumulators<kTileM>;
  using Base::kFragmentsM, Base::kFragmentsN, Base::kWarpRows, Base::sum;

  __device__ void multiply(const float* a_tile, const float* b_tile) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const float* a_row = a_tile + ((warp / 4) * kWarpRows + g) * kLd + 2 * t;
    const float* b_row = b_tile + ((warp % 4) * 32 + g) * kLd + 2 * t;
#pragma unroll
    for (int kk = 0; kk < kSliceK; kk += 16) {
      unsigned b[kFragmentsN][2];
#pragma unroll
      for (int j = 0; j < kFragmentsN; ++j) {
        const float* column = b_row + 8 * j * kLd + kk;
        b[j][0] = bf16_pair_at(column), b[j][1] = bf16_pair_at(column + 8);
      }
#pragma unroll
      for (int i = 0; i < kFragmentsM; ++i) {
        const float* rows = a_row + 16 * i * kLd + kk;
        const unsigned a[4] = {bf16_pair_at(rows), bf16_pair_at(rows + 8 * kLd), bf16_pair_at(rows + 8),
                               bf16_pair_at(rows + 8 * kLd + 8)};
#pragma unroll
        for (int j = 0; j < kFragmentsN; ++j)
          asm volatile(
              "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
              "{%0,%1,%2,%3};\n"
              : "+f"(sum[i][j][0]), "+f"(sum[i][j][1]), "+f"(sum[i][j][2]), "+f"(sum[i][j][3])
              : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[j][0]), "r"(b[j][1]));
      }
    }
  }
};

// ---- Exact FP32 on the CUDA cores ------------------------------------------------------------------------
// Slices k by k. Thread (ty, tx) of a 16 × 16 grid computes rows ty·4 + {0..3} of each 64-row half, columns
// tx·4 + {0..3} and 64 + tx·4 + {0..3}: float4 reads, and a warp's reads of one k hit 16 different float4s.
template <int kTileM>
struct CudaCoreTile {
  static constexpr bool kLineMajor = false;
  static constexpr int kHalvesM = kTileM / 64;
  float sum[4 * kHalvesM][8] = {};

  __device__ void multiply(const float* a_tile, const float* b_tile) {
    constexpr int kLdA = kTileM + 8, kLdB = kTileN + 8;
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
    for (int kk = 0; kk < kSliceK; ++kk) {
      float a[4 * kHalvesM], b[8];
#pragma unroll
      for (int h = 0; h < kHalvesM; ++h) {
        const float4 v = *reinterpret_cast<const float4*>(&a_tile[kk * kLdA + 64 * h + ty * 4]);
        a[4 * h] = v.x, a[4 * h + 1] = v.y, a[4 * h + 2] = v.z, a[4 * h + 3] = v.w;
      }
      const float4 b_low = *reinterpret_cast<const float4*>(&b_tile[kk * kLdB + tx * 4]);
      const float4 b_high = *reinterpret_cast<const float4*>(&b_tile[kk * kLdB + 64 + tx * 4]);
      b[0] = b_low.x, b[1] = b_low.y, b[2] = b_low.z, b[3] = b_low.w;
      b[4] = b_high.x, b[5] = b_high.y, b[6] = b_high.z, b[7] = b_high.w;
#pragma unroll
      for (int i = 0; i < 4 * kHalvesM; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j)
          sum[i][j] += a[i] * b[j];
    }
  }

  template <typename Operands>
  __device__ void store(const Operands& ops, float* partials, int m0, int n0) const {
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
    for (int i = 0; i < 4 * kHalvesM; ++i)
#pragma unroll
      for (int j = 0; j < 8; ++j)
        put(ops, partials, m0 + 64 * (i / 4) + ty * 4 + i % 4, n0 + 64 * (j / 4) + tx * 4 + j % 4, sum[i][j]);
  }
};

// ---- The kernel ------------------------------------------------------------------------------------------
template <int kTileM, typename Tile, typename Operands>
__global__ void __launch_bounds__(kThreads, 2) product_kernel(Operands ops, int k_chunk, float* partials) {
  extern __shared__ __align__(16) float shared[];
  const int m0 = blockIdx.y * kTileM, n0 = blockIdx.x * kTileN;
  const int k_begin = blockIdx.z * k_chunk;
  const int k_end = min(ops.K, k_begin + k_chunk);
  const int slices = k_end > k_begin ? (k_end - k_begin + kSliceK - 1) / kSliceK : 0;

  constexpr bool kLineMajor = Tile::kLineMajor;
  const SliceCopier<kTileM, kLineMajor> a_copier(ops.a, ops.M, m0);
  const SliceCopier<kTileN, kLineMajor> b_copier(ops.b, ops.N, n0);
  const auto a_tile = [&](int slice) {
    return shared + (slice % kStages) * stage_floats<kTileM, kLineMajor>();
  };
  const auto b_tile = [&](int slice) { return a_tile(slice) + slice_floats<kTileM, kLineMajor>(); };
  // Every call commits a group, empty past the last slice, so that waiting for "all but the newest
  // kStages − 2 groups" always means "the slice about to be used has arrived".
  const auto start_copy = [&](int slice) {
    if (slice < slices) {
      a_copier.copy(ops.a, a_tile(slice), k_begin + slice * kSliceK, k_end);
      b_copier.copy(ops.b, b_tile(slice), k_begin + slice * kSliceK, k_end);
    }
    commit_copies();
  };

  Tile tile;
#pragma unroll
  for (int slice = 0; slice < kStages - 1; ++slice)
    start_copy(slice);
  for (int slice = 0; slice < slices; ++slice) {
    wait_copies<kStages - 2>();
    // Makes every thread's copies of this slice visible, and says every thread is done with the stage
    // that the next copy overwrites (the one multiplied in the previous iteration).
    __syncthreads();
    start_copy(slice + kStages - 1);
    tile.multiply(a_tile(slice), b_tile(slice));
  }
  tile.store(ops, partials, m0, n0);
}

// ---- Split-K: adding the partial products ----------------------------------------------------------------
template <typename Operands>
__global__ void add_partials_kernel(Operands ops, int splits, const float* partials) {
  const std::int64_t count = static_cast<std::int64_t>(ops.M) * ops.N;
  DSCOPE_GRID_STRIDE_LOOP(at, count) {
    float total = 0.0f;
    for (int split = 0; split < splits; ++split)
      total += partials[split * count + at];
    ops.store(static_cast<int>(at / ops.N), static_cast<int>(at % ops.N), total);
  }
}

int multiprocessor_count();

// How many ways to split the reduction: enough blocks for about two per multiprocessor, each slice of the
// reduction at least kMinimumChunk long (shorter ones spend more on the partials than they save).
struct Split {
  int splits, chunk;
};
Split choose_split(int M, int N, int K, int tile_m);

template <int kTileM, typename Tile, typename Operands>
void launch(const Operands& ops, int splits, int chunk, float* partials, cudaStream_t stream) {
  constexpr int bytes = shared_bytes<kTileM, Tile::kLineMajor>();
  // Over 48 KB of dynamic shared memory must be asked for, once per kernel and device (each device's
  // context has its own copy of the kernel).
  static std::once_flag allowed[kMaxDevices];
  std::call_once(allowed[current_device()], [] {
    DSCOPE_CUDA_CHECK(cudaFuncSetAttribute(product_kernel<kTileM, Tile, Operands>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  });
  const dim3 grid((ops.N + kTileN - 1) / kTileN, (ops.M + kTileM - 1) / kTileM, splits);
  product_kernel<kTileM, Tile, Operands><<<grid, kThreads, bytes, stream>>>(ops, chunk, partials);
}

template <int kTileM, typename Operands>
void run(const Operands& ops, const char* name) {
  const cudaStream_t stream = current_stream();
  const Split split = choose_split(ops.M, ops.N, ops.K, kTileM);
  const Scratch<float> partials(split.splits > 1 ? split.splits * static_cast<std::size_t>(ops.M) * ops.N : 0,
                                stream);
  switch (math_mode()) {
    case MathMode::FP32:
      launch<kTileM, CudaCoreTile<kTileM>>(ops, split.splits, split.chunk, partials.get(), stream);
      break;
    case MathMode::TF32:
      launch<kTileM, TensorCoreTile<kTileM>>(ops, split.splits, split.chunk, partials.get(), stream);
      break;
    case MathMode::BF16:
      launch<kTileM, Bf16TensorCoreTile<kTileM>>(ops, split.splits, split.chunk, partials.get(), stream);
      break;
  }
  check_launch(name);
  if (partials.get() != nullptr) {
    add_partials_kernel<Operands>
        <<<blocks_for(static_cast<std::int64_t>(ops.M) * ops.N), kThreadsPerBlock, 0, stream>>>(
            ops, split.splits, partials.get());
    check_launch(name);
  }
}

}  // namespace implicit_gemm

// Runs the product `ops` describes with the kernel the math mode selects, on 64-row tiles when M is that
// small (half of a 128-row tile would be padding); `name` labels launch errors.
template <typename Operands>
void run_implicit_gemm(const Operands& ops, const char* name) {
  if (ops.M == 0 || ops.N == 0) return;
  if (ops.M <= 64)
    implicit_gemm::run<64>(ops, name);
  else
    implicit_gemm::run<128>(ops, name);
}

}  // namespace dscope::kernels::cuda
