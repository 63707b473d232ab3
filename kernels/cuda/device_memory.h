// CUDA runtime wrappers used by the tensor core: device queries, memory and copies.
// Every runtime call goes through DSCOPE_CUDA_CHECK and throws CudaError with the call, file:line and reason.
#pragma once

#include <cstddef>

namespace dscope::kernels::cuda {

int device_count();  // 0 when the driver or a device is missing (never throws)
void* device_allocate(std::size_t bytes, int device);
void device_free(void* block, int device);
enum class CopyDirection { HostToDevice, DeviceToHost, DeviceToDevice };
// Copies `bytes` and waits for the copy to finish.
void device_copy(void* destination, const void* source, std::size_t bytes, CopyDirection direction);

// The kernels' scratch buffers (launch.cuh's Scratch: layout copies, split-K partials, taken with
// cudaMallocAsync from the device's default pool), which the tensor allocator's statistics do not count:
// the most bytes they held at once since the last reset_scratch_peak.
std::size_t scratch_peak_bytes(int device);
void reset_scratch_peak(int device);
// Gives the pool's free memory back to the device (the pool keeps it otherwise, stream.cu), once the
// device's stream has finished with it: for an allocation that found the device full.
void release_scratch(int device);

}  // namespace dscope::kernels::cuda
