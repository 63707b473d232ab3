// Launch-shape choices of the shared tiled product: see implicit_gemm.cuh.
#include "kernels/cuda/implicit_gemm.cuh"

namespace dscope::kernels::cuda::implicit_gemm {
namespace {

constexpr int kMinimumChunk = 256;

}  // namespace

int multiprocessor_count() {
  int device = 0, count = 0;
  DSCOPE_CUDA_CHECK(cudaGetDevice(&device));
  DSCOPE_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count;
}

Split choose_split(int M, int N, int K, int tile_m) {
  static const int wanted_blocks = 2 * multiprocessor_count();
  const long long tiles = static_cast<long long>((M + tile_m - 1) / tile_m) * ((N + kTileN - 1) / kTileN);
  long long splits = (wanted_blocks + tiles - 1) / tiles;
  const long long by_length = K / kMinimumChunk;
  if (splits > by_length) splits = by_length;
  if (splits < 1) splits = 1;
  // Each chunk a whole number of slices, then as few splits as that chunk needs.
  long long chunk = (K + splits - 1) / splits;
  chunk = (chunk + kSliceK - 1) / kSliceK * kSliceK;
  if (chunk < kSliceK) chunk = kSliceK;
  splits = (K + chunk - 1) / chunk;
  return {static_cast<int>(splits < 1 ? 1 : splits), static_cast<int>(chunk)};
}

}  // namespace dscope::kernels::cuda::implicit_gemm
