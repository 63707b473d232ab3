// The tiled matrix product every GEMM and convolution pass of the CUDA backend runs on.
//
// A pass is described by an Operands struct: the product's extents M × N with reduction length K, how to read
// element (m, k) of A and (k, n) of B, and where result (m, n) goes:
//   struct Operands {
//     int M, N, K;
//     __device__ float a(int m, int k) const;               // called only for m < M, k < K
//     __device__ float b(int k, int n) const;               // called only for k < K, n < N
//     __device__ void store(int m, int n, float sum) const; // called once per m < M, n < N
//   };
// For a convolution, a() and b() gather from the input with the padding and strides of the geometry: the
// im2col matrix exists only as the tile being worked on in shared memory ("implicit GEMM").
//
// Two kernels share that interface:
//   - exact FP32 on the CUDA cores: 128×128 tiles, 256 threads each computing an 8×8 block of results in
//     registers, the reduction walked 8 at a time through double-buffered shared memory (the next slice is
//     fetched into registers while the current one is multiplied);
//   - TF32 on the tensor cores (WMMA, 16×16×8 fragments): the same 128×128 tiles in slices of 16, each of
//     8 warps owning a 64×32 block of results as 4×2 accumulator fragments.
// When the tiles alone cannot fill the GPU (a weight gradient: 64×576 results from a reduction over a
// million positions), the reduction is split across blocks ("split-K"): each writes its partial product to a
// workspace and a last kernel adds the partials in a fixed order and stores them, so the result does not
// depend on scheduling.
//
// Included only by .cu files.
#pragma once

#include <mma.h>

#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/settings.h"

namespace dscope::kernels::cuda {

namespace implicit_gemm {

constexpr int kTileM = 128, kTileN = 128, kThreads = 256;
constexpr int kFp32SliceK = 8;
constexpr int kTf32SliceK = 16;

// ---- Exact FP32 ----------------------------------------------------------------------------------------
template <typename Operands>
__global__ void __launch_bounds__(kThreads, 2) fp32_kernel(Operands ops, int k_chunk, float* partials) {
  constexpr int BK = kFp32SliceK;
  // A is kept k-major so that a thread reads its 4 consecutive rows with one float4; the 4 floats of padding
  // spread the column writes of the loaders over all 32 banks.
  __shared__ __align__(16) float a_tile[2][BK][kTileM + 4];
  __shared__ __align__(16) float b_tile[2][BK][kTileN];

  const int tid = threadIdx.x;
  const int m0 = blockIdx.y * kTileM, n0 = blockIdx.x * kTileN;
  const int k_begin = blockIdx.z * k_chunk;
  const int k_end = min(ops.K, k_begin + k_chunk);

  // What each thread fetches per slice: 4 values of A (rows a_m + 32i, column a_k) and 4 of B (rows b_k + 2i,
  // column b_n). Neighbouring threads take neighbouring columns of B, which for a convolution are
  // neighbouring output positions: coalesced reads of the input.
  const int a_k = tid % BK, a_m = tid / BK;
  const int b_n = tid % kTileN, b_k = tid / kTileN;
  float a_next[4], b_next[4];
  const auto fetch = [&](int k0) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int m = m0 + a_m + 32 * i, k = k0 + a_k;
      a_next[i] = (m < ops.M && k < k_end) ? ops.a(m, k) : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int k = k0 + b_k + 2 * i, n = n0 + b_n;
      b_next[i] = (n < ops.N && k < k_end) ? ops.b(k, n) : 0.0f;
    }
  };
  const auto stash = [&](int buffer) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      a_tile[buffer][a_k][a_m + 32 * i] = a_next[i];
      b_tile[buffer][b_k + 2 * i][b_n] = b_next[i];
    }
  };

  // Thread (ty, tx) computes rows ty·4 + {0..3} and 64 + ty·4 + {0..3}, columns likewise with tx: two float4
  // per operand per step, and a warp's reads of one row hit 8 different float4s (no bank conflicts).
  const int ty = tid / 16, tx = tid % 16;
  float sum[8][8] = {};

  fetch(k_begin);
  stash(0);
  __syncthreads();
  int buffer = 0;
  for (int k0 = k_begin; k0 < k_end; k0 += BK) {
    const bool more = k0 + BK < k_end;
    if (more) fetch(k0 + BK);  // in flight while this slice is multiplied
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float a[8], b[8];
      const float4 a_low = *reinterpret_cast<const float4*>(&a_tile[buffer][kk][ty * 4]);
      const float4 a_high = *reinterpret_cast<const float4*>(&a_tile[buffer][kk][64 + ty * 4]);
      const float4 b_low = *reinterpret_cast<const float4*>(&b_tile[buffer][kk][tx * 4]);
      const float4 b_high = *reinterpret_cast<const float4*>(&b_tile[buffer][kk][64 + tx * 4]);
      a[0] = a_low.x, a[1] = a_low.y, a[2] = a_low.z, a[3] = a_low.w;
      a[4] = a_high.x, a[5] = a_high.y, a[6] = a_high.z, a[7] = a_high.w;
      b[0] = b_low.x, b[1] = b_low.y, b[2] = b_low.z, b[3] = b_low.w;
      b[4] = b_high.x, b[5] = b_high.y, b[6] = b_high.z, b[7] = b_high.w;
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j)
          sum[i][j] += a[i] * b[j];
    }
    // The other buffer was last read in the previous iteration, which ended with a barrier.
    if (more) stash(buffer ^ 1);
    __syncthreads();
    buffer ^= 1;
  }

#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int m = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
    if (m >= ops.M) continue;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int n = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + j - 4);
      if (n >= ops.N) continue;
      if (partials == nullptr)
        ops.store(m, n, sum[i][j]);
      else
        partials[(static_cast<std::int64_t>(blockIdx.z) * ops.M + m) * ops.N + n] = sum[i][j];
    }
  }
}

// ---- TF32 tensor cores ---------------------------------------------------------------------------------
template <typename Operands>
__global__ void __launch_bounds__(kThreads, 2) tf32_kernel(Operands ops, int k_chunk, float* partials) {
  namespace wmma = nvcuda::wmma;
  constexpr int BK = kTf32SliceK;
  constexpr int kLdA = BK + 4, kLdB = kTileN + 4;  // multiples of 4 floats, as WMMA requires; padded rows
  __shared__ __align__(128) float a_tile[2][kTileM][kLdA];
  __shared__ __align__(128) float b_tile[2][BK][kLdB];
  __shared__ __align__(128) float staging[kThreads / 32][16 * 16];

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int m0 = blockIdx.y * kTileM, n0 = blockIdx.x * kTileN;
  const int k_begin = blockIdx.z * k_chunk;
  const int k_end = min(ops.K, k_begin + k_chunk);

  // 8 values of A (rows a_m + 16i, column a_k) and 8 of B (rows b_k + 2i, column b_n) per thread per slice.
  const int a_k = tid % BK, a_m = tid / BK;
  const int b_n = tid % kTileN, b_k = tid / kTileN;
  float a_next[8], b_next[8];
  const auto fetch = [&](int k0) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int m = m0 + a_m + 16 * i, k = k0 + a_k;
      a_next[i] = (m < ops.M && k < k_end) ? ops.a(m, k) : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int k = k0 + b_k + 2 * i, n = n0 + b_n;
      b_next[i] = (n < ops.N && k < k_end) ? ops.b(k, n) : 0.0f;
    }
  };
  // Operands are rounded to TF32 once, on their way into shared memory.
  const auto stash = [&](int buffer) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      a_tile[buffer][a_m + 16 * i][a_k] = wmma::__float_to_tf32(a_next[i]);
      b_tile[buffer][b_k + 2 * i][b_n] = wmma::__float_to_tf32(b_next[i]);
    }
  };

  // Warps in a 2 × 4 grid, each owning 64 × 32 results: 4 × 2 fragments of 16 × 16.
  const int warp_m = warp / 4, warp_n = warp % 4;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> sum[4][2];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::fill_fragment(sum[i][j], 0.0f);

  fetch(k_begin);
  stash(0);
  __syncthreads();
  int buffer = 0;
  for (int k0 = k_begin; k0 < k_end; k0 += BK) {
    const bool more = k0 + BK < k_end;
    if (more) fetch(k0 + BK);
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> a[4];
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> b[2];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        wmma::load_matrix_sync(a[i], &a_tile[buffer][warp_m * 64 + i * 16][kk], kLdA);
#pragma unroll
      for (int j = 0; j < 2; ++j)
        wmma::load_matrix_sync(b[j], &b_tile[buffer][kk][warp_n * 32 + j * 16], kLdB);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j)
          wmma::mma_sync(sum[i][j], a[i], b[j], sum[i][j]);
    }
    if (more) stash(buffer ^ 1);
    __syncthreads();
    buffer ^= 1;
  }

  // Fragments have no documented element layout, so each goes through the warp's staging square and the
  // lanes store it element by element (16 neighbouring lanes write 16 neighbouring columns).
  float* square = staging[warp];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      wmma::store_matrix_sync(square, sum[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      for (int e = lane; e < 256; e += 32) {
        const int m = m0 + warp_m * 64 + i * 16 + e / 16, n = n0 + warp_n * 32 + j * 16 + e % 16;
        if (m >= ops.M || n >= ops.N) continue;
        if (partials == nullptr)
          ops.store(m, n, square[e]);
        else
          partials[(static_cast<std::int64_t>(blockIdx.z) * ops.M + m) * ops.N + n] = square[e];
      }
      __syncwarp();
    }
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
Split choose_split(int M, int N, int K, int slice_k);

}  // namespace implicit_gemm

// Runs the product `ops` describes with the kernel the math mode selects; `name` labels launch errors.
template <typename Operands>
void run_implicit_gemm(const Operands& ops, const char* name) {
  using namespace implicit_gemm;
  if (ops.M == 0 || ops.N == 0) return;
  const cudaStream_t stream = current_stream();
  const bool tensor_cores = math_mode() == MathMode::TF32;
  const int slice_k = tensor_cores ? kTf32SliceK : kFp32SliceK;
  const Split split = choose_split(ops.M, ops.N, ops.K, slice_k);
  const dim3 grid((ops.N + kTileN - 1) / kTileN, (ops.M + kTileM - 1) / kTileM, split.splits);
  const Scratch<float> partials(split.splits > 1 ? split.splits * static_cast<std::size_t>(ops.M) * ops.N : 0,
                                stream);
  if (tensor_cores)
    tf32_kernel<Operands><<<grid, kThreads, 0, stream>>>(ops, split.chunk, partials.get());
  else
    fp32_kernel<Operands><<<grid, kThreads, 0, stream>>>(ops, split.chunk, partials.get());
  check_launch(name);
  if (partials.get() != nullptr) {
    add_partials_kernel<Operands>
        <<<blocks_for(static_cast<std::int64_t>(ops.M) * ops.N), kThreadsPerBlock, 0, stream>>>(
            ops, split.splits, partials.get());
    check_launch(name);
  }
}

}  // namespace dscope::kernels::cuda
