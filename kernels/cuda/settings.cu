// Run-time choices of the CUDA backend: see settings.h.
#include <atomic>
#include <cstdlib>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "kernels/cuda/settings.h"

namespace dscope::kernels::cuda {
namespace {

// The index of the environment variable's value among `words`, or 0 (the first word) when unset. Anything
// but the listed words is an error, so a typo in a benchmark script cannot silently measure the wrong path.
int from_environment(const char* name, std::initializer_list<const char*> words) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return 0;
  std::string expected;
  int index = 0;
  for (const char* word : words) {
    if (std::string(value) == word) return index;
    expected += (index == 0 ? "" : index + 1 == static_cast<int>(words.size()) ? " or " : ", ");
    expected += word;
    ++index;
  }
  throw std::runtime_error(std::string(name) + "=" + value + ": expected " + expected);
}

// Hold the enums' values: the words are listed in the enums' order.
std::atomic<int>& math_setting() {
  static std::atomic<int> value{from_environment(
      "DSCOPE_CUDA_MATH", {name_of(MathMode::FP32), name_of(MathMode::TF32), name_of(MathMode::BF16)})};
  return value;
}
std::atomic<int>& gemm_setting() {
  static std::atomic<int> value{from_environment("DSCOPE_GEMM", {"own", "cublas"})};
  return value;
}
std::atomic<int>& conv_setting() {
  static std::atomic<int> value{[] {
    const int wanted = from_environment(
        "DSCOPE_CONV",
        {name_of(ConvBackend::Own), name_of(ConvBackend::Direct), name_of(ConvBackend::Cudnn)});
    if (wanted == static_cast<int>(ConvBackend::Cudnn) && !cudnn_built())
      throw std::runtime_error("DSCOPE_CONV=cudnn: this build of dscope was configured without cuDNN");
    return wanted;
  }()};
  return value;
}

}  // namespace

MathMode math_mode() {
  return static_cast<MathMode>(math_setting().load());
}
void set_math_mode(MathMode mode) {
  math_setting() = static_cast<int>(mode);
}
const char* name_of(MathMode mode) {
  switch (mode) {
    case MathMode::FP32:
      return "fp32";
    case MathMode::TF32:
      return "tf32";
    case MathMode::BF16:
      return "bf16";
  }
  return "unknown";
}

GemmBackend gemm_backend() {
  return gemm_setting() == 0 ? GemmBackend::Own : GemmBackend::Cublas;
}
void set_gemm_backend(GemmBackend backend) {
  gemm_setting() = backend == GemmBackend::Own ? 0 : 1;
}

const char* name_of(ConvBackend backend) {
  switch (backend) {
    case ConvBackend::Own:
      return "own";
    case ConvBackend::Direct:
      return "direct";
    case ConvBackend::Cudnn:
      return "cudnn";
  }
  return "unknown";
}

ConvBackend conv_backend() {
  return static_cast<ConvBackend>(conv_setting().load());
}
void set_conv_backend(ConvBackend backend) {
  if (backend == ConvBackend::Cudnn && !cudnn_built())
    throw std::runtime_error("conv backend cudnn: this build of dscope was configured without cuDNN");
  conv_setting() = static_cast<int>(backend);
}

bool cudnn_built() {
  return DSCOPE_WITH_CUDNN != 0;
}

}  // namespace dscope::kernels::cuda
