// Run-time choices of the CUDA backend: see settings.h.
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernels/cuda/settings.h"

namespace dscope::kernels::cuda {
namespace {

// The environment variable's value, or `fallback` when unset. Anything but the listed words is an error, so a
// typo in a benchmark script cannot silently measure the wrong path.
int from_environment(const char* name, const char* first, const char* second) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0' || std::string(value) == first) return 0;
  if (std::string(value) == second) return 1;
  throw std::runtime_error(std::string(name) + "=" + value + ": expected " + first + " or " + second);
}

std::atomic<int>& math_setting() {
  static std::atomic<int> value{from_environment("DSCOPE_CUDA_MATH", "fp32", "tf32")};
  return value;
}
std::atomic<int>& gemm_setting() {
  static std::atomic<int> value{from_environment("DSCOPE_GEMM", "own", "cublas")};
  return value;
}
std::atomic<int>& conv_setting() {
  static std::atomic<int> value{[] {
    const int wanted = from_environment("DSCOPE_CONV", "own", "cudnn");
    if (wanted == 1 && !cudnn_built())
      throw std::runtime_error("DSCOPE_CONV=cudnn: this build of dscope was configured without cuDNN");
    return wanted;
  }()};
  return value;
}

}  // namespace

MathMode math_mode() {
  return math_setting() == 0 ? MathMode::FP32 : MathMode::TF32;
}
void set_math_mode(MathMode mode) {
  math_setting() = mode == MathMode::FP32 ? 0 : 1;
}

GemmBackend gemm_backend() {
  return gemm_setting() == 0 ? GemmBackend::Own : GemmBackend::Cublas;
}
void set_gemm_backend(GemmBackend backend) {
  gemm_setting() = backend == GemmBackend::Own ? 0 : 1;
}

ConvBackend conv_backend() {
  return conv_setting() == 0 ? ConvBackend::Own : ConvBackend::Cudnn;
}
void set_conv_backend(ConvBackend backend) {
  if (backend == ConvBackend::Cudnn && !cudnn_built())
    throw std::runtime_error("conv backend cudnn: this build of dscope was configured without cuDNN");
  conv_setting() = backend == ConvBackend::Own ? 0 : 1;
}

bool cudnn_built() {
  return DSCOPE_WITH_CUDNN != 0;
}

}  // namespace dscope::kernels::cuda
