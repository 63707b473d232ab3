// The per-device stream and launch checking: see launch.cuh.
#include <cstdint>
#include <cstdlib>
#include <mutex>

#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/settings.h"

namespace dscope::kernels::cuda {
namespace {

bool synchronise_every_launch() {
  static const bool enabled = [] {
    const char* value = std::getenv("DSCOPE_CUDA_SYNC");
    return value != nullptr && std::string(value) == "1";
  }();
  return enabled;
}

}  // namespace

cudaStream_t current_stream() {
  static cudaStream_t streams[kMaxDevices] = {};
  static std::once_flag created[kMaxDevices];
  const int device = current_device();
  std::call_once(created[device], [device] {
    // Non-blocking: our stream does not wait for work on the legacy default stream of other libraries.
    DSCOPE_CUDA_CHECK(cudaStreamCreateWithFlags(&streams[device], cudaStreamNonBlocking));
    // Kernels take their scratch space (split-K partials, channel sums) with cudaMallocAsync from the
    // device's pool. By default the pool returns its memory to the driver at every synchronisation, which
    // would make each of those allocations a real one again; keep it instead, as the tensor allocator does.
    cudaMemPool_t pool = nullptr;
    DSCOPE_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
    std::uint64_t keep_everything = UINT64_MAX;
    DSCOPE_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_everything));
  });
  return streams[device];
}

void check_launch(const char* kernel) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    throw std::runtime_error(std::string("CUDA kernel ") + kernel +
                             " failed to launch: " + cudaGetErrorString(status));
  if (synchronise_every_launch()) {
    const cudaError_t finished = cudaStreamSynchronize(current_stream());
    if (finished != cudaSuccess)
      throw std::runtime_error(std::string("CUDA kernel ") + kernel +
                               " failed: " + cudaGetErrorString(finished));
  }
  if (profiling()) record_launch(kernel);
}

void synchronize() {
  DSCOPE_CUDA_CHECK(cudaStreamSynchronize(current_stream()));
}

}  // namespace dscope::kernels::cuda
