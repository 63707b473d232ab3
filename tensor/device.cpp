#include "tensor/device.h"

#include "kernels/cuda/settings.h"  // plain declarations; defined only in CUDA builds
#include "tensor/dispatch.h"
#include "tensor/error.h"

namespace dscope {

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string digits = text.substr(5);
    DSCOPE_CHECK(!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos, ValueError,
                 "device: cannot parse '", text, "' (expected cpu, cuda or cuda:N)");
    return cuda(std::stoi(digits));
  }
  throw ValueError(detail::concat("device: cannot parse '", text, "' (expected cpu, cuda or cuda:N)"));
}

std::string Device::to_string() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

int cuda_device_count() {
  if constexpr (!detail::kCudaBuilt) {
    return 0;
  } else {
    return DSCOPE_CUDA_RUNTIME(device_count);
  }
}

bool cuda_is_available() {
  return cuda_device_count() > 0;
}

void set_cuda_math(const std::string& name) {
  using kernels::cuda::MathMode;
  DSCOPE_CHECK(name == "fp32" || name == "tf32" || name == "bf16", ValueError, "CUDA math '", name,
               "' is not one of fp32, tf32, bf16");
  const MathMode mode = name == "fp32" ? MathMode::FP32 : name == "tf32" ? MathMode::TF32 : MathMode::BF16;
  DSCOPE_CUDA_RUNTIME(set_math_mode, mode);
}

}  // namespace dscope
