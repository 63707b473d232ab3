// CUDA runtime wrappers: see device_memory.h. The tensor core calls these through tensor/dispatch.h.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/device_memory.h"

// The CUDA runtime reports errors as codes; turn each into an exception that says which call failed,
// where, and why. (dscope::CudaError lives in the tensor layer, above the kernels; the tensor core
// catches std::runtime_error from these wrappers and rethrows it as CudaError.)
#define DSCOPE_CUDA_CHECK(call)                                                                \
  do {                                                                                         \
    cudaError_t status_ = (call);                                                              \
    if (status_ != cudaSuccess)                                                                \
      throw std::runtime_error(std::string(#call) + " failed at " + __FILE__ + ":" +           \
                               std::to_string(__LINE__) + ": " + cudaGetErrorString(status_)); \
  } while (0)

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
  DSCOPE_CUDA_CHECK(cudaMemcpy(destination, source, bytes, kind));
}

}  // namespace dscope::kernels::cuda
