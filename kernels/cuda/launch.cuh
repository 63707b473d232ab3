// What every CUDA kernel file shares: error checking, the device's stream, launch sizes.
//
// Included only by .cu files. Every runtime call goes through DSCOPE_CUDA_CHECK, and every launch is followed
// by check_launch("<kernel>"), so a failure names its kernel. Launches are asynchronous: a fault inside a
// kernel surfaces at the next synchronising call unless DSCOPE_CUDA_SYNC=1 is set, which makes check_launch
// wait for each kernel (the GPU tests set it, so a fault names the kernel that caused it).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

// Throws std::runtime_error with the call, file:line and CUDA's reason. The tensor layer turns it into
// dscope::CudaError (kernels sit below the tensor layer and cannot see its error types). The runtime also
// keeps the error as its "last error", which check_launch reads: it is taken here, so that an error a caller
// recovers from (out of memory, which the tensor allocator retries after emptying its cache) is not
// reported again by the next launch. Errors that poison the context stay, whatever is taken.
#define DSCOPE_CUDA_CHECK(call)                                                                \
  do {                                                                                         \
    const cudaError_t status_ = (call);                                                        \
    if (status_ != cudaSuccess) {                                                              \
      (void)cudaGetLastError();                                                                \
      throw std::runtime_error(std::string(#call) + " failed at " + __FILE__ + ":" +           \
                               std::to_string(__LINE__) + ": " + cudaGetErrorString(status_)); \
    }                                                                                          \
  } while (0)

namespace dscope::kernels::cuda {

// The stream of the current device, created on first use. All our kernels and copies run on it, in order,
// which is what lets the tensor allocator hand a freed block to the next op without waiting.
cudaStream_t current_stream();

// Throws if the last launch failed (bad configuration, or, with DSCOPE_CUDA_SYNC=1, a fault inside it).
// With DSCOPE_CUDA_PROFILE=1 it also records the launch for the kernel-time table printed at exit
// (profile.cu). `kernel` must outlive the program: a string literal.
void check_launch(const char* kernel);

// DSCOPE_CUDA_PROFILE=1: whether launches are recorded, and recording one (profile.cu).
bool profiling();
void record_launch(const char* kernel);

// Scratch memory for one kernel call (split-K partials, per-channel sums), from the device's stream-ordered
// pool: taken and given back in stream order, so it is reused at once without waiting for the GPU, and given
// back even when a launch in between throws.
template <typename T>
class Scratch {
 public:
  Scratch(std::size_t count, cudaStream_t stream) : stream_(stream) {
    if (count > 0)
      DSCOPE_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&data_), count * sizeof(T), stream));
  }
  ~Scratch() {
    if (data_ != nullptr) cudaFreeAsync(data_, stream_);  // a destructor must not throw
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return data_; }

 private:
  T* data_ = nullptr;
  cudaStream_t stream_;
};

inline constexpr int kThreadsPerBlock = 256;

// Devices a process may use: per-device state (streams, kernel attributes) is kept in arrays this long.
inline constexpr int kMaxDevices = 16;

// The current device's index, checked against kMaxDevices.
inline int current_device() {
  int device = 0;
  DSCOPE_CUDA_CHECK(cudaGetDevice(&device));
  if (device < 0 || device >= kMaxDevices) throw std::runtime_error("CUDA device index out of range");
  return device;
}

// Whether `data` may be read or written 16 bytes (a float4) at a time.
inline bool aligned_16(const void* data) {
  return reinterpret_cast<std::uintptr_t>(data) % 16 == 0;
}

// Blocks of `threads` threads to cover n items, capped so that grid-stride loops take over for huge n.
inline unsigned blocks_for(std::int64_t n, int threads = kThreadsPerBlock) {
  const std::int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

// Grid-stride loop over [0, n): each thread takes every (gridDim·blockDim)-th index.
#define DSCOPE_GRID_STRIDE_LOOP(i, n)                                                              \
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)

}  // namespace dscope::kernels::cuda
