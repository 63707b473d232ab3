// Kernel dispatch: the one place outside kernels/cuda/ and CMake that knows whether CUDA was built.
//
// An op names a kernel once and the device picks the namespace:
//   DSCOPE_DISPATCH(x.device(), relu_forward, n, x_data, y_data);
// calls kernels::cpu::relu_forward(...) on the CPU and kernels::cuda::relu_forward(...) on a CUDA device
// (kernels/cuda/*.cu); a build without CUDA throws DeviceError saying so. Keeping this choice here is what
// spares the ops scattered #ifdefs. Every CPU dispatch is also timed when the CPU kernel profiler records
// (tensor/profiler.h).
#pragma once

#include "tensor/device.h"
#include "tensor/error.h"
#include "tensor/profiler.h"

#include <stdexcept>
#include <string>

#include "kernels/cuda/device_memory.h"  // plain declarations; defined only in CUDA builds

namespace dscope::detail {
inline constexpr bool kCudaBuilt = DSCOPE_WITH_CUDA != 0;

[[noreturn]] inline void throw_cuda_unavailable(const char* what) {
  throw DeviceError(
      concat(what, ": this build of dscope has no CUDA backend (configure with nvcc installed)"));
}

// Stands in for the value of a CUDA runtime call in builds without CUDA, where the call throws first.
// Taking the call's arguments keeps them "used", so a CUDA-only variable raises no warning there.
struct NoCudaResult {
  template <typename T>
  operator T() const {
    return T{};
  }
};
template <typename... Arguments>
NoCudaResult no_cuda_result(const Arguments&...) {
  return {};
}

// Runs a CUDA kernel call, turning the runtime's std::runtime_error into a CudaError that names the op.
template <typename Call>
void run_cuda_kernel(const char* kernel, Call&& call) {
  try {
    call();
  } catch (const std::runtime_error& error) {
    throw CudaError(concat(kernel, " on the GPU: ", error.what()));
  }
}
}  // namespace dscope::detail

#if DSCOPE_WITH_CUDA
#define DSCOPE_CUDA_KERNEL(kernel, ...) \
  ::dscope::detail::run_cuda_kernel(#kernel, [&] { ::dscope::kernels::cuda::kernel(__VA_ARGS__); })
#else
#define DSCOPE_CUDA_KERNEL(kernel, ...) ::dscope::detail::throw_cuda_unavailable(#kernel)
#endif

// DSCOPE_DISPATCH with `description` (a std::string expression, evaluated only while the CPU kernel profiler
// records), which tells this call's time apart from the kernel's other calls in the profile.
#define DSCOPE_DISPATCH_DESCRIBED(device, description, kernel, ...)                  \
  do {                                                                               \
    if ((device).is_cpu()) {                                                         \
      ::dscope::profiler::KernelScope timed(#kernel, [&] { return (description); }); \
      ::dscope::kernels::cpu::kernel(__VA_ARGS__);                                   \
    } else {                                                                         \
      DSCOPE_CUDA_KERNEL(kernel, __VA_ARGS__);                                       \
    }                                                                                \
  } while (0)

#define DSCOPE_DISPATCH(device, kernel, ...) \
  DSCOPE_DISPATCH_DESCRIBED(device, std::string(), kernel, __VA_ARGS__)

// Calls a CUDA runtime wrapper (memory, device queries) from kernels/cuda/device_memory.h when built.
#if DSCOPE_WITH_CUDA
#define DSCOPE_CUDA_RUNTIME(function, ...) ::dscope::kernels::cuda::function(__VA_ARGS__)
#else
#define DSCOPE_CUDA_RUNTIME(function, ...) \
  (::dscope::detail::throw_cuda_unavailable(#function), ::dscope::detail::no_cuda_result(__VA_ARGS__))
#endif
