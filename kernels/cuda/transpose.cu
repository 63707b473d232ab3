// Matrix transposes: see transpose.cuh. A 32 × 32 tile per block, through shared memory, so that both the
// reads and the writes run along rows; the tile's extra column keeps its columns in different banks.
#include "kernels/cuda/transpose.cuh"

#include <cstdint>

#include "kernels/cuda/launch.cuh"

namespace dscope::kernels::cuda {
namespace {

constexpr int kTile = 32, kRowsPerPass = 8;
constexpr int kMaxGridYZ = 65535;  // the grid's y (tiles of rows) and z (matrices)

template <typename T>
__global__ void transpose_kernel(int rows, int cols, int first_row, std::int64_t src_stride, const T* src,
                                 float* dst) {
  __shared__ float tile[kTile][kTile + 1];
  const std::int64_t matrix = blockIdx.z;
  src += matrix * rows * src_stride;
  dst += matrix * rows * cols;
  const int i0 = first_row + blockIdx.y * kTile, j0 = blockIdx.x * kTile;
  for (int di = threadIdx.y; di < kTile; di += kRowsPerPass) {
    const int i = i0 + di, j = j0 + threadIdx.x;
    if (i < rows && j < cols) tile[di][threadIdx.x] = as_float(src[i * src_stride + j]);
  }
  __syncthreads();
  for (int dj = threadIdx.y; dj < kTile; dj += kRowsPerPass) {
    const int j = j0 + dj, i = i0 + threadIdx.x;
    if (i < rows && j < cols) dst[static_cast<std::int64_t>(j) * rows + i] = tile[threadIdx.x][dj];
  }
}

template <typename T>
void transpose_of(int matrices, int rows, int cols, int src_stride, const T* src, float* dst,
                  const char* name) {
  if (matrices == 0 || rows == 0 || cols == 0) return;
  const dim3 threads(kTile, kRowsPerPass);
  const int rows_per_launch = kMaxGridYZ * kTile;
  for (int first = 0; first < matrices; first += kMaxGridYZ) {
    const int count = matrices - first < kMaxGridYZ ? matrices - first : kMaxGridYZ;
    for (std::int64_t first_row = 0; first_row < rows; first_row += rows_per_launch) {
      const int row_count =
          static_cast<int>(rows - first_row < rows_per_launch ? rows - first_row : rows_per_launch);
      const dim3 grid((cols + kTile - 1) / kTile, (row_count + kTile - 1) / kTile, count);
      transpose_kernel<T>
          <<<grid, threads, 0, current_stream()>>>(rows, cols, static_cast<int>(first_row), src_stride,
                                                   src + static_cast<std::int64_t>(first) * rows * src_stride,
                                                   dst + static_cast<std::int64_t>(first) * rows * cols);
      check_launch(name);
    }
  }
}

}  // namespace

void transpose(int matrices, int rows, int cols, int src_stride, const float* src, float* dst,
               const char* name) {
  transpose_of(matrices, rows, cols, src_stride, src, dst, name);
}
void transpose(int matrices, int rows, int cols, int src_stride, const BFloat16* src, float* dst,
               const char* name) {
  transpose_of(matrices, rows, cols, src_stride, src, dst, name);
}

}  // namespace dscope::kernels::cuda
