// CUDA runtime wrappers: see device_memory.h. The tensor core calls these through tensor/dispatch.h.
#include "kernels/cuda/device_memory.h"

#include <cstdint>

#include "kernels/cuda/launch.cuh"

namespace dscope::kernels::cuda {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error so later calls are not poisoned
    return 0;
  }
  return count;
}

void* device_allocate(std::size_t bytes, int device) {
  DSCOPE_CUDA_CHECK(cudaSetDevice(device));
  void* block = nullptr;
  DSCOPE_CUDA_CHECK(cudaMalloc(&block, bytes));
  return block;
}

void device_free(void* block, int device) {
  DSCOPE_CUDA_CHECK(cudaSetDevice(device));
  DSCOPE_CUDA_CHECK(cudaFree(block));
}

void device_copy(void* destination, const void* source, std::size_t bytes, CopyDirection direction) {
  cudaMemcpyKind kind = cudaMemcpyDeviceToDevice;
  if (direction == CopyDirection::HostToDevice) kind = cudaMemcpyHostToDevice;
  if (direction == CopyDirection::DeviceToHost) kind = cudaMemcpyDeviceToHost;
  // On our stream, after every kernel queued before it, so a copy reads finished results.
  const cudaStream_t stream = current_stream();
  DSCOPE_CUDA_CHECK(cudaMemcpyAsync(destination, source, bytes, kind, stream));
  DSCOPE_CUDA_CHECK(cudaStreamSynchronize(stream));
}

namespace {
cudaMemPool_t default_pool(int device) {
  cudaMemPool_t pool = nullptr;
  DSCOPE_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
  return pool;
}
}  // namespace

std::size_t scratch_peak_bytes(int device) {
  std::uint64_t bytes = 0;
  DSCOPE_CUDA_CHECK(cudaMemPoolGetAttribute(default_pool(device), cudaMemPoolAttrUsedMemHigh, &bytes));
  return static_cast<std::size_t>(bytes);
}

void reset_scratch_peak(int device) {
  std::uint64_t zero = 0;  // the only value the attribute accepts: it restarts from what is in use
  DSCOPE_CUDA_CHECK(cudaMemPoolSetAttribute(default_pool(device), cudaMemPoolAttrUsedMemHigh, &zero));
}

void release_scratch(int device) {
  DSCOPE_CUDA_CHECK(cudaSetDevice(device));
  DSCOPE_CUDA_CHECK(cudaStreamSynchronize(current_stream()));  // the frees queued on it have happened
  DSCOPE_CUDA_CHECK(cudaMemPoolTrimTo(default_pool(device), 0));
}

}  // namespace dscope::kernels::cuda
